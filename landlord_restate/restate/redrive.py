"""Redrive: what a failed, stopped or timed-out execution completed, read from its journal,
so that a new execution of the same workflow does not do it again.

Restate's `restart-as-new` refuses workflows (422, 1.7.12), so the provider builds the plan
itself from the original's journal (SQL, server-side) and hands it to the new run in its
envelope; the shim's steps, sleeps and callback wait consult it in order.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from landlord_restate.restate.naming import EXECUTION_NAME
from landlord_restate.restate.wire import (
    COMPUTE_CALLBACK_PROMISE,
    DEADLINE_TIMER,
    REDRIVEN_CALLBACK_STEP,
    Reuse,
)

#: a redrive's suffix: "-redrive-" and a digest of the original's execution id (and, when a
#: user's execution already holds that name, "-2", "-3", ...)
_REDRIVE_SUFFIX = re.compile(r"-redrive-[0-9a-f]{10}(-[0-9]+)?$")
_DIGEST_LENGTH = 10
_MAX_NAME = 128


def redrive_name(original_name: str, original_id: str, attempt: int = 1) -> str:
    """The execution name of a redrive of the execution `original_id` named `original_name`.

    Readable (the original's name, without an earlier redrive's suffix) and unique to the
    original (a digest of its id), so two originals never share a redrive however long
    their names; `attempt` > 1 steps past a name a user's own execution already holds.
    """
    base = _REDRIVE_SUFFIX.sub("", original_name) or original_name
    digest = hashlib.sha256(original_id.encode()).hexdigest()[:_DIGEST_LENGTH]
    suffix = f"-redrive-{digest}" + (f"-{attempt}" if attempt > 1 else "")
    name = base[: _MAX_NAME - len(suffix)] + suffix
    assert EXECUTION_NAME.fullmatch(name), name
    return name


def reusable(journal: Sequence[Mapping[str, Any]]) -> list[Reuse]:
    """What the run completed, in order, up to the first thing it did not complete.

    Steps (`Command: Run`) with a successful result, sleeps (`Command: Sleep`) that fired,
    the compute callback's promise (`Command: GetPromise`) once resolved. Other commands
    (the catalog check, the deadline timer, state writes) are the shim's own and are done
    again by any run.
    """
    commands: list[tuple[int, Reuse]] = []  # (completion id, what it would reuse)
    done: dict[int, Any] = {}  # completion id -> its value (None for a sleep)
    for row in journal:
        entry = _entry(row)
        command = entry.get("Command")
        if isinstance(command, dict):
            found = _planned(command, str(row.get("name") or ""))
            if found is not None:
                commands.append(found)
            continue
        completion = entry.get("Notification", {})
        completion = completion.get("Completion") if isinstance(completion, dict) else None
        if isinstance(completion, dict):
            for kind, body in completion.items():
                _completed(kind, body, done)
    plan: list[Reuse] = []
    for completion_id, planned in commands:
        if completion_id not in done:
            break
        value = done[completion_id]
        if planned.kind == "sleep":
            plan.append(planned)
        else:
            plan.append(Reuse(kind=planned.kind, name=planned.name, value=value))
    return plan


def _planned(command: Mapping[str, Any], name: str) -> tuple[int, Reuse] | None:
    for kind, body in command.items():
        if not isinstance(body, dict) or not isinstance(body.get("completion_id"), int):
            continue
        completion_id = body["completion_id"]
        if kind == "Run":
            step = str(body.get("name") or name)
            reuse = "callback" if step == REDRIVEN_CALLBACK_STEP else "step"
            return completion_id, Reuse(kind=reuse, name="" if reuse == "callback" else step)
        if kind == "Sleep":
            sleep = str(body.get("name") or name)
            if sleep == DEADLINE_TIMER:
                return None  # the run's own timeout timer: every run starts one of its own
            return completion_id, Reuse(kind="sleep", name=sleep)
        if kind == "GetPromise" and body.get("key") == COMPUTE_CALLBACK_PROMISE:
            return completion_id, Reuse(kind="callback")
    return None


def _completed(kind: str, body: Any, done: dict[int, Any]) -> None:
    if not isinstance(body, dict) or not isinstance(body.get("completion_id"), int):
        return
    completion_id = body["completion_id"]
    if kind == "Sleep":
        done[completion_id] = None
        return
    result = body.get("result")
    success = result.get("Success") if isinstance(result, dict) else None
    if isinstance(success, list):
        try:
            done[completion_id] = json.loads(bytes(success)) if success else None
        except (ValueError, TypeError):
            return  # not JSON: do it again rather than guess


def _entry(row: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(str(row.get("entry") or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
