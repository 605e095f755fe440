"""Operators act on executions: kill, pause, resume, purge and redrive, against the real
server (the session's shared stack; kills with the deployment down use a stack of their own).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    ExecutionStateError,
    InvalidInputError,
    RestateProvider,
    WorkflowSubState,
    extract_workflow_details,
)
from landlord_restate.restate.redrive import redrive_name
from landlord_restate.testing import LocalRestate
from tests.conftest import ROOT, TEST_HANDLERS, deployment_env, spec_for, unique_id
from tests.waiting import read_marks, wait_marks, wait_status, wait_terminal


async def created(provider: RestateProvider, handler: str, **fields: object) -> str:
    """A new workflow running `handler`."""
    spec = spec_for(handler, unique_id(handler.lower()), **fields)
    await provider.create_workflow(spec)
    return spec.workflow_id


def callback_waiting(status: object) -> bool:
    """The execution waits for its compute callback."""
    history = status.history  # type: ignore[attr-defined]
    return bool(history) and history[-1].type == "callback_waiting"


# -- kill --------------------------------------------------------------------------------------


async def test_kill_ends_stopped_at_once_without_the_cancellation(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """kill_execution: stopped with the reason in error and history, no later step; a
    second kill and a kill of the finished execution change nothing."""
    marks = tmp_path / "marks"
    workflow_id = await created(shared_provider, "SlowSteps")
    started = await shared_provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(marks), "step_seconds": 0.3, "steps": 20}))
    await wait_marks(marks, "start slow-2")
    await shared_provider.kill_execution(started.execution_id, "runaway provisioning")
    status = await wait_terminal(shared_provider, started.execution_id, within=5)
    assert status.state is ExecutionState.STOPPED
    assert status.error is not None
    assert status.error.message == "runaway provisioning"
    assert status.history[-1].type == "execution_stopped"
    assert status.history[-1].details["reason"] == "runaway provisioning"
    assert status.metadata["stopped_by"] == "killed"
    assert extract_workflow_details(status)[0] is WorkflowSubState.FAILED
    await shared_provider.kill_execution(started.execution_id, "again")
    again = await shared_provider.get_execution_status(started.execution_id)
    assert again.error is not None
    assert again.error.message == "runaway provisioning"
    assert "start slow-4" not in read_marks(marks)


async def test_killing_a_finished_execution_changes_nothing(
    shared_provider: RestateProvider,
) -> None:
    """A succeeded execution stays succeeded when killed."""
    workflow_id = await created(shared_provider, "GoPair")
    started = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_terminal(shared_provider, started.execution_id)
    await shared_provider.kill_execution(started.execution_id, "too late")
    status = await shared_provider.get_execution_status(started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.error is None


@pytest.fixture
async def own_stack(tmp_path: Path) -> AsyncIterator[LocalRestate]:
    """A stack of this test alone, whose deployment it kills."""
    async with LocalRestate(
        handlers=[TEST_HANDLERS], service_name="Ops", base_dir=tmp_path / "stack",
        config_file=ROOT / "restate.toml", env=deployment_env(),
    ) as local:
        yield local


async def test_kill_with_the_deployment_down(own_stack: LocalRestate, tmp_path: Path) -> None:
    """A kill is answered by restate-server alone: stopped while the deployment is down,
    and no later step runs once it is back."""
    marks = tmp_path / "marks"
    async with RestateProvider(own_stack.config()) as provider:
        workflow_id = await created(provider, "SlowSteps")
        started = await provider.start_execution(workflow_id, ExecutionInput(
            input={"marks": str(marks), "step_seconds": 0.3, "steps": 10}))
        await wait_marks(marks, "end slow-1")
        await own_stack.kill_deployment()
        await asyncio.wait_for(provider.kill_execution(started.execution_id, "down and out"), 5)
        status = await wait_terminal(provider, started.execution_id, within=5)
        assert status.state is ExecutionState.STOPPED
        assert status.error is not None
        assert status.error.message == "down and out"
        before = read_marks(marks)
        await own_stack.restart_deployment()
        other = await provider.start_execution(workflow_id, ExecutionInput(
            input={"marks": str(tmp_path / "other"), "step_seconds": 0, "steps": 1}))
        await wait_terminal(provider, other.execution_id, within=60)
        assert read_marks(marks) == before


# -- pause and resume ---------------------------------------------------------------------------


async def test_pause_and_resume_a_backing_off_execution(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Paused: running, restate_status paused, sub-state error, attempts stop; resume:
    it retries at once instead of waiting out its backoff, then succeeds."""
    marks = tmp_path / "attempts"
    workflow_id = await created(shared_provider, "Flaky")
    started = await shared_provider.start_execution(
        workflow_id, ExecutionInput(input={"marks": str(marks), "succeed_on": 4}))
    await wait_status(shared_provider, started.execution_id,
                      lambda s: s.metadata["restate_status"] == "backing-off")
    await shared_provider.pause_execution(started.execution_id)
    status = await wait_status(shared_provider, started.execution_id,
                               lambda s: s.metadata["restate_status"] == "paused")
    assert status.state is ExecutionState.RUNNING
    assert status.metadata["workflow_sub_state"] == "error"
    assert extract_workflow_details(status)[0] is WorkflowSubState.ERROR
    paused_at = len(read_marks(marks))
    await shared_provider.pause_execution(started.execution_id)  # pausing twice: nothing
    # while paused, Restate makes no attempt: a backoff of Restate's (500 ms, doubling)
    # would have retried in this window; the count does not move
    await asyncio.sleep(1.5)
    assert len(read_marks(marks)) == paused_at
    await shared_provider.resume_execution(started.execution_id)
    await wait_marks_count(marks, paused_at + 1, within=2.0)
    for _ in range(4):  # each resume cuts the next backoff short
        if (await shared_provider.get_execution_status(started.execution_id)).state.is_terminal:
            break
        await shared_provider.resume_execution(started.execution_id)
    status = await wait_terminal(shared_provider, started.execution_id, within=60)
    assert status.state is ExecutionState.SUCCEEDED
    await shared_provider.resume_execution(started.execution_id)  # finished: nothing
    await shared_provider.pause_execution(started.execution_id)
    finished = await shared_provider.get_execution_status(started.execution_id)
    assert finished.state is ExecutionState.SUCCEEDED


async def wait_marks_count(path: Path, count: int, within: float) -> None:
    """Wait until `path` holds at least `count` lines, for at most `within` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while len(read_marks(path)) < count:
        assert asyncio.get_running_loop().time() < deadline, read_marks(path)
        await asyncio.sleep(0.02)


async def test_resuming_a_running_execution_changes_nothing(
    shared_provider: RestateProvider,
) -> None:
    """resume of an execution that is not paused: no error, it goes on."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    started = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(shared_provider, started.execution_id, callback_waiting)
    await shared_provider.resume_execution(started.execution_id)
    await shared_provider.post_compute_callback(started.execution_id, ComputeCallbackPayload(
        execution_id="c", tenant_id="t", status="succeeded"))
    status = await wait_terminal(shared_provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED


# -- purge ---------------------------------------------------------------------------------------


async def test_purge_forgets_a_finished_execution_and_refuses_a_running_one(
    shared_provider: RestateProvider,
) -> None:
    """purge: a running execution is refused (ExecutionStateError, nothing changes); a
    finished one is forgotten; an unknown id succeeds."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    started = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(shared_provider, started.execution_id, callback_waiting)
    with pytest.raises(ExecutionStateError) as caught:
        await shared_provider.purge_execution(started.execution_id)
    assert caught.value.state == "running"
    assert started.execution_id in str(caught.value)
    assert callback_waiting(await shared_provider.get_execution_status(started.execution_id))
    await shared_provider.stop_execution(started.execution_id, "done with it")
    await wait_terminal(shared_provider, started.execution_id)
    await shared_provider.purge_execution(started.execution_id)
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.get_execution_status(started.execution_id)
    await shared_provider.purge_execution(started.execution_id)  # gone: still fine
    await shared_provider.purge_execution("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")


# -- redrive --------------------------------------------------------------------------------------


async def failed_at_step_three(
    provider: RestateProvider, tmp_path: Path, **request: object
) -> tuple[str, Path]:
    """A Fixable run of a new workflow, failed at step three (its dependency "down");
    answers its execution id and the file whose removal "fixes" the dependency."""
    broken = tmp_path / "broken"
    broken.touch()
    workflow_id = await created(provider, "Fixable")
    original = await provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(tmp_path / "marks"), "broken": str(broken), **request}))
    if request.get("callback"):
        await wait_status(provider, original.execution_id, callback_waiting)
        await provider.post_compute_callback(original.execution_id, ComputeCallbackPayload(
            execution_id="c", tenant_id="t", status="succeeded"))
    failed = await wait_terminal(provider, original.execution_id)
    assert failed.state is ExecutionState.FAILED
    return original.execution_id, broken


async def test_redrive_after_a_fix_reuses_the_completed_steps(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Step three failed with a HandlerError; once fixed, the redrive reuses steps one and
    two (each ran once in all), runs three again and succeeds; it names its original."""
    marks, broken = tmp_path / "marks", tmp_path / "broken"
    broken.touch()
    workflow_id = await created(shared_provider, "Fixable")
    original = await shared_provider.start_execution(workflow_id, ExecutionInput(
        execution_name="acme-provision", input={"marks": str(marks), "broken": str(broken)},
        tags={"tenant_id": "acme"}, metadata={"ticket": "T-1"}))
    failed = await wait_terminal(shared_provider, original.execution_id)
    assert failed.state is ExecutionState.FAILED
    assert read_marks(marks) == ["one", "two", "three"]
    broken.unlink()  # the operator fixes the dependency
    redriven = await shared_provider.redrive_execution(original.execution_id)
    assert redriven.execution_id != original.execution_id
    assert redriven.workflow_id == workflow_id
    status = await wait_terminal(shared_provider, redriven.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {"done": ["one-done", "two-done", "three-done", "four-done"]}
    assert read_marks(marks) == ["one", "two", "three", "three", "four"]
    assert status.metadata["redriven_from"] == original.execution_id
    assert status.metadata["ticket"] == "T-1"
    assert status.input == failed.input
    summaries = await shared_provider.list_executions(workflow_id=workflow_id)
    names = {s.execution_id: s.execution_name for s in summaries}
    # the original's name, then a digest of the original's id: its redrive's alone
    assert names[redriven.execution_id] == redrive_name("acme-provision", original.execution_id)
    assert names[redriven.execution_id].startswith("acme-provision-redrive-")
    steps = [(e.details.get("step"), e.details.get("reused", False))
             for e in status.history if e.type == "step_completed"]
    assert steps == [("one", True), ("two", True), ("three", False), ("four", False)]
    again = await shared_provider.redrive_execution(original.execution_id)
    assert again.execution_id == redriven.execution_id


async def test_redrive_of_a_timed_out_execution_does_not_sleep_again(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """A run that slept and then timed out waiting for its callback: the redrive reuses
    the steps and the sleep (journaled again as a timer of no length, so a redrive of the
    redrive reuses it too) and waits only for the callback."""
    marks = tmp_path / "marks"
    workflow_id = await created(shared_provider, "Fixable", timeout=timedelta(seconds=2))
    original = await shared_provider.start_execution(workflow_id, ExecutionInput(
        input={"marks": str(marks), "sleep_ms": 500, "callback": True}))
    timed_out = await wait_terminal(shared_provider, original.execution_id, within=30)
    assert timed_out.state is ExecutionState.TIMEOUT
    assert "timer_fired" in [e.type for e in timed_out.history]
    redriven = await shared_provider.redrive_execution(original.execution_id)
    status = await wait_status(shared_provider, redriven.execution_id, callback_waiting)
    timers = [e for e in status.history if e.type == "timer_started"]
    assert [e.details["timer"] for e in timers] == ["settle"]
    slept_ms = timers[0].details["wake_up_time_ms"] - timers[0].timestamp.timestamp() * 1000
    assert slept_ms < 100  # not the original's 500 ms again
    await shared_provider.post_compute_callback(redriven.execution_id, ComputeCallbackPayload(
        execution_id="c", tenant_id="t", status="succeeded"))
    done = await wait_terminal(shared_provider, redriven.execution_id)
    assert done.state is ExecutionState.SUCCEEDED
    assert read_marks(marks) == ["one", "two", "three", "four"]


async def test_redrive_of_a_stopped_execution_reuses_the_received_callback(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """A callback the original received is not waited for again."""
    original, broken = await failed_at_step_three(shared_provider, tmp_path, callback=True)
    broken.unlink()
    redriven = await shared_provider.redrive_execution(original)
    done = await wait_terminal(shared_provider, redriven.execution_id)
    assert done.state is ExecutionState.SUCCEEDED
    assert done.output == {"done": ["one-done", "two-done", "succeeded", "three-done",
                                    "four-done"]}
    assert "callback_waiting" not in [e.type for e in done.history]


async def test_concurrent_redrives_answer_one_execution(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Ten redrives at once of one failed execution: one new execution, run once."""
    original, broken = await failed_at_step_three(shared_provider, tmp_path)
    broken.unlink()
    results = await asyncio.gather(*(
        shared_provider.redrive_execution(original) for _ in range(10)))
    assert len({r.execution_id for r in results}) == 1
    await wait_terminal(shared_provider, results[0].execution_id)
    assert read_marks(tmp_path / "marks").count("four") == 1


async def test_redrive_refuses_what_did_not_fail(shared_provider: RestateProvider) -> None:
    """A succeeded or a running execution cannot be redriven: InvalidInputError."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    running = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(shared_provider, running.execution_id, callback_waiting)
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.redrive_execution(running.execution_id)
    assert "running" in str(caught.value)
    await shared_provider.post_compute_callback(running.execution_id, ComputeCallbackPayload(
        execution_id="c", tenant_id="t", status="succeeded"))
    await wait_terminal(shared_provider, running.execution_id)
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.redrive_execution(running.execution_id)
    assert "succeeded" in str(caught.value)


async def test_list_by_name_prefix_finds_one_tenants_runs(
    shared_provider: RestateProvider,
) -> None:
    """list_executions(name_prefix="acme-"): that tenant's runs only, newest first."""
    workflow_id = await created(shared_provider, "GoPair")
    tenant = unique_id("acme")
    ids = []
    for name in (f"{tenant}-a", f"{tenant}-b", f"other-{tenant}"):
        started = await shared_provider.start_execution(
            workflow_id, ExecutionInput(execution_name=name, input={}))
        ids.append(started.execution_id)
    found = await shared_provider.list_executions(name_prefix=f"{tenant}-")
    assert [s.execution_id for s in found] == [ids[1], ids[0]]
    scoped = await shared_provider.list_executions(workflow_id=workflow_id,
                                                   name_prefix=f"{tenant}-")
    assert [s.execution_id for s in scoped] == [ids[1], ids[0]]
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.list_executions(name_prefix="a%")
    assert caught.value.field == "name_prefix"


async def test_catalog_entries_are_not_executions(shared_provider: RestateProvider) -> None:
    """A workflow's catalog entry (an invocation of its own) is neither listed nor read as
    an execution."""
    spec = spec_for("GoPair", unique_id("entry"))
    created_ = await shared_provider.create_workflow(spec)
    entry = created_.resource_ids["catalog_entry"]
    assert entry.startswith("inv_")
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.get_execution_status(entry)
    listed = await shared_provider.list_executions(limit=10_000)
    assert entry not in {s.execution_id for s in listed}
