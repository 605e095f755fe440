"""The walking skeleton, end to end against a real restate-server and hypercorn."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from landlord_restate import ExecutionInput, ExecutionState, RestateProvider
from landlord_restate.workflow.convert import parse_rfc3339
from tests.conftest import spec_for, unique_id
from tests.waiting import wait_terminal


def provision_request() -> dict[str, Any]:
    """A ProvisionRequest of a tenant no other test uses (the session's mock provider
    keeps its tenants)."""
    return {
        "tenant_id": "acme",
        "tenant_uuid": str(uuid.uuid4()),
        "operation": "provision",
        "desired_config": {"image": "ghcr.io/acme/app:1.4.2", "replicas": 2},
    }


async def test_tenant_provisioning_runs_to_success(provider: RestateProvider) -> None:
    """create, start, poll to succeeded: input, output, times and the steps in order."""
    spec = spec_for("TenantProvisioning")
    created = await provider.create_workflow(spec)
    assert created.resource_ids["service_name"] == "TenantProvisioning"
    assert created.resource_ids["deployment_id"].startswith("dp_")

    request = provision_request()
    before = datetime.now(UTC)
    result = await provider.start_execution(
        spec.workflow_id,
        ExecutionInput(execution_name=unique_id("run"), input=request),
    )
    assert result.execution_id.startswith("inv_")
    assert result.state is ExecutionState.PENDING
    assert result.workflow_id == spec.workflow_id

    status = await wait_terminal(provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED, status.error
    assert status.workflow_id == spec.workflow_id
    assert status.provider_type == "restate"
    assert status.input == request
    output = dict(status.output)
    assert status.stop_time is not None
    assert before <= parse_rfc3339(output.pop("provisioned_at")) <= status.stop_time
    assert output == {  # the mock compute provider's ProvisionResult, as Go writes it
        "tenant_id": request["tenant_uuid"],
        "provider_type": "mock",
        "status": "success",
        "resource_ids": {"tenant": request["tenant_uuid"]},
        "message": "Mock provisioning successful",
    }
    assert status.error is None
    assert status.stop_time is not None
    assert before.replace(microsecond=0) <= status.start_time.replace(microsecond=0)
    assert status.start_time <= status.stop_time <= datetime.now(UTC)

    steps = [e.details["step"] for e in status.history if e.type == "step_completed"]
    assert steps == ["resolve-compute-provider", "provision-compute"]
    kinds = [e.type for e in status.history]
    assert kinds[0] == "execution_started"
    assert kinds[-1] == "execution_succeeded"
    stamps = [e.timestamp for e in status.history]
    assert stamps == sorted(stamps)
    assert status.metadata["restate_status"] == "completed"
    assert status.metadata["workflow_sub_state"] == "succeeded"


async def test_history_names_every_step_of_five(shared_provider: RestateProvider) -> None:
    """A five-step handler: each step shows as started then completed, in order."""
    spec = spec_for("FiveSteps", unique_id("five"))
    await shared_provider.create_workflow(spec)
    result = await shared_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    status = await wait_terminal(shared_provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {"steps": [f"step-{i}" for i in range(1, 6)]}
    step_events = [(e.type, e.details["step"]) for e in status.history if "step" in e.details]
    expected = []
    for i in range(1, 6):
        expected += [("step_started", f"step-{i}"), ("step_completed", f"step-{i}")]
    assert step_events == expected
