"""Introspection and status mapping on canned rows, as restate-server 1.7.12 returns them.

No server here: these pin how rows become statuses, and that only checked values enter SQL.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from landlord_restate import ExecutionState, RestateProtocolError
from landlord_restate.restate.introspection import Introspection, RunFilter, sql_literal
from landlord_restate.restate.naming import INVOCATION_ID, WORKFLOW_KEY
from landlord_restate.restate.records import (
    ExecutionRecord,
    UnexpectedRow,
    read_outcome,
    state_from_journal,
)
from landlord_restate.restate.status import build_status, build_summary
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.wire import Outcome, OutcomeError

ID = "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"


def record(invocation: dict[str, Any], journal: list[dict[str, Any]]) -> ExecutionRecord:
    """What `reading` gathers of an execution whose journal holds its whole record."""
    return ExecutionRecord(execution_id=ID, invocation=invocation, journal=journal,
                           recorded=state_from_journal(journal))


def set_state(index: int, key: str, value: Any) -> dict[str, Any]:
    """A journal row of the shim's SetState command, with its value as bytes."""
    command = {"Command": {"SetState": {"key": key, "value": list(json.dumps(value).encode())}}}
    return {"index": index, "entry_type": "Command: SetState", "name": "",
            "appended_at": f"2026-11-26T10:00:0{index}.000Z", "entry": json.dumps(command)}


def run_entry(index: int, name: str, completion: int) -> dict[str, Any]:
    """A journal row of a step (`ctx.run`) and its completion notification."""
    return {"index": index, "entry_type": "Command: Run", "name": name,
            "appended_at": f"2026-11-26T10:00:0{index}.000Z",
            "entry": json.dumps({"Command": {"Run": {"completion_id": completion}}})}


def done_entry(index: int, completion: int) -> dict[str, Any]:
    """The notification that completes a step."""
    return {"index": index, "entry_type": "Notification: Run", "name": "",
            "appended_at": f"2026-11-26T10:00:0{index}.000Z",
            "entry": json.dumps({"Notification": {"id": {"CompletionId": completion},
                                                  "result": "Success"}})}


INVOCATION = {
    "id": ID, "target_service_name": "TenantProvisioning",
    "target_service_key": "tenant-provisioning.acme-1", "target_handler_name": "run",
    "status": "completed", "created_at": "2026-11-26T10:00:00.000Z",
    "running_at": "2026-11-26T10:00:00.100Z", "completed_at": "2026-11-26T10:00:05.000Z",
    "completion_result": "success", "retry_count": 1, "journal_size": 5,
}
ENVELOPE = {"workflow_id": "tenant-provisioning", "handler": "TenantProvisioning",
            "execution_name": "acme-1", "input": {"tenant_id": "acme"},
            "metadata": {"team": "payments"}}


def test_a_succeeded_execution_from_its_rows() -> None:
    """State, times, input, output, metadata and history, from one row and the journal."""
    journal = [
        {"index": 0, "entry_type": "Command: Input", "name": "",
         "appended_at": "2026-11-26T10:00:00.000Z", "entry": "{}"},
        set_state(1, "envelope", ENVELOPE),
        run_entry(2, "provision-compute", 1),
        done_entry(3, 1),
        set_state(4, "outcome", Outcome(state="succeeded", output={"ok": True}).to_json()),
    ]
    status = build_status(record(INVOCATION, journal))
    assert status.state is ExecutionState.SUCCEEDED
    assert status.workflow_id == "tenant-provisioning"
    assert status.input == {"tenant_id": "acme"}
    assert status.output == {"ok": True}
    assert status.metadata["team"] == "payments"
    assert status.metadata["retry_count"] == "0"  # one attempt, no retry
    assert [e.type for e in status.history] == [
        "execution_started", "step_started", "step_completed", "execution_succeeded",
    ]


@pytest.mark.parametrize(
    ("outcome", "state"),
    [
        (Outcome(state="failed", error=OutcomeError(code="quota", message="no capacity")),
         ExecutionState.FAILED),
        (Outcome(state="stopped", reason="operator",
                 error=OutcomeError(code="stopped", message="operator")), ExecutionState.STOPPED),
        (Outcome(state="timeout", error=OutcomeError(code="timeout", message="late")),
         ExecutionState.TIMEOUT),
    ],
)
def test_failures_are_told_apart_by_the_recorded_outcome(
    outcome: Outcome, state: ExecutionState
) -> None:
    """A Restate failure is failed, stopped or timeout by what the shim recorded."""
    row = INVOCATION | {"completion_result": "failure", "completion_failure": "[500] x"}
    journal = [set_state(1, "envelope", ENVELOPE), set_state(2, "outcome", outcome.to_json())]
    status = build_status(record(row, journal))
    assert status.state is state
    assert status.error is not None
    assert outcome.error is not None
    assert status.error.code == outcome.error.code
    assert build_summary(row, outcome.to_json()).state is state


def test_a_recorded_outcome_of_the_wrong_shape_is_the_servers_fault() -> None:
    """Not an Outcome: UnexpectedRow saying what was expected (the provider raises it as
    RestateProtocolError with the query's URL), never an input error."""
    with pytest.raises(UnexpectedRow) as caught:
        read_outcome({"state": 7, "surprise": True})
    assert caught.value.expected == "an Outcome record"
    assert read_outcome(None) is None


def test_an_undecodable_recorded_value_is_the_servers_fault_not_dropped() -> None:
    """A shim record in the journal that is not JSON: UnexpectedRow naming the entry."""
    broken = {"index": 4, "entry_type": "Command: SetState", "name": "",
              "appended_at": "2026-11-26T10:00:04.000Z",
              "entry": json.dumps({"Command": {"SetState": {"key": "outcome",
                                                            "value": list(b"{not json")}}})}
    with pytest.raises(UnexpectedRow) as caught:
        build_status(record(INVOCATION, [broken]))
    assert "journal entry 4" in caught.value.expected


async def test_a_row_of_the_wrong_shape_names_the_query_url() -> None:
    """Introspection raises RestateProtocolError with the admin API's real query URL."""
    sql = Introspection(CannedAdmin(), None, Backoff())  # type: ignore[arg-type]
    error = sql.protocol_error(UnexpectedRow("a thing", "another"), execution_id=ID)
    assert isinstance(error, RestateProtocolError)
    assert error.url == "http://127.0.0.1:9070/query"
    assert error.execution_id == ID


def test_sql_literal_rechecks_and_quotes() -> None:
    """Only values matching their rule in full enter SQL; quotes are doubled anyway."""
    assert sql_literal(ID, INVOCATION_ID) == f"'{ID}'"
    for bad in (ID + "\n", ID + "' OR '1'='1", "", "inv_x"):
        with pytest.raises(ValueError, match="may not enter SQL"):
            sql_literal(bad, INVOCATION_ID)
    assert sql_literal("w.a", WORKFLOW_KEY) == "'w.a'"


class CannedAdmin:
    """An admin client answering each query from a list of canned answers, recording SQL."""

    endpoint = "http://127.0.0.1:9070"
    nodes = (endpoint,)

    def __init__(self, *answers: list[dict[str, Any]]) -> None:
        self.answers = list(answers)
        self.sql: list[str] = []

    async def query(self, sql: str, *, backoff: Backoff | None = None) -> list[dict[str, Any]]:
        self.sql.append(sql)
        return self.answers.pop(0)


async def test_a_page_reads_rows_then_outcomes_by_key() -> None:
    """One query for the rows, one for the outcomes the runs recorded in their workflow
    state, matched to each run by service and key."""
    failed = {"id": ID, "target_service_name": "S", "target_service_key": "w.a",
              "status": "completed", "created_at": "2026-11-26T10:00:00Z",
              "completion_result": "failure"}
    outcome = Outcome(state="stopped", reason="r",
                      error=OutcomeError(code="stopped", message="r")).to_json()
    admin = CannedAdmin([failed], [
        {"service_name": "S", "service_key": "w.a", "value_utf8": json.dumps(outcome)},
        {"service_name": "Other", "service_key": "w.a", "value_utf8": "{}"},
    ])
    sql = Introspection(admin, None, Backoff())  # type: ignore[arg-type]
    rows = await sql.runs_page(RunFilter(workflow_id="w",
                                         states=frozenset({ExecutionState.STOPPED})),
                               after=None, limit=5)
    assert rows == [failed]
    assert await sql.outcomes(rows) == {ID: outcome}
    assert "scope IS NULL" in admin.sql[-1]


async def test_keys_the_server_returns_that_break_the_rule_never_reach_sql() -> None:
    """A row whose key is not a workflow key (not a shim's run) has no outcome to read: no
    query is sent for it."""
    admin = CannedAdmin()
    sql = Introspection(admin, None, Backoff())  # type: ignore[arg-type]
    assert await sql.outcomes([{"id": ID, "target_service_name": "S",
                                "target_service_key": "x'; DROP"}]) == {}
    assert admin.sql == []


def test_the_envelope_and_a_success_come_from_input_and_output_entries() -> None:
    """The shim writes neither: the run's Input is the envelope, its Output the output."""
    def entry(index: int, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        return {"index": index, "entry_type": f"Command: {kind}", "name": "",
                "appended_at": f"2026-11-26T10:00:0{index}.000Z",
                "entry": json.dumps({"Command": {kind: body}})}

    journal = [
        entry(0, "Input", {"headers": [], "payload": list(json.dumps(ENVELOPE).encode())}),
        run_entry(1, "provision-compute", 1),
        done_entry(2, 1),
        entry(3, "Output", {"result": {"Success": list(b'{"ok": true}')}}),
    ]
    status = build_status(record(INVOCATION, journal))
    assert status.state is ExecutionState.SUCCEEDED
    assert status.input == {"tenant_id": "acme"}
    assert status.metadata["team"] == "payments"
    assert status.output == {"ok": True}
