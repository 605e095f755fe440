"""Nothing waits on the handler deployment: the control plane on restate-server alone.

A stack of this module's own (one service per handler, so deleting a workflow closes its
service), whose deployment the tests kill and bring back. `stop_grace` is 1 s here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from landlord_restate import (
    ComputeCallbackPayload,
    DeploymentError,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    InvalidSpecError,
    RestateConfig,
    RestateProvider,
    WorkflowNotFoundError,
)
from landlord_restate.restate.naming import workflow_key
from landlord_restate.restate.wire import CATALOG_RECORD, CATALOG_SERVICE
from landlord_restate.testing import LocalRestate
from tests.conftest import (
    ROOT,
    TEST_HANDLERS,
    dead_endpoint,
    deployment_env,
    spec_for,
    unique_id,
)
from tests.fakes import serve
from tests.waiting import read_marks, wait_marks, wait_status, wait_terminal

#: what "answers at once" means here: far below the 30 s retry window and Restate's own
#: retries of a deployment that is down, on a machine busy with the rest of the suite
AT_ONCE = 3.0


@pytest.fixture(scope="module")
async def local(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalRestate]:
    """restate-server + a deployment of this module alone (one service per handler)."""
    async with LocalRestate(
        handlers=[TEST_HANDLERS], base_dir=tmp_path_factory.mktemp("down"),
        config_file=ROOT / "restate.toml", env=deployment_env(),
    ) as stack:
        yield stack


@pytest.fixture
async def provider(local: LocalRestate) -> AsyncIterator[RestateProvider]:
    """A provider with a short stop_grace; the deployment is up when each test begins."""
    async with RestateProvider(local.config(stop_grace=timedelta(seconds=1))) as opened:
        yield opened
    await ensure_up(local)


async def ensure_up(local: LocalRestate) -> None:
    """Bring the deployment back if a test left it down."""
    try:
        async with aiohttp.ClientSession() as session, session.get(
            local.deployment.url + "/health", timeout=aiohttp.ClientTimeout(total=2)
        ) as resp:
            if resp.status == 200:
                return
    except (aiohttp.ClientError, TimeoutError):
        pass
    await local.restart_deployment()


async def timed(call: object) -> tuple[float, object]:
    """(seconds it took, its answer)."""
    began = time.monotonic()
    answer = await call  # type: ignore[misc]
    return time.monotonic() - began, answer


async def created(provider: RestateProvider, handler: str, **fields: object) -> str:
    """A new workflow running `handler` on its own service."""
    spec = spec_for(handler, unique_id(handler.lower()), **fields)
    # one service per handler: the workflow id must derive the handler's service name
    spec = spec_for(handler, spec.workflow_id, provider_config={"service_name": handler})
    await provider.create_workflow(spec)
    return spec.workflow_id


async def slow_run_in_its_first_step(
    provider: RestateProvider, tmp_path: Path
) -> ExecutionResult:
    """A SlowSteps run of a new workflow (20 steps of 0.3 s), once its first step runs."""
    workflow_id = await created(provider, "SlowSteps")
    marks = tmp_path / "marks"
    started = await provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(marks), "step_seconds": 0.3, "steps": 20}))
    await wait_marks(marks, "start slow-1")
    return started


async def settled_after_return(provider: RestateProvider, local: LocalRestate) -> None:
    """Wait until the returned deployment has run a fresh execution to its end: whatever
    it was going to run of older ones, it has had every chance to."""
    workflow_id = await created(provider, "Noop")
    started = await provider.start_execution(workflow_id, ExecutionInput(input={}))
    status = await wait_terminal(provider, started.execution_id, within=60)
    assert status.state is ExecutionState.SUCCEEDED


# -- each row of the table: the deployment killed ---------------------------------------


async def test_start_while_down_is_pending_then_runs_each_step_once(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """start_execution answers at once while the deployment is down; the execution is
    pending, then runs when it returns, each step once."""
    workflow_id = await created(provider, "FiveSteps")
    await local.kill_deployment()
    marks = tmp_path / "marks"
    took, result = await timed(provider.start_execution(
        workflow_id, ExecutionInput(input={"marks": str(marks)})))
    assert took < AT_ONCE
    status = await provider.get_execution_status(result.execution_id)  # type: ignore[attr-defined]
    assert status.state in (ExecutionState.PENDING, ExecutionState.RUNNING)
    assert not status.history or status.history[-1].type == "execution_started"
    await local.restart_deployment()
    done = await wait_terminal(provider, result.execution_id, within=60)  # type: ignore[attr-defined]
    assert done.state is ExecutionState.SUCCEEDED
    assert read_marks(marks) == [f"step-{i}" for i in range(1, 6)]


async def test_stop_while_down_ends_stopped_with_the_reason(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """stop_execution answers at once while the deployment is down; after stop_grace the
    execution is killed and reads stopped with the reason; no later step runs after the
    deployment returns."""
    workflow_id = await created(provider, "SlowSteps")
    marks = tmp_path / "marks"
    started = await provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(marks), "step_seconds": 0.5, "steps": 6}))
    await wait_marks(marks, "end slow-1")
    await local.kill_deployment()
    took, _ = await timed(provider.stop_execution(started.execution_id, "tenant deleted"))
    assert took < AT_ONCE
    status = await wait_terminal(provider, started.execution_id, within=15)
    assert_stopped(status, "tenant deleted")
    assert status.metadata["stopped_by"] == "killed"
    before = read_marks(marks)
    await local.restart_deployment()
    await settled_after_return(provider, local)
    assert read_marks(marks) == before
    assert_stopped(await provider.get_execution_status(started.execution_id), "tenant deleted")


def assert_stopped(status: ExecutionStatus, reason: str) -> None:
    """`status` is stopped, with `reason` in the error and the history's last event."""
    assert status.state is ExecutionState.STOPPED
    assert status.error is not None
    assert status.error.message == reason
    assert status.history[-1].type == "execution_stopped"
    assert status.history[-1].details.get("reason") == reason


async def test_stop_with_the_deployment_up_runs_the_cancellation(
    provider: RestateProvider, tmp_path: Path
) -> None:
    """With the deployment up the cancellation lands (no kill): stopped with the reason."""
    started = await slow_run_in_its_first_step(provider, tmp_path)
    await provider.stop_execution(started.execution_id, "operator asked")
    status = await wait_terminal(provider, started.execution_id, within=15)
    assert_stopped(status, "operator asked")
    assert status.metadata["stopped_by"] == "cancelled"


async def test_callback_while_down_is_delivered_once_when_it_returns(
    provider: RestateProvider, local: LocalRestate
) -> None:
    """post_compute_callback answers at once while the deployment is down, is delivered
    when it returns, and a second delivery changes nothing."""
    workflow_id = await created(provider, "SleepThenCallback")
    started = await provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(provider, started.execution_id,
                      lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    await local.kill_deployment()
    payload = ComputeCallbackPayload(execution_id="c-1", tenant_id="t", status="succeeded",
                                     resource_ids={"vm": "1"})
    took, _ = await timed(provider.post_compute_callback(started.execution_id, payload))
    assert took < AT_ONCE
    other = ComputeCallbackPayload(execution_id="c-2", tenant_id="t", status="failed",
                                   error_message="late")
    took, _ = await timed(provider.post_compute_callback(started.execution_id, other))
    assert took < AT_ONCE
    await local.restart_deployment()
    status = await wait_terminal(provider, started.execution_id, within=60)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output["compute"]["execution_id"] == "c-1"
    assert [e.type for e in status.history].count("callback_received") == 1


async def test_delete_while_down_closes_the_door(
    provider: RestateProvider, local: LocalRestate
) -> None:
    """delete_workflow answers at once while the deployment is down, and a raw ingress
    start of the workflow's service is refused by Restate itself."""
    workflow_id = await created(provider, "WhoAmI")  # no other workflow here uses WhoAmI
    await local.kill_deployment()
    took, _ = await timed(provider.delete_workflow(workflow_id))
    assert took < AT_ONCE
    assert await raw_start(local, "WhoAmI", workflow_id) == 400
    with pytest.raises(WorkflowNotFoundError):
        await provider.start_execution(workflow_id, ExecutionInput())


async def raw_start(local: LocalRestate, service: str, workflow_id: str) -> int:
    """The status Restate's ingress answers a raw one-way start of the workflow."""
    key = workflow_key(workflow_id, unique_id("raw").replace("-", "_"))
    body = {"workflow_id": workflow_id, "handler": service, "execution_name": key}
    async with aiohttp.ClientSession() as session, session.post(
        f"{local.server.ingress_url}/{service}/{key}/run/send", json=body
    ) as resp:
        return resp.status


async def test_create_while_down_names_the_deployment(
    local: LocalRestate,
) -> None:
    """create_workflow with the deployment down raises DeploymentError naming it within
    retry_window, and validate says the same as an InvalidSpecError."""
    config = local.config(retry_window=timedelta(seconds=2))
    async with RestateProvider(config) as provider:
        await local.kill_deployment()
        try:
            took, _ = await timed(_raises(provider.create_workflow(
                spec_for("Noop", unique_id("noop"), provider_config={"service_name": "Noop"})),
                DeploymentError, config.deployment_url or ""))
            assert took < 2 + AT_ONCE
            took, _ = await timed(_raises(provider.validate(spec_for("Noop", unique_id("noop"))),
                                          InvalidSpecError, config.deployment_url or ""))
            assert took < 2 + AT_ONCE
        finally:
            await local.restart_deployment()


async def _raises(call: object, kind: type[Exception], names: str) -> None:
    with pytest.raises(kind) as caught:
        await call  # type: ignore[misc]
    assert names in str(caught.value)


# -- the closed door -----------------------------------------------------------------------


async def test_a_deleted_workflows_running_execution_still_finishes_and_takes_its_callback(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """After delete, Restate refuses raw starts, yet the in-flight execution takes its
    callback and completes; creating the workflow again opens the door."""
    workflow_id = await created(provider, "SoakMix")  # no other workflow here uses SoakMix
    started = await provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(tmp_path / "marks"), "callback": True, "step_seconds": 0}))
    await wait_status(provider, started.execution_id,
                      lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    await provider.delete_workflow(workflow_id)
    assert await raw_start(local, "SoakMix", workflow_id) == 400
    await provider.post_compute_callback(started.execution_id, ComputeCallbackPayload(
        execution_id="c", tenant_id="t", status="succeeded"))
    status = await wait_terminal(provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    await provider.create_workflow(spec_for(
        "SoakMix", workflow_id, provider_config={"service_name": "SoakMix"}))
    assert await raw_start(local, "SoakMix", workflow_id) == 202
    again = await provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(tmp_path / "again"), "step_seconds": 0}))
    assert (await wait_terminal(provider, again.execution_id)).state is (
        ExecutionState.SUCCEEDED)  # the run reads the new record, not the deleted one


async def test_a_deleted_workflows_running_execution_can_be_stopped(
    provider: RestateProvider, tmp_path: Path
) -> None:
    """After delete, the in-flight execution can still be stopped with a reason."""
    started = await slow_run_in_its_first_step(provider, tmp_path)
    await provider.delete_workflow(started.workflow_id)
    await provider.stop_execution(started.execution_id, "workflow retired")
    assert_stopped(await wait_terminal(provider, started.execution_id), "workflow retired")


async def test_on_a_shared_service_a_deleted_workflows_run_fails_before_any_step(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """Two workflows share a service: deleting one leaves the door open for the other,
    and a raw start of the deleted one ends failed `workflow_not_found`, no step run."""
    kept = await created(provider, "FiveSteps")
    deleted = await created(provider, "FiveSteps")
    await provider.delete_workflow(deleted)
    marks = tmp_path / "marks"
    key = workflow_key(deleted, "raw-start")
    async with aiohttp.ClientSession() as session, session.post(
        f"{local.server.ingress_url}/FiveSteps/{key}/run/send",
        json={"workflow_id": deleted, "handler": "FiveSteps", "execution_name": "raw-start",
              "input": {"marks": str(marks)}},
    ) as resp:
        assert resp.status == 202
        execution_id = (await resp.json())["invocationId"]
    status = await wait_terminal(provider, execution_id)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "workflow_not_found"
    assert read_marks(marks) == []
    with pytest.raises(WorkflowNotFoundError):
        await provider.start_execution(deleted, ExecutionInput())
    still = await provider.start_execution(kept, ExecutionInput(input={}))
    assert (await wait_terminal(provider, still.execution_id)).state is ExecutionState.SUCCEEDED


async def test_a_runs_check_asks_the_catalog_when_its_record_is_not_there_yet(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """The record's invocation a run attaches to is started by a send from the catalog,
    which can reach its partition after the run's attach does (seen under load and when a
    cluster lost a node: runs of a workflow just created ended workflow_not_found). An
    attach answered "not found" while the catalog holds a record naming that invocation
    is no deletion: the run goes on. One naming another invocation (a later create) ends
    workflow_not_found, no step run."""
    workflow_id = await created(provider, "FiveSteps")
    # an invocation id Restate does not know (a finished run, purged): a record's
    # invocation not there yet looks the same to an attach
    unknown = await provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_terminal(provider, unknown.execution_id)
    await provider.purge_execution(unknown.execution_id)
    rows = await provider.admin.query(
        "SELECT value_utf8 FROM state WHERE scope IS NULL AND service_name = "
        f"'{CATALOG_SERVICE}' AND service_key = '{workflow_id}' AND key = '{CATALOG_RECORD}'")
    record = json.loads(rows[0]["value_utf8"])
    entry = record["entry"]

    async def raw_run(name: str) -> tuple[ExecutionStatus, list[str]]:
        marks = tmp_path / name
        key = workflow_key(workflow_id, name)
        async with aiohttp.ClientSession() as session, session.post(
            f"{local.server.ingress_url}/FiveSteps/{key}/run/send",
            json={"workflow_id": workflow_id, "handler": "FiveSteps", "execution_name": name,
                  "input": {"marks": str(marks)}, "catalog_entry": unknown.execution_id},
        ) as resp:
            assert resp.status == 202, await resp.text()
            execution_id = (await resp.json())["invocationId"]
        return await wait_terminal(provider, execution_id), read_marks(marks)

    await provider.admin.set_state(CATALOG_SERVICE, workflow_id,
                                   {CATALOG_RECORD: record | {"entry": unknown.execution_id}})
    status, ran = await raw_run("not-there-yet")
    assert status.state is ExecutionState.SUCCEEDED, status.error
    assert ran == [f"step-{i}" for i in range(1, 6)]

    await provider.admin.set_state(CATALOG_SERVICE, workflow_id, {CATALOG_RECORD: record})
    assert record["entry"] == entry
    status, ran = await raw_run("of-an-earlier-create")
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "workflow_not_found"
    assert "holds another record" in status.error.cause
    assert ran == []


async def test_a_start_through_another_provider_after_delete_never_runs_a_step(
    provider: RestateProvider, local: LocalRestate, tmp_path: Path
) -> None:
    """A provider that remembers the workflow's service starts after another deleted it:
    refused at Restate's door (WorkflowNotFoundError), no step runs."""
    workflow_id = await created(provider, "FiveSteps")
    async with RestateProvider(local.config()) as other:
        await other.start_execution(workflow_id, ExecutionInput(input={}))  # remembers
        await provider.delete_workflow(workflow_id)
        marks = tmp_path / "marks"
        # FiveSteps is shared with other tests' workflows here, so the door may be open:
        # then the run itself refuses; either way no step runs
        try:
            late = await other.start_execution(
                workflow_id, ExecutionInput(input={"marks": str(marks)}))
        except WorkflowNotFoundError:
            return
        status = await wait_terminal(other, late.execution_id)
        assert status.state is ExecutionState.FAILED
        assert status.error is not None
        assert status.error.code == "workflow_not_found"
        assert read_marks(marks) == []


# -- failures named where they happened ------------------------------------------------------


@pytest.mark.parametrize("message", [
    "compute provider unavailable",
    "partition 3 doesn't exist on this node",
    "shutting down",
    "Not the leader",
    "service unavailable",
])
async def test_a_handler_failing_with_server_words_fails_at_once(
    provider: RestateProvider, message: str
) -> None:
    """A handler failure whose text reads like a server state: wait_execution returns
    `failed` in about the time the handler took, not after the retry window."""
    workflow_id = await created(provider, "FailWithCode")
    started = await provider.start_execution(workflow_id, ExecutionInput(
        input={"code": "compute_failed", "message": message}))
    took, status = await timed(provider.wait_execution(started.execution_id, timeout=60))
    assert took < AT_ONCE * 2
    assert status.state is ExecutionState.FAILED  # type: ignore[attr-defined]
    assert status.error.message == message  # type: ignore[attr-defined]


async def test_a_go_pair_failing_with_server_words_fails_at_once(
    provider: RestateProvider,
) -> None:
    """Go's (None, {"message": "service unavailable"}) fails at once too."""
    workflow_id = await created(provider, "GoPair")
    started = await provider.start_execution(workflow_id, ExecutionInput(
        input={"error": "service unavailable"}))
    took, status = await timed(provider.wait_execution(started.execution_id, timeout=60))
    assert took < AT_ONCE * 2
    assert status.state is ExecutionState.FAILED  # type: ignore[attr-defined]


@pytest.mark.parametrize("answer", [
    web.Response(status=503, text="service unavailable"),
    web.Response(status=500, text="server shutting down"),
])
async def test_a_deployment_refusing_discovery_is_named_at_once(
    local: LocalRestate, answer: web.Response
) -> None:
    """A deployment answering discovery with 503 or "shutting down": DeploymentError at
    once naming its URL with Restate's code, not a wait and "cannot reach Restate"."""

    async def refuse(_: web.Request) -> web.Response:
        return web.Response(status=answer.status, text=answer.text)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", refuse)
    async with serve(app) as url:
        config = RestateConfig(endpoint=local.server.ingress_url,
                               admin_endpoint=local.server.admin_url, deployment_url=url)
        async with RestateProvider(config) as provider:
            began = time.monotonic()
            with pytest.raises(DeploymentError) as caught:
                await provider.create_workflow(spec_for("Noop", unique_id("noop")))
            assert time.monotonic() - began < AT_ONCE
            # validate says the same, as a spec it cannot accept (never None: "valid")
            with pytest.raises(InvalidSpecError) as refused:
                await provider.validate(spec_for("Noop", unique_id("noop")))
    assert caught.value.deployment == url
    assert url in str(caught.value)
    assert caught.value.restate_code is not None
    assert refused.value.field == "definition"
    assert caught.value.restate_code in str(refused.value)


async def test_validate_against_a_deployment_restate_cannot_reach_is_refused(
    local: LocalRestate,
) -> None:
    """Discovery answered META0003 (nothing listens there): validate raises
    InvalidSpecError with Restate's answer; only Restate itself unreachable falls back
    to the offline checks."""
    config = local.config(deployment_url=dead_endpoint())
    async with RestateProvider(config) as provider:
        with pytest.raises(InvalidSpecError) as refused:
            await provider.validate(spec_for("Noop", unique_id("noop")))
    assert "META0003" in str(refused.value)
    offline = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                            deployment_url=local.deployment.url,
                            retry_window=timedelta(0), retry_attempts=0)
    async with RestateProvider(offline) as provider:
        await provider.validate(spec_for("Noop", unique_id("noop")))  # offline checks pass


# -- the pool -----------------------------------------------------------------------------------


async def test_three_hundred_waits_leave_the_callback_its_connection(
    provider: RestateProvider,
) -> None:
    """300 concurrent wait_execution calls on executions waiting for their callback: the
    callbacks still go through at once and every wait returns."""
    workflow_id = await created(provider, "SleepThenCallback")
    started = [await provider.start_execution(workflow_id, ExecutionInput(input={}))
               for _ in range(3)]
    for result in started:
        await wait_status(provider, result.execution_id,
                          lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    waits = [asyncio.ensure_future(provider.wait_execution(started[i % 3].execution_id, 120))
             for i in range(300)]
    await asyncio.sleep(0)  # the waits are in flight before the callbacks go
    payload = ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded")
    for result in started:
        took, _ = await timed(provider.post_compute_callback(result.execution_id, payload))
        assert took < AT_ONCE * 2
    finished = await asyncio.wait_for(asyncio.gather(*waits), timeout=90)
    assert {s.state for s in finished} == {ExecutionState.SUCCEEDED}
