"""The provider contract against a real restate-server and hypercorn deployments.

Most tests use the shared-service deployment so each can take a fresh workflow id; the
default one-service-per-handler mode has its own tests.

The core cases (start, each step once, durable sleep, the compute callback, stop, timeout,
status and history) run under both execution mechanisms (`mechanism_provider`): the
hypercorn deployment and a local AWS Lambda the server invokes through its Lambda client.
The other cases that take `mechanism_provider` run on Lambda in `make soak` only
(`LAMBDA_IN_SOAK`).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    DeploymentError,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    InvalidInputError,
    InvalidSpecError,
    ProvisionRequest,
    RestateConfig,
    RestateProvider,
    RestateServerError,
    RetryPolicy,
    WorkflowNotFoundError,
    WorkflowSpec,
)
from landlord_restate.testing import LocalRestate
from tests.conftest import (
    LAMBDA_IN_SOAK,
    ROOT,
    TEST_HANDLERS,
    dead_endpoint,
    deployment_env,
    spec_for,
    unique_id,
)
from tests.waiting import read_marks, wait_for, wait_marks, wait_status, wait_terminal

#: a provider config whose Restate is not there (and which does not retry)
OFFLINE = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                        retry_attempts=0, retry_window=timedelta(0))


async def created(provider: RestateProvider, handler: str, **fields: Any) -> WorkflowSpec:
    """Create a fresh workflow running `handler` on the shared service."""
    spec = spec_for(handler, unique_id(handler.lower()), **fields)
    await provider.create_workflow(spec)
    return spec


# -- create_workflow ------------------------------------------------------------------------


@LAMBDA_IN_SOAK
async def test_create_returns_ids_and_second_create_changes_nothing(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """resource_ids and created_at; a second create with another spec keeps the first."""
    spec = spec_for("FiveSteps", unique_id("create"))
    first = await mechanism_provider.create_workflow(spec)
    assert first.workflow_id == spec.workflow_id
    assert first.provider_type == "restate"
    assert first.resource_ids["service_name"] == "LandlordTests"
    assert first.resource_ids["deployment_id"].startswith("dp_")
    assert first.resource_ids["endpoint"].endswith("/LandlordTests")

    changed = spec_for("FailWithCode", spec.workflow_id, description="another")
    second = await mechanism_provider.create_workflow(changed)
    assert second.created_at == first.created_at
    assert second.message == "workflow already exists"

    # the stored spec is still the first: executions run FiveSteps, not FailWithCode
    marks = tmp_path / "marks"
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"marks": str(marks)})
    )
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert read_marks(marks) == [f"step-{i}" for i in range(1, 6)]


async def test_create_failure_from_restate_carries_status_and_body(
    shared_config: RestateConfig,
) -> None:
    """A deployment Restate cannot reach: DeploymentError naming it, with Restate's answer
    (status, restate_code, body) unchanged, raised at once."""
    address = dead_endpoint()
    dead = RestateConfig(
        endpoint=shared_config.endpoint,
        admin_endpoint=shared_config.admin_endpoint,
        deployment_url=address,
        service_name="LandlordTests",
    )
    async with RestateProvider(dead) as provider:
        began = time.monotonic()
        with pytest.raises(DeploymentError) as caught:
            await provider.create_workflow(spec_for("FiveSteps", unique_id("dead")))
        assert time.monotonic() - began < dead.retry_window.total_seconds()
    assert caught.value.deployment == address
    assert address in str(caught.value)
    assert caught.value.status == 500
    assert caught.value.restate_code == "META0003"
    assert address.removeprefix("http://") in caught.value.body
    cause = caught.value.__cause__
    assert isinstance(cause, RestateServerError)
    assert cause.method == "POST"
    assert cause.url.endswith("/deployments")


@LAMBDA_IN_SOAK
async def test_create_refuses_a_handler_the_deployment_does_not_host(
    mechanism_provider: RestateProvider,
) -> None:
    """The service must host the definition's handler; nothing is stored otherwise."""
    spec = spec_for("NoSuchHandler", unique_id("missing"))
    with pytest.raises(InvalidSpecError) as caught:
        await mechanism_provider.create_workflow(spec)
    assert caught.value.field == "definition.handler"
    assert "NoSuchHandler" in str(caught.value)
    with pytest.raises(WorkflowNotFoundError):
        await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput())


async def test_service_name_from_provider_config(provider: RestateProvider) -> None:
    """provider_config.service_name lets any workflow id run on a named service."""
    spec = spec_for(
        "TenantProvisioning",
        unique_id("acme-onboarding"),
        provider_config={"service_name": "TenantProvisioning"},
    )
    result = await provider.create_workflow(spec)
    assert result.resource_ids["service_name"] == "TenantProvisioning"
    started = await provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"tenant_id": "acme"})
    )
    status = await wait_terminal(provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.metadata["service_name"] == "TenantProvisioning"


async def test_workflow_id_that_cannot_name_a_service(provider: RestateProvider) -> None:
    """Derived service names are checked before anything reaches the server."""
    with pytest.raises(InvalidSpecError) as caught:
        await provider.create_workflow(spec_for("TenantProvisioning", "2fa-setup"))
    assert caught.value.field == "workflow_id"


# -- start_execution --------------------------------------------------------------------------


@LAMBDA_IN_SOAK
async def test_start_unknown_workflow(mechanism_provider: RestateProvider) -> None:
    """A workflow never created: WorkflowNotFoundError naming it."""
    missing = unique_id("never")
    with pytest.raises(WorkflowNotFoundError) as caught:
        await mechanism_provider.start_execution(missing, ExecutionInput())
    assert caught.value.workflow_id == missing
    assert missing in str(caught.value)


async def test_same_execution_name_is_one_run(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """Starting the same name again answers the same execution and runs nothing twice."""
    spec = await created(mechanism_provider, "FiveSteps")
    marks = tmp_path / "marks"
    execution = ExecutionInput(execution_name="only-once", input={"marks": str(marks)})
    first = await mechanism_provider.start_execution(spec.workflow_id, execution)
    again = await mechanism_provider.start_execution(spec.workflow_id, execution)
    assert again.execution_id == first.execution_id
    assert first.state is ExecutionState.PENDING
    assert again.state is ExecutionState.RUNNING
    assert again.message == "execution already started"
    await wait_terminal(mechanism_provider, first.execution_id)
    after = await mechanism_provider.start_execution(spec.workflow_id, execution)
    assert after.execution_id == first.execution_id
    assert read_marks(marks) == [f"step-{i}" for i in range(1, 6)]


@LAMBDA_IN_SOAK
async def test_without_a_name_each_start_is_new(mechanism_provider: RestateProvider) -> None:
    """No execution name: a unique one is generated each time."""
    spec = await created(mechanism_provider, "GoPair")
    a = await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    b = await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    assert a.execution_id != b.execution_id


@pytest.mark.parametrize("name", ["has space", "x" * 129, "semi;colon", "dot.ted", "a/b"])
async def test_execution_names_follow_landlords_rule(
    shared_provider: RestateProvider, name: str
) -> None:
    """Names outside ^[a-zA-Z0-9_-]{1,128}$ are refused before anything is sent."""
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.start_execution("any-workflow", ExecutionInput(execution_name=name))
    assert caught.value.field == "execution_name"


@LAMBDA_IN_SOAK
async def test_two_workflows_sharing_a_service_never_collide(
    mechanism_provider: RestateProvider,
) -> None:
    """Same execution name under two workflows of one service: two executions."""
    one = await created(mechanism_provider, "GoPair")
    two = await created(mechanism_provider, "GoPair")
    a = await mechanism_provider.start_execution(
        one.workflow_id, ExecutionInput(execution_name="same", input={"value": 1})
    )
    b = await mechanism_provider.start_execution(
        two.workflow_id, ExecutionInput(execution_name="same", input={"value": 2})
    )
    assert a.execution_id != b.execution_id
    sa = await wait_terminal(mechanism_provider, a.execution_id)
    sb = await wait_terminal(mechanism_provider, b.execution_id)
    assert (sa.workflow_id, sa.output) == (one.workflow_id, {"echo": 1})
    assert (sb.workflow_id, sb.output) == (two.workflow_id, {"echo": 2})


async def test_input_that_is_not_json_is_refused(shared_provider: RestateProvider) -> None:
    """Input must be JSON: a clear error naming the field, nothing started."""
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.start_execution(
            "any-workflow", ExecutionInput(input={"when": object()})
        )
    assert caught.value.field == "input"


# -- get_execution_status ----------------------------------------------------------------------


async def test_failed_execution_has_code_message_cause(mechanism_provider: RestateProvider) -> None:
    """A HandlerError ends the execution failed with its code, message and cause."""
    spec = await created(mechanism_provider, "FailWithCode")
    request = {"code": "compute_failed", "message": "no capacity", "cause": "ec2: capacity"}
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input=request)
    )
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.message, status.error.cause) == (
        "compute_failed", "no capacity", "ec2: capacity",
    )
    assert status.error.failed_at == status.stop_time
    assert status.output is None
    assert status.input == request
    assert status.metadata["restate_status"] == "completed"
    assert status.metadata["workflow_sub_state"] == "failed"
    kinds = [e.type for e in status.history]
    assert kinds[-1] == "execution_failed"
    assert "step_completed" in kinds


@LAMBDA_IN_SOAK
async def test_go_pair_results(mechanism_provider: RestateProvider) -> None:
    """(output, None) succeeds; (None, error) fails like HandlerError."""
    spec = await created(mechanism_provider, "GoPair")
    ok = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"value": 7})
    )
    bad = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"error": "disk full"})
    )
    ok_status = await wait_terminal(mechanism_provider, ok.execution_id)
    bad_status = await wait_terminal(mechanism_provider, bad.execution_id)
    assert ok_status.state is ExecutionState.SUCCEEDED
    assert ok_status.output == {"echo": 7}
    assert bad_status.state is ExecutionState.FAILED
    assert bad_status.error is not None
    assert (bad_status.error.code, bad_status.error.message) == ("go_error", "disk full")


async def test_waiting_execution_is_running_with_history(
    mechanism_provider: RestateProvider,
) -> None:
    """Waiting on the callback: running, sub-state waiting, no stop time, timer in history."""
    spec = await created(mechanism_provider, "SleepThenCallback")
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"sleep_ms": 50})
    )
    status = await wait_status(
        mechanism_provider,
        result.execution_id,
        lambda s: any(e.type == "callback_waiting" for e in s.history),
    )
    assert status.state is ExecutionState.RUNNING
    assert status.stop_time is None
    assert status.error is None
    kinds = [e.type for e in status.history]
    assert kinds[:3] == ["execution_started", "step_started", "step_completed"]
    assert kinds.index("timer_started") < kinds.index("timer_fired") < kinds.index(
        "callback_waiting"
    )
    assert status.metadata["workflow_sub_state"] == "waiting"
    assert status.history[-1].details == {"promise": "compute_callback"}
    await mechanism_provider.stop_execution(result.execution_id, "test cleanup")


@LAMBDA_IN_SOAK
async def test_unknown_and_foreign_ids(mechanism_provider: RestateProvider) -> None:
    """Well-formed but unknown ids, and ids of non-execution invocations, are not found."""
    for unknown in ("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", "inv_" + "a" * 34):
        with pytest.raises(ExecutionNotFoundError) as caught:
            await mechanism_provider.get_execution_status(unknown)
        assert caught.value.execution_id == unknown
    # a workflow of this test and a run of it: both call the catalog (put, then get)
    spec = await created(mechanism_provider, "GoPair")
    run = await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    await wait_terminal(mechanism_provider, run.execution_id)
    rows = await mechanism_provider.admin.query(
        "SELECT id FROM sys_invocation WHERE target_service_name = 'LandlordCatalog' "
        f"AND target_service_key = '{spec.workflow_id}'"
    )
    assert rows, "creating and running a workflow leaves a catalog invocation"
    for row in rows:
        with pytest.raises(ExecutionNotFoundError):
            await mechanism_provider.get_execution_status(row["id"])


@pytest.mark.parametrize(
    "bad",
    [
        "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW' OR '1'='1",
        "x'; DROP TABLE state; --",
        "../deployments",
        "",
    ],
)
async def test_bad_ids_never_reach_the_server(bad: str) -> None:
    """Ids that are not invocation ids fail before any I/O (the endpoint here is dead)."""
    async with RestateProvider(OFFLINE) as offline:
        for call in (
            offline.get_execution_status(bad),
            offline.stop_execution(bad, "x"),
            offline.get_workflow_status(bad),
        ):
            with pytest.raises(InvalidInputError):
                await call


@LAMBDA_IN_SOAK
async def test_retries_follow_the_retry_policy(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """A step failing twice succeeds on the third attempt within max_attempts=5."""
    policy = RetryPolicy(
        max_attempts=5,
        backoff_rate=1.5,
        initial_interval=timedelta(milliseconds=50),
        max_interval=timedelta(milliseconds=200),
    )
    spec = await created(mechanism_provider, "Flaky", retry_policy=policy)
    marks = tmp_path / "attempts"
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"marks": str(marks), "succeed_on": 3})
    )
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {"attempts": 3}
    assert len(read_marks(marks)) == 3


@LAMBDA_IN_SOAK
async def test_retries_exhausted_fail_the_execution(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """max_attempts=2: two attempts, then a terminal step failure."""
    policy = RetryPolicy(max_attempts=2, initial_interval=timedelta(milliseconds=50))
    spec = await created(mechanism_provider, "Flaky", retry_policy=policy)
    marks = tmp_path / "attempts"
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"marks": str(marks)})
    )
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "step_failed"
    assert "transient failure" in status.error.message
    assert len(read_marks(marks)) == 2


@LAMBDA_IN_SOAK
async def test_backing_off_shows_retries_and_last_failure(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """Without a limit, a failing step backs off; status shows retry count and failure."""
    policy = RetryPolicy(initial_interval=timedelta(milliseconds=100))
    spec = await created(mechanism_provider, "Flaky", retry_policy=policy)
    marks = tmp_path / "attempts"
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"marks": str(marks)})
    )
    status = await wait_status(
        mechanism_provider, result.execution_id, lambda s: int(s.metadata["retry_count"]) >= 2
    )
    assert status.state is ExecutionState.RUNNING
    assert status.metadata["workflow_sub_state"] in ("backing-off", "running")
    assert "transient failure" in status.metadata["last_failure"]
    await mechanism_provider.stop_execution(result.execution_id, "cleanup")
    stopped = await wait_terminal(mechanism_provider, result.execution_id)
    assert stopped.state is ExecutionState.STOPPED


# -- stop_execution --------------------------------------------------------------------------


async def test_stop_records_reason_and_runs_no_later_step(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """Stopped mid-step: state stopped, reason in status and history, no step after."""
    spec = await created(mechanism_provider, "SlowSteps")
    marks = tmp_path / "marks"
    result = await mechanism_provider.start_execution(
        spec.workflow_id,
        ExecutionInput(input={"marks": str(marks), "step_seconds": 1.0, "steps": 4}),
    )
    await wait_marks(marks, "start slow-1")
    await mechanism_provider.stop_execution(result.execution_id, "tenant deleted by operator")
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.STOPPED
    assert status.error is not None
    assert status.error.code == "stopped"
    assert status.error.message == "tenant deleted by operator"
    last = status.history[-1]
    assert last.type == "execution_stopped"
    assert last.details["reason"] == "tenant deleted by operator"
    # the observation window is the test (no step may start in it), not a wait for
    # something: half a step longer than a step (1 s), so a later step would have started
    await asyncio.sleep(1.5)
    assert not any(line.startswith("start slow-2") for line in read_marks(marks))


@LAMBDA_IN_SOAK
async def test_stopping_finished_executions_changes_nothing(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """Stop after success, and stop twice: states and reasons stay as they were."""
    done_spec = await created(mechanism_provider, "GoPair")
    done = await mechanism_provider.start_execution(done_spec.workflow_id, ExecutionInput(input={}))
    before = await wait_terminal(mechanism_provider, done.execution_id)
    await mechanism_provider.stop_execution(done.execution_id, "too late")
    after = await mechanism_provider.get_execution_status(done.execution_id)
    assert after.state is ExecutionState.SUCCEEDED
    assert after.history == before.history

    slow_spec = await created(mechanism_provider, "SlowSteps")
    marks = tmp_path / "marks"
    slow = await mechanism_provider.start_execution(
        slow_spec.workflow_id, ExecutionInput(input={"marks": str(marks), "step_seconds": 5})
    )
    await wait_marks(marks, "start slow-1")
    await mechanism_provider.stop_execution(slow.execution_id, "first reason")
    first = await wait_terminal(mechanism_provider, slow.execution_id)
    await mechanism_provider.stop_execution(slow.execution_id, "second reason")
    second = await mechanism_provider.get_execution_status(slow.execution_id)
    assert second.state is ExecutionState.STOPPED
    assert second.error == first.error
    assert first.error is not None
    assert first.error.message == "first reason"


async def test_stop_unknown_execution(shared_provider: RestateProvider) -> None:
    """Stopping an id Restate does not know: ExecutionNotFoundError."""
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.stop_execution("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", "x")


# -- timeout ----------------------------------------------------------------------------------


async def test_spec_timeout_ends_in_timeout(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """spec.timeout=2s on a 10 s handler: state timeout, within the timeout plus seconds."""
    spec = await created(mechanism_provider, "SlowSteps", timeout=timedelta(seconds=2))
    marks = tmp_path / "marks"
    result = await mechanism_provider.start_execution(
        spec.workflow_id,
        ExecutionInput(input={"marks": str(marks), "step_seconds": 1.0, "steps": 10}),
    )
    status = await wait_terminal(mechanism_provider, result.execution_id, within=15)
    assert status.state is ExecutionState.TIMEOUT
    assert status.error is not None
    assert status.error.code == "timeout"
    assert "timeout" in status.error.message
    assert status.stop_time is not None
    elapsed = (status.stop_time - status.start_time).total_seconds()
    assert 2.0 <= elapsed < 6.0
    assert status.history[-1].type == "execution_timed_out"
    assert "end slow-10" not in read_marks(marks)


async def test_configured_default_timeout(
    shared_config: RestateConfig, tmp_path: Path
) -> None:
    """A spec without timeout takes the provider's configured default."""
    config = RestateConfig(
        endpoint=shared_config.endpoint,
        admin_endpoint=shared_config.admin_endpoint,
        deployment_url=shared_config.deployment_url,
        service_name=shared_config.service_name,
        timeout=timedelta(seconds=1),
    )
    async with RestateProvider(config) as provider:
        spec = await created(provider, "SlowSteps")
        result = await provider.start_execution(
            spec.workflow_id,
            ExecutionInput(input={"marks": str(tmp_path / "m"), "step_seconds": 1, "steps": 10}),
        )
        status = await wait_terminal(provider, result.execution_id, within=15)
    assert status.state is ExecutionState.TIMEOUT


# -- delete_workflow --------------------------------------------------------------------------


@LAMBDA_IN_SOAK
async def test_delete_stops_new_starts_but_not_running_ones(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """After delete: start fails, the running execution still succeeds."""
    spec = await created(mechanism_provider, "SlowSteps")
    marks = tmp_path / "marks"
    running = await mechanism_provider.start_execution(
        spec.workflow_id,
        ExecutionInput(input={"marks": str(marks), "step_seconds": 0.5, "steps": 2}),
    )
    await wait_marks(marks, "start slow-1")
    await mechanism_provider.delete_workflow(spec.workflow_id)
    with pytest.raises(WorkflowNotFoundError):
        await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput())
    status = await wait_terminal(mechanism_provider, running.execution_id)
    assert status.state is ExecutionState.SUCCEEDED


async def test_delete_unknown_workflow_succeeds(shared_provider: RestateProvider) -> None:
    """Deleting what was never created is not an error."""
    await shared_provider.delete_workflow(unique_id("never-created"))


# -- validate ---------------------------------------------------------------------------------


def _spec(**changes: Any) -> WorkflowSpec:
    base: dict[str, Any] = {
        "workflow_id": "valid-id",
        "provider_type": "restate",
        "definition": {"handler": "FiveSteps"},
    }
    return WorkflowSpec(**(base | changes))


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (_spec(workflow_id="Bad_Id"), "workflow_id"),
        (_spec(workflow_id="x" * 129), "workflow_id"),
        (_spec(provider_type="temporal"), "provider_type"),
        (_spec(name="n" * 257), "name"),
        (_spec(definition=None), "definition"),
        (_spec(definition=["handler"]), "definition"),
        (_spec(definition={}), "definition.handler"),
        (_spec(definition={"handler": "lowercase"}), "definition.handler"),
        (_spec(definition={"handler": "X", "steps": []}), "definition"),
        (_spec(timeout=timedelta(seconds=-1)), "timeout"),
        (_spec(retry_policy=RetryPolicy(max_attempts=-1)), "retry_policy.max_attempts"),
        (_spec(retry_policy=RetryPolicy(backoff_rate=0.5)), "retry_policy.backoff_rate"),
        (
            _spec(retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=10), max_interval=timedelta(seconds=1)
            )),
            "retry_policy.max_interval",
        ),
        (_spec(tags={"": "x"}), "tags"),
        (_spec(provider_config=[1]), "provider_config"),
        (_spec(provider_config={"region": "eu"}), "provider_config"),
        (_spec(provider_config={"service_name": 3}), "provider_config.service_name"),
        (_spec(provider_config={"service_name": "9bad"}), "provider_config.service_name"),
    ],
)
async def test_validate_names_the_field(spec: WorkflowSpec, field: str) -> None:
    """Each invalid spec: InvalidSpecError whose field and message say what is wrong."""
    async with RestateProvider(OFFLINE) as offline:
        with pytest.raises(InvalidSpecError) as caught:
            await offline.validate(spec)
    assert caught.value.field == field
    assert field.split(".")[0] in str(caught.value)


async def test_validate_offline_accepts_a_good_spec() -> None:
    """Restate unreachable: the offline checks alone decide."""
    async with RestateProvider(OFFLINE) as offline:
        await offline.validate(_spec(provider_config={"service_name": "LandlordTests"}))


@LAMBDA_IN_SOAK
async def test_validate_asks_the_deployment_without_registering(
    mechanism_provider: RestateProvider,
) -> None:
    """Reachable: a handler the deployment does not host is refused; nothing registered."""
    before = await mechanism_provider.admin.query("SELECT count(*) AS n FROM sys_deployment")
    await mechanism_provider.validate(_spec(workflow_id=unique_id("v")))
    with pytest.raises(InvalidSpecError) as caught:
        await mechanism_provider.validate(_spec(definition={"handler": "NotHostedAnywhere"}))
    assert caught.value.field == "definition.handler"
    after = await mechanism_provider.admin.query("SELECT count(*) AS n FROM sys_deployment")
    assert after == before


# -- compute callback, invoke, workflow status ------------------------------------------------


async def test_compute_callback_resumes_the_handler(mechanism_provider: RestateProvider) -> None:
    """The payload reaches ctx.compute_callback(); a second delivery changes nothing."""
    spec = await created(mechanism_provider, "SleepThenCallback")
    result = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"sleep_ms": 10})
    )
    await wait_status(
        mechanism_provider,
        result.execution_id,
        lambda s: any(e.type == "callback_waiting" for e in s.history),
    )
    payload = ComputeCallbackPayload(
        execution_id="compute-123",
        tenant_id="acme",
        status="succeeded",
        resource_ids={"task": "arn:aws:ecs:task/1"},
    )
    await mechanism_provider.post_compute_callback(result.execution_id, payload)
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {
        "compute": {
            "execution_id": "compute-123",
            "tenant_id": "acme",
            "status": "succeeded",
            "resource_ids": {"task": "arn:aws:ecs:task/1"},
            "error_code": "",
            "error_message": "",
            "is_retriable": False,
        }
    }
    assert "callback_received" in [e.type for e in status.history]
    await mechanism_provider.post_compute_callback(result.execution_id, payload)
    again = await mechanism_provider.get_execution_status(result.execution_id)
    assert again.output == status.output


@LAMBDA_IN_SOAK
async def test_failed_compute_callback_fails_the_execution(
    mechanism_provider: RestateProvider,
) -> None:
    """A failed compute callback makes the handler fail with its message."""
    spec = await created(mechanism_provider, "SleepThenCallback")
    result = await mechanism_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    payload = ComputeCallbackPayload(
        execution_id="c-1", tenant_id="acme", status="failed",
        error_code="capacity", error_message="no capacity in eu-west-1", is_retriable=True,
    )
    # delivered before the handler waits: the durable promise keeps it until then
    await mechanism_provider.post_compute_callback(result.execution_id, payload)
    status = await wait_terminal(mechanism_provider, result.execution_id)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert (status.error.code, status.error.message) == (
        "compute_failed", "no capacity in eu-west-1",
    )


async def test_invoke_and_workflow_status(provider: RestateProvider) -> None:
    """invoke() starts from a ProvisionRequest; get_workflow_status() reads the outcome."""
    await provider.create_workflow(spec_for("TenantProvisioning"))
    request = ProvisionRequest(
        tenant_id="globex", tenant_uuid=unique_id("u"), operation="provision",
        desired_config={"image": "globex/app:2", "replicas": 3},
    )
    result = await provider.invoke("tenant-provisioning", request)
    assert result.execution_id.startswith("inv_")
    await wait_terminal(provider, result.execution_id)
    status = await provider.get_workflow_status(result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.execution_id == result.execution_id
    assert status.error is None
    assert status.output["tenant_id"] == request.tenant_uuid  # the compute result's tenant
    assert status.output["status"] == "success"


async def test_invoke_requires_a_tenant(provider: RestateProvider) -> None:
    """A ProvisionRequest without tenant_id is refused, naming the field."""
    with pytest.raises(InvalidInputError) as caught:
        await provider.invoke("tenant-provisioning", ProvisionRequest(tenant_id=""))
    assert caught.value.field == "tenant_id"


async def test_retention_is_published_with_the_service(tmp_path: Path) -> None:
    """LANDLORD_RESTATE_RETENTION reaches Restate: status and history stay queryable for
    it. Set to 2h, not Restate's default of one day, so a setting that is lost shows."""
    async with LocalRestate(
        handlers=[TEST_HANDLERS], service_name="Retained", base_dir=tmp_path,
        config_file=ROOT / "restate.toml", env=deployment_env(LANDLORD_RESTATE_RETENTION="2h"),
    ) as local, RestateProvider(local.config()) as provider:
        spec = spec_for("GoPair", unique_id("retained"))
        await provider.create_workflow(spec)  # registers the deployment
        service = await provider.admin.get_service("Retained")
    assert service is not None
    assert service["workflow_completion_retention"] == "2h"
    run = next(h for h in service["handlers"] if h["name"] == "run")
    assert run["journal_retention"] == "2h"


@LAMBDA_IN_SOAK
async def test_finished_runs_leave_no_timeout_call_behind(
    mechanism_provider: RestateProvider, tmp_path: Path
) -> None:
    """Succeeded, failed and stopped runs cancel their pending timeout call."""
    spec = await created(mechanism_provider, "SlowSteps", timeout=timedelta(hours=1))
    marks = tmp_path / "marks"
    ok = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"steps": 1, "step_seconds": 0.1})
    )
    stopped = await mechanism_provider.start_execution(
        spec.workflow_id, ExecutionInput(input={"marks": str(marks), "step_seconds": 5})
    )
    await wait_marks(marks, "start slow-1")
    await mechanism_provider.stop_execution(stopped.execution_id, "enough")
    for execution_id in (ok.execution_id, stopped.execution_id):
        await wait_terminal(mechanism_provider, execution_id)
    # cancelling a pending call takes effect a moment after the run ends
    await wait_for(lambda: pending_expiries(mechanism_provider, spec.workflow_id),
                   lambda rows: rows == [], within=10, what="no pending expire call")


async def pending_expiries(provider: RestateProvider, workflow_id: str) -> list[dict[str, Any]]:
    """Pending `expire` calls of a workflow's runs."""
    return await provider.admin.query(
        "SELECT id, status FROM sys_invocation WHERE target_handler_name = 'expire' "
        f"AND target_service_key LIKE '{workflow_id}.%' AND status != 'completed'"
    )


async def test_an_old_spec_cache_setting_changes_nothing(
    shared_config: RestateConfig,
) -> None:
    """spec_cache_ttl (no longer used) still loads; starts work and a delete is seen at
    once."""
    config = RestateConfig(
        endpoint=shared_config.endpoint, admin_endpoint=shared_config.admin_endpoint,
        deployment_url=shared_config.deployment_url, service_name=shared_config.service_name,
        spec_cache_ttl=timedelta(minutes=5),
    )
    async with RestateProvider(config) as provider:
        spec = await created(provider, "GoPair")
        first = await provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
        assert (await wait_terminal(provider, first.execution_id)).state is (
            ExecutionState.SUCCEEDED
        )
        await provider.delete_workflow(spec.workflow_id)
        with pytest.raises(WorkflowNotFoundError):
            await provider.start_execution(spec.workflow_id, ExecutionInput())
