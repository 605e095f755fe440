"""What an operator sees in Restate's UI, read as the UI reads it: the admin API and SQL.

A stopped run's own journal and failure carry its reason; a failed run's failure leads with
Landlord's code; the provider's own services say what they are and stay out of ingress
where nothing needs them there; a catalog record is not a run of the workflow it describes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from landlord_restate import ExecutionInput, ExecutionState, RestateProvider
from landlord_restate.restate.wire import (
    CATALOG_RECORD_SERVICE,
    CATALOG_SERVICE,
    CONTROL_SERVICE,
)
from tests.conftest import spec_for, unique_id
from tests.waiting import wait_status, wait_terminal

pytestmark = pytest.mark.timeout(60)


async def invocation_row(provider: RestateProvider, execution_id: str) -> dict[str, Any]:
    """The sys_invocation row the UI's invocation page shows."""
    rows = await provider.admin.query(
        "SELECT target_service_ty, completion_failure, status FROM sys_invocation "
        f"WHERE id = '{execution_id}'")
    return rows[0]


async def journal(provider: RestateProvider, execution_id: str) -> list[dict[str, Any]]:
    """The journal entries the UI's journal tab lists, in order."""
    return await provider.admin.query(
        "SELECT index, entry_type, name, entry_json FROM sys_journal "
        f"WHERE id = '{execution_id}' ORDER BY index")


async def test_a_stopped_runs_own_journal_and_failure_carry_its_reason(
    shared_provider: RestateProvider,
) -> None:
    """Stopped while running: its failure is "stopped: <reason>", and its journal holds the
    read of its stop record and the outcome, not only a bare cancellation."""
    spec = spec_for("SlowSteps", unique_id("ui-stop"))
    await shared_provider.create_workflow(spec)
    started = await shared_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"step_seconds": 5}))
    await wait_status(shared_provider, started.execution_id,
                      lambda s: any(e.type == "step_started" for e in s.history))
    await shared_provider.stop_execution(started.execution_id, "tenant deleted by operator")
    status = await wait_terminal(shared_provider, started.execution_id)
    assert status.state is ExecutionState.STOPPED
    row = await invocation_row(shared_provider, started.execution_id)
    assert row["completion_failure"] == "[409] stopped: tenant deleted by operator"
    entries = await journal(shared_provider, started.execution_id)
    calls = [e for e in entries if e["entry_type"] == "Command: Call"]
    assert any(CONTROL_SERVICE in str(e["entry_json"]) for e in calls), entries
    assert any("tenant deleted by operator" in str(e["entry_json"]) for e in entries)


async def test_a_failed_runs_failure_leads_with_landlords_code(
    shared_provider: RestateProvider,
) -> None:
    """A handler's failure: the failure line starts with its code, a caller's mistake
    (invalid_*) carries a 4xx status, the work's own failure 500."""
    spec = spec_for("FailWithCode", unique_id("ui-fail"))
    await shared_provider.create_workflow(spec)
    for code, status_code in (("invalid_request", 400), ("compute_failed", 500)):
        started = await shared_provider.start_execution(spec.workflow_id, ExecutionInput(
            input={"code": code, "message": "tenant quota exceeded"}))
        await wait_terminal(shared_provider, started.execution_id)
        failure = (await invocation_row(shared_provider, started.execution_id))[
            "completion_failure"]
        assert failure == f"[{status_code}] {code}: tenant quota exceeded"


async def test_the_providers_services_say_what_they_are(
    shared_provider: RestateProvider,
) -> None:
    """The catalog, its records and the control object carry documentation and
    `landlord.internal` metadata; what nothing calls through the ingress is private."""
    await shared_provider.create_workflow(spec_for("GoPair", unique_id("ui-docs")))
    for name in (CATALOG_SERVICE, CATALOG_RECORD_SERVICE, CONTROL_SERVICE):
        service = await shared_provider.admin.get_service(name)
        assert service is not None
        assert "internal to landlord-restate" in str(service.get("documentation"))
        assert service["metadata"]["landlord.internal"] == "true"
        assert all(h.get("documentation") for h in service["handlers"]), name
    record = await shared_provider.admin.get_service(CATALOG_RECORD_SERVICE)
    assert record is not None
    assert record["public"] is False
    public = {(name, h["name"]): h.get("public", True)
              for name in (CATALOG_SERVICE, CONTROL_SERVICE)
              for h in (await shared_provider.admin.get_service(name) or {})["handlers"]}
    # only what the provider calls through the ingress is public
    assert public == {(CATALOG_SERVICE, "put"): True, (CATALOG_SERVICE, "get"): False,
                      (CONTROL_SERVICE, "deliver_callback"): True,
                      (CONTROL_SERVICE, "stop_record"): False}


async def test_a_catalog_record_is_not_a_run_of_its_workflow(
    shared_provider: RestateProvider,
) -> None:
    """Where the UI lists workflow runs (workflow-type invocations), nothing is keyed by
    the workflow's id: its record is a Service invocation keyed by nothing."""
    spec = spec_for("GoPair", unique_id("ui-record"))
    created = await shared_provider.create_workflow(spec)
    entry = created.resource_ids["catalog_entry"]
    row = await invocation_row(shared_provider, entry)
    assert row["target_service_ty"] == "service"
    runs_keyed_by_id = await shared_provider.admin.query(
        "SELECT id FROM sys_invocation WHERE target_service_ty = 'workflow' "
        f"AND target_service_key = '{spec.workflow_id}'")
    assert runs_keyed_by_id == []
    started = await shared_provider.start_execution(
        spec.workflow_id, ExecutionInput(execution_name="one", input={"value": 1}))
    await wait_terminal(shared_provider, started.execution_id)
    listed = await shared_provider.list_executions(workflow_id=spec.workflow_id)
    assert [s.execution_id for s in listed] == [started.execution_id]
    assert json.dumps(listed[0].execution_name) == '"one"'
