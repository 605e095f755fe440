"""wait_execution: the terminal status as soon as the execution ends, without polling."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    InvalidInputError,
    RestateProvider,
)
from tests.conftest import Stack, spec_for, unique_id
from tests.waiting import wait_marks, wait_status

pytestmark = pytest.mark.timeout(120)


async def started(provider: RestateProvider, handler: str, value: Any, **fields: Any) -> str:
    """A fresh workflow running `handler`, started with `value`; answers the execution id."""
    spec = spec_for(handler, unique_id("wait"), **fields)
    await provider.create_workflow(spec)
    result = await provider.start_execution(spec.workflow_id, ExecutionInput(input=value))
    return result.execution_id


def spy_attach(provider: RestateProvider, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """An event set once the provider attaches to an invocation (a wait is in flight)."""
    attached = asyncio.Event()
    attach = provider.ingress.attach

    async def spied(invocation_id: str) -> None:
        attached.set()
        await attach(invocation_id)

    monkeypatch.setattr(provider.ingress, "attach", spied)
    return attached


async def test_each_end_state(
    shared_provider: RestateProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Succeeded with output and history, failed with its error, stopped, timed out."""
    provider = shared_provider
    done = await provider.wait_execution(
        await started(provider, "FiveSteps", {}), timeout=30
    )
    assert done.state is ExecutionState.SUCCEEDED
    assert done.history[-1].type == "execution_succeeded"
    assert done.output is not None

    failed = await provider.wait_execution(
        await started(provider, "FailWithCode", {"code": "quota", "message": "full"}), timeout=30
    )
    assert failed.state is ExecutionState.FAILED
    assert failed.error is not None
    assert (failed.error.code, failed.error.message) == ("quota", "full")

    slow = await started(provider, "SlowSteps", {"step_seconds": 30})
    attached = spy_attach(provider, monkeypatch)
    waiting = asyncio.ensure_future(provider.wait_execution(slow, timeout=30))
    await asyncio.wait_for(attached.wait(), 10)
    await wait_status(provider, slow, lambda s: "step_started" in [e.type for e in s.history])
    assert not waiting.done()  # attached, and the execution runs: the wait goes on
    await provider.stop_execution(slow, "enough")
    stopped = await waiting
    assert stopped.state is ExecutionState.STOPPED
    assert stopped.error is not None
    assert "enough" in stopped.error.message

    timed = await provider.wait_execution(
        await started(provider, "SlowSteps", {"step_seconds": 30}, timeout=timedelta(seconds=1)),
        timeout=30,
    )
    assert timed.state is ExecutionState.TIMEOUT


async def test_it_returns_as_the_execution_ends(
    shared_provider: RestateProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting on the compute callback: the wait ends right after the callback arrives."""
    execution_id = await started(shared_provider, "SleepThenCallback", {"sleep_ms": 1})
    attached = spy_attach(shared_provider, monkeypatch)
    waiting = asyncio.ensure_future(shared_provider.wait_execution(execution_id))
    await asyncio.wait_for(attached.wait(), 10)
    await wait_status(shared_provider, execution_id,
                      lambda s: s.metadata["workflow_sub_state"] == "waiting")
    assert not waiting.done()  # attached, and the handler waits for the callback
    delivered = time.monotonic()
    await shared_provider.post_compute_callback(
        execution_id, ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded")
    )
    status = await asyncio.wait_for(waiting, 10)
    assert status.state is ExecutionState.SUCCEEDED
    assert time.monotonic() - delivered < 5


async def test_a_timeout_leaves_the_execution_running(shared_provider: RestateProvider) -> None:
    """TimeoutError after `timeout` seconds; the execution goes on."""
    execution_id = await started(shared_provider, "SlowSteps", {"step_seconds": 30})
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        await shared_provider.wait_execution(execution_id, timeout=0.5)
    assert time.monotonic() - began < 5
    status = await shared_provider.get_execution_status(execution_id)
    assert status.state is ExecutionState.RUNNING
    await shared_provider.stop_execution(execution_id, "test done")


async def test_unknown_and_malformed(shared_provider: RestateProvider) -> None:
    """Unknown id: ExecutionNotFoundError; malformed id or timeout: InvalidInputError."""
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.wait_execution("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
    for bad_id in ("inv_x\n", "nope", ""):
        with pytest.raises(InvalidInputError):
            await shared_provider.wait_execution(bad_id)
    for bad_timeout in (0, -1, float("nan"), float("inf"), True, "5"):
        with pytest.raises(InvalidInputError) as caught:
            await shared_provider.wait_execution(
                "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", timeout=bad_timeout  # type: ignore[arg-type]
            )
        assert caught.value.field == "timeout"


async def test_a_server_restart_while_waiting(
    private_stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """kill -9 of restate-server during the wait: it attaches again and gets the end."""
    provider = private_stack.provider
    marks = tmp_path / "marks"
    execution_id = await started(
        provider, "SlowSteps", {"step_seconds": 1, "steps": 3, "marks": str(marks)}
    )
    attached = spy_attach(provider, monkeypatch)
    waiting = asyncio.ensure_future(provider.wait_execution(execution_id, timeout=60))
    await asyncio.wait_for(attached.wait(), 10)
    await wait_marks(marks, "start slow-1")  # killed mid-run, while the wait is attached
    private_stack.server.kill()  # returns once the process is gone
    assert not waiting.done()
    await private_stack.server.start(wait_for_partitions=False)
    status = await waiting
    assert status.state is ExecutionState.SUCCEEDED
