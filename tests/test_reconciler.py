"""Landlord's reconciler as the user: idempotent invoke, metadata both ways, callback
options, and statuses read through Landlord's own `ExtractWorkflowDetails` rules."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from landlord_restate import (
    CallbackOptions,
    ComputeCallbackPayload,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionState,
    ExecutionStatus,
    InvalidInputError,
    ProvisionRequest,
    RestateConfig,
    RestateProvider,
    RestateUnavailableError,
    WorkflowSubState,
    config_hash,
    extract_workflow_details,
)
from landlord_restate.restate.wire import DELIVER_CALLBACK_HANDLER
from landlord_restate.workflow import map_execution_state_to_sub_state
from tests.conftest import ROOT, dead_endpoint, spec_for, unique_id
from tests.fakes import serve
from tests.waiting import wait_status, wait_terminal

pytestmark = pytest.mark.timeout(180)


async def created(provider: RestateProvider, handler: str, **fields: Any) -> str:
    """A fresh workflow running `handler` on the shared service; answers its id."""
    spec = spec_for(handler, unique_id(handler.lower()), **fields)
    await provider.create_workflow(spec)
    return spec.workflow_id


def request_for(tenant: str, **fields: Any) -> ProvisionRequest:
    """A ProvisionRequest as Landlord's workflow client builds it."""
    desired = fields.pop("desired_config", {"image": "app:1", "step_seconds": 0.5})
    return ProvisionRequest(
        tenant_id=tenant, tenant_uuid=f"uuid-{tenant}", operation="provision",
        desired_config=desired, metadata={"config_hash": config_hash(desired)} | fields.pop(
            "metadata", {}), **fields,
    )


async def runs_of(provider: RestateProvider, workflow_id: str) -> list[dict[str, Any]]:
    """Every `run` invocation of the workflow, oldest first."""
    return await provider.admin.query(
        "SELECT id, target_service_key, status FROM sys_invocation WHERE "
        f"target_handler_name = 'run' AND target_service_key LIKE '{workflow_id}.%' "
        "ORDER BY created_at"
    )


# -- invoke: one run per identity while it runs ------------------------------------------


async def test_racing_invokes_start_one_run(shared_provider: RestateProvider) -> None:
    """Eight invokes of the same identity at once: one run, every caller told its id."""
    workflow_id = await created(shared_provider, "SlowSteps")
    request = request_for(unique_id("race"))
    results = await asyncio.gather(*(
        shared_provider.invoke(workflow_id, request) for _ in range(8)
    ))
    assert len({r.execution_id for r in results}) == 1
    assert len(await runs_of(shared_provider, workflow_id)) == 1
    # while it runs, another invoke (a reconciler retrying) answers the same run
    again = await shared_provider.invoke(workflow_id, request)
    assert again.execution_id == results[0].execution_id
    assert again.message == "execution already started"


async def test_after_the_run_ended_the_next_invoke_starts_a_new_one(
    shared_provider: RestateProvider,
) -> None:
    """Like Temporal's default id reuse: a new run once the previous one closed."""
    workflow_id = await created(shared_provider, "SlowSteps")
    request = request_for(unique_id("rerun"), desired_config={"step_seconds": 0.01})
    first = await shared_provider.invoke(workflow_id, request)
    assert (await wait_terminal(shared_provider, first.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )
    second, third = await asyncio.gather(
        shared_provider.invoke(workflow_id, request), shared_provider.invoke(workflow_id, request)
    )
    assert second.execution_id != first.execution_id
    assert third.execution_id == second.execution_id
    assert len(await runs_of(shared_provider, workflow_id)) == 2
    # a stopped or failed run has ended too
    await shared_provider.stop_execution(second.execution_id, "operator")
    await wait_terminal(shared_provider, second.execution_id)
    fourth = await shared_provider.invoke(workflow_id, request)
    assert fourth.execution_id not in (first.execution_id, second.execution_id)


async def test_a_changed_configuration_starts_a_new_run(shared_provider: RestateProvider) -> None:
    """The reconciler stops the old run ("Configuration updated") and invokes the new one."""
    workflow_id = await created(shared_provider, "SlowSteps")
    tenant = unique_id("change")
    old = await shared_provider.invoke(
        workflow_id, request_for(tenant, desired_config={"image": "v1", "step_seconds": 5})
    )
    await shared_provider.stop_execution(old.execution_id, "Configuration updated")
    new = await shared_provider.invoke(
        workflow_id, request_for(tenant, desired_config={"image": "v2", "step_seconds": 0.01})
    )
    assert new.execution_id != old.execution_id
    stopped = await wait_terminal(shared_provider, old.execution_id)
    assert stopped.state is ExecutionState.STOPPED
    assert stopped.error is not None
    assert "Configuration updated" in stopped.error.message
    assert (await wait_terminal(shared_provider, new.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )
    # without a config_hash the desired configuration's own hash is the identity
    bare = ProvisionRequest(tenant_id=tenant, desired_config={"image": "v3", "step_seconds": 0})
    third = await shared_provider.invoke(workflow_id, bare)
    assert third.execution_id not in (old.execution_id, new.execution_id)
    assert (await shared_provider.invoke(workflow_id, bare)).execution_id == third.execution_id


async def test_invoke_sets_tags_and_trigger_source_as_landlord_does(
    shared_provider: RestateProvider,
) -> None:
    """tenant_id, tenant_uuid, operation tags and trigger source "reconciler" (Go's)."""
    workflow_id = await created(shared_provider, "GoPair")
    request = ProvisionRequest(tenant_id=unique_id("tags"), tenant_uuid="u-9",
                               operation="deprovision")
    result = await shared_provider.invoke(workflow_id, request)
    await wait_terminal(shared_provider, result.execution_id)
    rows = await shared_provider.admin.query(  # the envelope is the run's journaled input
        "SELECT entry_json FROM sys_journal WHERE entry_type = 'Command: Input' "
        f"AND id = '{result.execution_id}'"
    )
    payload = json.loads(rows[0]["entry_json"])["Command"]["Input"]["payload"]
    envelope = json.loads(bytes(payload))
    assert envelope["tags"] == {"tenant_id": request.tenant_id, "tenant_uuid": "u-9",
                                "operation": "deprovision"}
    assert envelope["trigger_source"] == "reconciler"


async def test_an_explicit_execution_name_keeps_its_once_per_name_rule(
    shared_provider: RestateProvider,
) -> None:
    """start_execution with a name answers that one run forever, even after it ended."""
    workflow_id = await created(shared_provider, "GoPair")
    first = await shared_provider.start_execution(
        workflow_id, ExecutionInput(execution_name="once", input={})
    )
    await wait_terminal(shared_provider, first.execution_id)
    again = await shared_provider.start_execution(
        workflow_id, ExecutionInput(execution_name="once", input={})
    )
    assert again.execution_id == first.execution_id


# -- metadata both ways ------------------------------------------------------------------


async def test_metadata_round_trip(shared_provider: RestateProvider) -> None:
    """Request metadata reaches the status beside the provider's keys, which win a clash."""
    workflow_id = await created(shared_provider, "GoPair")
    request = request_for(unique_id("meta"), metadata={
        "team": "payments", "workflow_sub_state": "mine", "retry_count": "99",
    })
    result = await shared_provider.invoke(workflow_id, request)
    status = await wait_terminal(shared_provider, result.execution_id)
    assert status.metadata["team"] == "payments"
    assert status.metadata["config_hash"] == request.metadata["config_hash"]
    assert status.metadata["workflow_sub_state"] == "succeeded"  # the provider's
    assert status.metadata["retry_count"] == "0"
    started = await shared_provider.start_execution(
        workflow_id, ExecutionInput(input={}, metadata={"ticket": "OPS-7"})
    )
    assert (await wait_terminal(shared_provider, started.execution_id)).metadata[
        "ticket"] == "OPS-7"


# -- bad input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ProvisionRequest(tenant_id=""), "tenant_id"),
        (ProvisionRequest(tenant_id=1), "tenant_id"),  # type: ignore[arg-type]
        (ProvisionRequest(tenant_id="t", tenant_uuid=b"u"), "tenant_uuid"),  # type: ignore[arg-type]
        (ProvisionRequest(tenant_id="t", operation=None), "operation"),  # type: ignore[arg-type]
        (ProvisionRequest(tenant_id="t", metadata={"a": 1}), "metadata"),  # type: ignore[dict-item]
        (ProvisionRequest(tenant_id="t", metadata={2: "b"}), "metadata"),  # type: ignore[dict-item]
        (ProvisionRequest(tenant_id="t", desired_config=[1]), "desired_config"),  # type: ignore[arg-type]
        ({"tenant_id": "t"}, "request"),
    ],
)
async def test_bad_provision_requests_start_nothing(
    shared_provider: RestateProvider, request_: Any, field: str
) -> None:
    """Each malformed request: InvalidInputError naming the field; no run exists after."""
    workflow_id = await created(shared_provider, "GoPair")
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.invoke(workflow_id, request_)
    assert caught.value.field == field
    assert await runs_of(shared_provider, workflow_id) == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        (CallbackOptions(max_retries=-1), "options.max_retries"),
        (CallbackOptions(max_retries=10**9), "options.max_retries"),
        (CallbackOptions(max_retries=True), "options.max_retries"),
        (CallbackOptions(retry_delay=timedelta(seconds=-1)), "options.retry_delay"),
        (CallbackOptions(retry_delay=timedelta(days=30)), "options.retry_delay"),
        (CallbackOptions(retry_delay=5), "options.retry_delay"),  # type: ignore[arg-type]
        (CallbackOptions(backoff_type="fibonacci"), "options.backoff_type"),
        ({"max_retries": 3}, "options"),
    ],
)
async def test_bad_callback_options_are_refused_before_any_io(options: Any, field: str) -> None:
    """Negative or absurd options: InvalidInputError naming the field (the endpoint is dead)."""
    config = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                           retry_window=timedelta(0))
    payload = ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded")
    async with RestateProvider(config) as offline:
        with pytest.raises(InvalidInputError) as caught:
            await offline.post_compute_callback(
                "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", payload, options
            )
    assert caught.value.field == field


# -- callback delivery options -----------------------------------------------------------


class RefusingIngress:
    """In front of Restate's ingress: refuses the first `refusals` callback deliveries with
    a 503 (not forwarded, as a restarting Restate would), then forwards everything."""

    def __init__(self, upstream: str, refusals: int) -> None:
        self.upstream = upstream
        self.refusals = refusals
        self.deliveries = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if request.path.endswith(f"/{DELIVER_CALLBACK_HANDLER}/send"):
            self.deliveries += 1
            if self.deliveries <= self.refusals:
                return web.Response(status=503, text="restarting")
        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.upstream + request.path_qs, data=body,
            headers={k: v for k, v in request.headers.items()
                     if k.lower() in ("content-type", "idempotency-key")},
            skip_auto_headers=("Content-Type",),
        ) as upstream:
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type="application/json")


@pytest.fixture
async def waiting_execution(shared_provider: RestateProvider) -> str:
    """An execution waiting for its compute callback."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    result = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(shared_provider, result.execution_id,
                      lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    return result.execution_id


PAYLOAD = ComputeCallbackPayload(execution_id="c-1", tenant_id="t", status="succeeded")


async def deliver_through(
    proxy: RefusingIngress, config: RestateConfig, execution_id: str, options: CallbackOptions
) -> None:
    """Deliver PAYLOAD with `options` through a provider whose ingress is `proxy`."""
    async with serve(proxy.app) as url, RestateProvider(
        RestateConfig(endpoint=url, admin_endpoint=config.admin_endpoint)
    ) as through_proxy:
        await through_proxy.post_compute_callback(execution_id, PAYLOAD, options)


@pytest.mark.parametrize("backoff_type", ["linear", "exponential"])
async def test_callback_options_retry_delivery(
    shared_config: RestateConfig, shared_provider: RestateProvider, waiting_execution: str,
    backoff_type: str,
) -> None:
    """Three refusals, max_retries 5: delivered on the fourth try; the execution goes on."""
    proxy = RefusingIngress(shared_config.endpoint, refusals=3)
    await deliver_through(proxy, shared_config, waiting_execution, CallbackOptions(
        max_retries=5, retry_delay=timedelta(milliseconds=20), backoff_type=backoff_type))
    assert proxy.deliveries == 4
    assert (await wait_terminal(shared_provider, waiting_execution)).state is (
        ExecutionState.SUCCEEDED
    )


async def test_callback_options_give_up_after_max_retries(
    shared_config: RestateConfig, shared_provider: RestateProvider, waiting_execution: str,
) -> None:
    """Three refusals, max_retries 1: two deliveries, then RestateUnavailableError."""
    proxy = RefusingIngress(shared_config.endpoint, refusals=3)
    with pytest.raises(RestateUnavailableError) as caught:
        await deliver_through(proxy, shared_config, waiting_execution, CallbackOptions(
            max_retries=1, retry_delay=timedelta(milliseconds=10)))
    assert proxy.deliveries == 2
    assert caught.value.status == 503
    # nothing was delivered: the execution still waits, and takes a later delivery
    status = await shared_provider.get_execution_status(waiting_execution)
    assert status.state is ExecutionState.RUNNING
    await shared_provider.post_compute_callback(waiting_execution, PAYLOAD)
    await wait_terminal(shared_provider, waiting_execution)


async def test_a_callback_for_an_ended_execution_is_accepted(
    shared_provider: RestateProvider, waiting_execution: str,
) -> None:
    """Delivering twice (the second after the end) is success without change."""
    options = CallbackOptions(max_retries=2, retry_delay=timedelta(milliseconds=10))
    await shared_provider.post_compute_callback(waiting_execution, PAYLOAD, options)
    await wait_terminal(shared_provider, waiting_execution)
    await shared_provider.post_compute_callback(waiting_execution, PAYLOAD, options)


# -- Landlord's view of our statuses -----------------------------------------------------


async def test_extract_workflow_details_on_each_real_state(
    shared_provider: RestateProvider, shared_config: RestateConfig, tmp_path: Path
) -> None:
    """Running, waiting (timer, callback), backing-off, paused and every terminal state."""
    provider = shared_provider

    async def details_when(execution_id: str, sub: WorkflowSubState) -> tuple[Any, ...]:
        status = await wait_status(
            provider, execution_id, lambda s: extract_workflow_details(s)[0] is sub
        )
        return (status, *extract_workflow_details(status))

    slow = await provider.start_execution(
        await created(provider, "SlowSteps"), ExecutionInput(input={"step_seconds": 5})
    )
    _, _, retries, message = await details_when(slow.execution_id, WorkflowSubState.RUNNING)
    assert (retries, message) == (0, None)

    timer = await provider.start_execution(
        await created(provider, "SleepThenCallback"), ExecutionInput(input={"sleep_ms": 5000})
    )
    status, _, _, message = await details_when(timer.execution_id, WorkflowSubState.WAITING)
    assert status.history[-1].type == "timer_started"
    assert message is None

    callback = await provider.start_execution(
        await created(provider, "SleepThenCallback"), ExecutionInput(input={"sleep_ms": 1})
    )
    status = await wait_status(provider, callback.execution_id,
                               lambda s: s.history[-1].type == "callback_waiting")
    assert extract_workflow_details(status)[0] is WorkflowSubState.WAITING

    flaky = await provider.start_execution(
        await created(provider, "Flaky"), ExecutionInput(input={"marks": str(tmp_path / "f")})
    )
    status, _, first_count, message = await details_when(
        flaky.execution_id, WorkflowSubState.BACKING_OFF
    )
    assert status.state is ExecutionState.RUNNING
    assert message is not None
    assert message.startswith("RuntimeError: transient failure")
    assert "Traceback" not in message
    assert status.error is not None
    assert status.error.cause == "step flaky-step"
    assert status.error.code  # Restate's own code for the failure
    assert first_count is not None
    later = await wait_status(
        provider, flaky.execution_id,
        lambda s: s.metadata["restate_status"] == "backing-off"
        and (extract_workflow_details(s)[1] or 0) > first_count,
    )
    assert extract_workflow_details(later)[2] != ""  # the newest failure's message

    # paused by an operator: Landlord reads "error" with the reason
    await provider.pause_execution(flaky.execution_id)
    status, _sub, _, message = await details_when(flaky.execution_id, WorkflowSubState.ERROR)
    assert status.metadata["restate_status"] == "paused"
    assert message is not None
    assert message.startswith("RuntimeError: transient failure")
    await provider.stop_execution(flaky.execution_id, "test done")

    done = await provider.start_execution(
        await created(provider, "GoPair"), ExecutionInput(input={})
    )
    status = await wait_terminal(provider, done.execution_id)
    assert extract_workflow_details(status) == (WorkflowSubState.SUCCEEDED, 0, None)

    failed = await provider.start_execution(
        await created(provider, "FailWithCode"),
        ExecutionInput(input={"code": "quota", "message": "no capacity"}),
    )
    status = await wait_terminal(provider, failed.execution_id)
    assert extract_workflow_details(status) == (WorkflowSubState.FAILED, 0, "no capacity")

    for execution_id in (slow.execution_id, timer.execution_id):
        await provider.stop_execution(execution_id, "test done")
        status = await wait_terminal(provider, execution_id)
        assert status.state is ExecutionState.STOPPED
        assert extract_workflow_details(status)[0] is WorkflowSubState.FAILED

    timed = await provider.start_execution(
        await created(provider, "SlowSteps", timeout=timedelta(seconds=1)),
        ExecutionInput(input={"step_seconds": 5}),
    )
    status = await wait_terminal(provider, timed.execution_id)
    assert status.state is ExecutionState.TIMEOUT
    assert extract_workflow_details(status)[0] is WorkflowSubState.FAILED
    await provider.stop_execution(callback.execution_id, "test done")


def status_with(**fields: Any) -> ExecutionStatus:
    """An ExecutionStatus for the pure rules below."""
    base: dict[str, Any] = {
        "execution_id": "inv_1", "workflow_id": "w", "provider_type": "restate",
        "state": ExecutionState.RUNNING, "start_time": datetime(2026, 1, 1, tzinfo=UTC),
    }
    return ExecutionStatus(**(base | fields))


def test_go_rules_exactly() -> None:
    """Each rule of Go's ExtractWorkflowDetails and MapExecutionStateToSubState."""
    assert extract_workflow_details(None) == (WorkflowSubState.RUNNING, None, None)
    assert [map_execution_state_to_sub_state(s) for s in ExecutionState] == [
        WorkflowSubState.WAITING, WorkflowSubState.RUNNING, WorkflowSubState.SUCCEEDED,
        WorkflowSubState.FAILED, WorkflowSubState.FAILED, WorkflowSubState.FAILED,
    ]
    # a provider sub-state is taken only when it is one of the six
    assert extract_workflow_details(status_with(metadata={"workflow_sub_state": "waiting"}))[
        0] is WorkflowSubState.WAITING
    assert extract_workflow_details(status_with(metadata={"workflow_sub_state": "nap"}))[
        0] is WorkflowSubState.RUNNING
    # any key naming backoff or retry_state with a backing value forces backing-off
    assert extract_workflow_details(status_with(metadata={"Retry_State": "BackingOff"}))[
        0] is WorkflowSubState.BACKING_OFF
    assert extract_workflow_details(status_with(metadata={"backoff": "no"}))[
        0] is WorkflowSubState.RUNNING
    # retry count: metadata (Atoi), else "retry" events in history
    assert extract_workflow_details(status_with(metadata={"Attempts": "+4"}))[1] == 4
    assert extract_workflow_details(status_with(metadata={"attempts": "4x"}))[1] is None
    assert extract_workflow_details(status_with(metadata={"attempts": ""}))[1] is None
    retried = [ExecutionEvent(timestamp=datetime(2026, 1, 1, tzinfo=UTC), type=t)
               for t in ("step_retry", "Retrying", "step_completed")]
    assert extract_workflow_details(status_with(history=retried))[1] == 2
    # an error message on a live execution is "error", unless it is backing off
    error = ExecutionError(code="x", message="boom")
    assert extract_workflow_details(status_with(error=error)) == (
        WorkflowSubState.ERROR, None, "boom")
    assert extract_workflow_details(status_with(
        state=ExecutionState.PENDING, error=error, metadata={"workflow_sub_state": "backing-off"}
    )) == (WorkflowSubState.BACKING_OFF, None, "boom")
    assert extract_workflow_details(status_with(
        state=ExecutionState.FAILED, error=ExecutionError(code="x", message="")
    )) == (WorkflowSubState.FAILED, None, None)


def test_config_hash_matches_go() -> None:
    """Landlord's ComputeConfigHash: sorted keys, no spaces, Go's HTML escapes, "" if empty."""
    import hashlib

    assert config_hash(None) == config_hash({}) == ""
    go_bytes = b'{"a":1,"b":"x\\u003cy\\u0026z","c":[true,null]}'
    assert config_hash({"c": [True, None], "b": "x<y&z", "a": 1}) == (
        hashlib.sha256(go_bytes).hexdigest()
    )


# -- the example reconciler --------------------------------------------------------------


def load_example() -> Any:
    """examples/reconciler.py, imported by path (examples are not a package)."""
    spec = importlib.util.spec_from_file_location("reconciler", ROOT / "examples/reconciler.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_example_reconciler(provider: RestateProvider) -> None:
    """Provision, then change the configuration: stop, re-invoke, ready again."""
    example = load_example()
    await provider.create_workflow(spec_for("TenantProvisioning"))
    tenant = example.Tenant(name=unique_id("initech"), uuid=unique_id("u"),
                            desired_config={"image": "initech/app:1"})
    tenant = await example.run_until_settled(provider, tenant, "tenant-provisioning",
                                             interval=0.05)
    assert tenant.status == "ready"
    first = tenant.execution_id
    assert tenant.sub_state == "succeeded"
    tenant.desired_config = {"image": "initech/app:2"}
    tenant = await example.run_until_settled(provider, tenant, "tenant-provisioning",
                                             interval=0.05)
    assert tenant.status == "ready"
    assert tenant.execution_id != first
    status = await provider.get_execution_status(tenant.execution_id)
    assert status.input["desired_config"] == {"image": "initech/app:2"}
    assert status.metadata["config_hash"] == config_hash({"image": "initech/app:2"})
