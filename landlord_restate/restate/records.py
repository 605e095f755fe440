"""What the shim and the provider recorded of an execution, read back from Restate's rows.

Pure: journal rows and state rows in, values out. The shim's record (the envelope the
provider sent, how the run ended) is read from the run's journal; the provider's record
(why it was stopped, ...) from the `state` rows of `LandlordControl`. `ExecutionRecord` is
everything a status needs of one execution, gathered once by `reading` and built into an
ExecutionStatus by `status`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from attrs import field, frozen

from landlord_restate.restate.vocabulary import EntryType
from landlord_restate.restate.wire import ENVELOPE_STATE, OUTCOME_STATE, REUSED_STATE, Outcome
from landlord_restate.workflow.convert import parse_rfc3339

Row = Mapping[str, Any]


class UnexpectedRow(ValueError):
    """A row of Restate's introspection this provider was not built for: what was expected,
    and an excerpt of what came. The caller, which knows the URL it asked, raises it as
    RestateProtocolError."""

    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"expected {expected}, got: {got[:400]}")
        self.expected = expected
        self.got = got


def unexpected(what: str, row: Row) -> UnexpectedRow:
    """Restate answered something this provider was not built for: say so, with the row."""
    return UnexpectedRow(what, json.dumps(dict(row), default=str))


def row_time(value: Any) -> datetime | None:
    """A time column (None when empty); UnexpectedRow when it does not parse."""
    if value is None or value == "":
        return None
    try:
        return parse_rfc3339(value) if isinstance(value, str) else None
    except ValueError:
        raise unexpected(f"unparseable time {value!r}", {"value": value}) from None


def read_outcome(value: Any) -> Outcome | None:
    """What the shim recorded as the outcome, through the one converter.

    A record the shim would not have written is the server side's fault: UnexpectedRow.
    """
    if value is None:
        return None
    try:
        return Outcome.from_json(value)
    except Exception as exc:
        raise UnexpectedRow("an Outcome record", json.dumps(value, default=str)) from exc


def entry_json(row: Row) -> dict[str, Any]:
    """A journal row's entry (full or lite, as selected) as a JSON object; {} otherwise."""
    try:
        value = json.loads(str(row.get("entry") or row.get("entry_lite_json") or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def state_from_journal(journal: Sequence[Row]) -> dict[str, Any]:
    """What the shim recorded, read from the journal: its SetState commands, the run's
    Input (the envelope the provider sent) and its Output (a success's output).

    The journal holds each value, so status needs no query of the `state` table (which
    Restate can only reach by a scan when joined to an invocation id), and the shim need
    not write again what the journal already holds.
    """
    values: dict[str, Any] = {}
    success: list[Any] = []  # the Output entry's value, when the run succeeded
    for row in journal:
        entry_type = row.get("entry_type")
        command = entry_json(row).get("Command", {})
        if entry_type == EntryType.SET_STATE:
            written = command.get("SetState", {})
            key, raw = written.get("key"), written.get("value")
            if key not in _RECORDED:
                continue  # a handler's own state: not ours to read
        elif entry_type == EntryType.INPUT:
            key, raw = ENVELOPE_STATE, command.get("Input", {}).get("payload")
            if ENVELOPE_STATE in values:
                continue  # an older shim's own record of it
        elif entry_type == EntryType.OUTPUT:
            result = command.get("Output", {}).get("result")
            raw = result.get("Success") if isinstance(result, dict) else None
            if isinstance(raw, list):
                success.append(_decoded(raw, "the run's Output", row))
            continue
        else:
            continue
        if isinstance(raw, list):
            values[str(key)] = _decoded(raw, f"the shim's {key!r}", row)
    if success and OUTCOME_STATE not in values:
        values[OUTCOME_STATE] = Outcome(state="succeeded", output=success[0]).to_json()
    return values


#: the state keys the shim writes that status reads
_RECORDED = frozenset({ENVELOPE_STATE, OUTCOME_STATE, REUSED_STATE})


def _decoded(raw: list[Any], what: str, row: Row) -> Any:
    """A journaled value the shim or the provider wrote as JSON; UnexpectedRow when it is
    not (the journal is Restate's record of what they wrote)."""
    try:
        return json.loads(bytes(raw))
    except (ValueError, TypeError) as exc:
        raise UnexpectedRow(f"JSON in {what} (journal entry {row.get('index')})",
                            repr(raw[:64])) from exc


def state_from_rows(rows: Sequence[Row]) -> dict[str, Any]:
    """Workflow or object state from `state` table rows (key, value_utf8)."""
    values: dict[str, Any] = {}
    for row in rows:
        try:
            values[str(row.get("key"))] = json.loads(str(row.get("value_utf8")))
        except ValueError:
            continue
    return values


@frozen(kw_only=True)
class ExecutionRecord:
    """Everything Restate holds of one execution that its status is built from."""

    execution_id: str
    #: its `sys_invocation` row
    invocation: Row
    #: its journal, in order
    journal: Sequence[Row]
    #: what the shim recorded (envelope, outcome), from the journal or workflow state
    recorded: Mapping[str, Any] = field(factory=dict)
    #: what the provider recorded (`LandlordControl` state: the stop)
    control: Mapping[str, Any] = field(factory=dict)
