"""Reliability under faults and load: crashes with many executions in flight, Restate down
or hanging, transient failures, 1,000 concurrent starts.

The fast variants run in `make test`; the full-size ones are marked `soak` (`make soak`).
Every scenario adds a row to the table printed at the end of the run.
"""

from __future__ import annotations

import asyncio
import resource
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionState,
    ProvisionRequest,
    RestateConfig,
    RestateConnectionError,
    RestateProvider,
    RestateServerError,
    RestateUnavailableError,
    WorkflowNotFoundError,
)
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.transience import Backoff
from tests.conftest import Stack, spec_for, unique_id
from tests.fakes import serve
from tests.faults import (
    REPORTS,
    FaultReport,
    assert_clean,
    crash_scenario,
    duplicate_runs,
    statuses,
    wait_all_terminal,
)
from tests.waiting import read_marks, wait_terminal

pytestmark = pytest.mark.timeout(600)


async def kill_server(stack: Stack, n: int, tmp_path: Path) -> FaultReport:
    """kill -9 restate-server with n executions in flight, restart it on the same data."""

    async def recover() -> None:
        await asyncio.sleep(0.5)
        await stack.server.start()

    return await crash_scenario(
        "kill -9 restate-server", stack.provider, n, tmp_path / "marks",
        stack.server.kill, recover,
    )


async def kill_deployment(stack: Stack, n: int, tmp_path: Path) -> FaultReport:
    """kill -9 the hypercorn deployment with n executions mid-step, restart it."""

    async def recover() -> None:
        await asyncio.sleep(0.5)
        await stack.deployment.start()

    return await crash_scenario(
        "kill -9 deployment", stack.provider, n, tmp_path / "marks",
        stack.deployment.kill, recover,
    )


async def test_server_crash_with_executions_in_flight(
    private_stack: Stack, tmp_path: Path
) -> None:
    """10 executions (steps, timers, pending callbacks) survive kill -9 of the server."""
    assert_clean(await kill_server(private_stack, 10, tmp_path))


async def test_deployment_crash_with_executions_in_flight(
    private_stack: Stack, tmp_path: Path
) -> None:
    """10 executions survive kill -9 of the deployment mid-step."""
    assert_clean(await kill_deployment(private_stack, 10, tmp_path))


@pytest.mark.soak
async def test_soak_server_crash_50(private_stack: Stack, tmp_path: Path) -> None:
    """50 executions in flight survive kill -9 of the server."""
    assert_clean(await kill_server(private_stack, 50, tmp_path))


@pytest.mark.soak
async def test_soak_deployment_crash_50(private_stack: Stack, tmp_path: Path) -> None:
    """50 executions in flight survive kill -9 of the deployment."""
    assert_clean(await kill_deployment(private_stack, 50, tmp_path))


# -- load ---------------------------------------------------------------------------------


def rss_mb() -> float:
    """This process's resident memory now (VmRSS), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def concurrent_starts(provider: RestateProvider, n: int) -> FaultReport:
    """n executions started at once through one provider; all must finish, once each."""
    began = time.monotonic()
    spec = spec_for("GoPair", unique_id("load"))
    await provider.create_workflow(spec)
    first = min(100, n)
    starts = [
        provider.start_execution(
            spec.workflow_id, ExecutionInput(execution_name=f"e{i:05d}", input={"value": i})
        )
        for i in range(n)
    ]
    results = list(await asyncio.gather(*starts[:first]))
    rss_after_first = rss_mb()
    results += await asyncio.gather(*starts[first:])
    rss_after_all = rss_mb()
    ids = {f"e{i:05d}": r.execution_id for i, r in enumerate(results)}
    await wait_all_terminal(provider, spec.workflow_id, n, within=300)
    states = await statuses(provider, ids)
    report = FaultReport(
        fault=f"{n} concurrent starts",
        executions=n,
        completed=sum(1 for s in states.values() if s is ExecutionState.SUCCEEDED),
        duplicates=await duplicate_runs(provider, spec.workflow_id),
        seconds=time.monotonic() - began,
        note=(
            f"{len(set(ids.values()))} distinct runs; RSS {rss_after_first:.0f} MB after "
            f"{first}, {rss_after_all:.0f} MB after {n}; peak "
            f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB"
        ),
    )
    report.lost = n - report.completed
    REPORTS.append(report)
    assert len(set(ids.values())) == n
    assert rss_after_all - rss_after_first < 50, report.note
    return report


async def test_concurrent_starts_100(shared_provider: RestateProvider) -> None:
    """100 concurrent starts through one provider: 100 distinct runs, all succeed."""
    assert_clean(await concurrent_starts(shared_provider, 100))


@pytest.mark.soak
async def test_soak_concurrent_starts_1000(shared_provider: RestateProvider) -> None:
    """1,000 concurrent starts through one provider: all finish, memory flat."""
    assert_clean(await concurrent_starts(shared_provider, 1000))


# -- Restate down, hanging, flaky --------------------------------------------------------------

EXECUTION_ID = "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"


def every_operation(provider: RestateProvider) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    """Each public provider operation, ready to call."""
    spec = spec_for("GoPair", "down-test")
    payload = ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded")
    return [
        ("create_workflow", lambda: provider.create_workflow(spec)),
        ("start_execution", lambda: provider.start_execution("down-test", ExecutionInput())),
        ("invoke", lambda: provider.invoke("down-test", ProvisionRequest(tenant_id="t"))),
        ("get_execution_status", lambda: provider.get_execution_status(EXECUTION_ID)),
        ("get_workflow_status", lambda: provider.get_workflow_status(EXECUTION_ID)),
        ("stop_execution", lambda: provider.stop_execution(EXECUTION_ID, "x")),
        ("post_compute_callback", lambda: provider.post_compute_callback(EXECUTION_ID, payload)),
        ("delete_workflow", lambda: provider.delete_workflow("down-test")),
    ]


async def test_server_down_then_back(private_stack: Stack) -> None:
    """Down: after the retry window every operation fails typed, naming the endpoint.

    Back: the same provider object works again.
    """
    stack = private_stack
    stack.server.kill()
    window = 1.0
    config = attrs.evolve(stack.provider.config, retry_window=timedelta(seconds=window))
    async with RestateProvider(config) as down:
        for name, call in every_operation(down):
            began = time.monotonic()
            with pytest.raises(RestateUnavailableError) as caught:
                await call()
            # the window, plus at most one backoff pause (2 s) and one refused attempt
            assert time.monotonic() - began < window + 2.5, name
            assert caught.value.endpoint in (config.endpoint, config.admin_endpoint), name
            assert caught.value.endpoint in str(caught.value)
            assert caught.value.waited >= window, name
            assert isinstance(caught.value, RestateConnectionError)
    await stack.server.start()
    spec = spec_for("GoPair", unique_id("back"))
    await stack.provider.create_workflow(spec)
    started = await stack.provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    status = await wait_terminal(stack.provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED


async def test_a_hanging_restate_times_out(hanging_endpoint: str) -> None:
    """Nothing hangs: each operation ends within its timeout and retries, naming the endpoint."""
    config = RestateConfig(
        endpoint=hanging_endpoint, admin_endpoint=hanging_endpoint,
        request_timeout=timedelta(seconds=0.5), retry_attempts=1, retry_window=timedelta(0),
    )
    async with RestateProvider(config) as provider:
        for name, call in every_operation(provider)[1:4]:
            began = time.monotonic()
            with pytest.raises(RestateConnectionError) as caught:
                await call()
            elapsed = time.monotonic() - began
            assert elapsed < 2 * 0.5 + 0.1 + 1.0, (name, elapsed)
            assert caught.value.endpoint == hanging_endpoint


class FlakyProxy:
    """Forwards to Restate, then loses the first `drops` answers to matching paths.

    Restate has done the work; the caller sees a 503 or a reset connection, as when a
    load balancer or the network fails between them.
    """

    def __init__(self, upstream: str, path_part: str, drops: int, how: str) -> None:
        self.upstream = upstream
        self.path_part = path_part
        self.drops = drops
        self.how = how
        self.forwarded = 0
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        import aiohttp

        async with aiohttp.ClientSession() as session, session.request(
            request.method, self.upstream + request.path_qs, data=await request.read(),
            headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"},
            skip_auto_headers=("Content-Type",),
        ) as upstream:
            body = await upstream.read()
            status = upstream.status
        if self.path_part in request.path:
            self.forwarded += 1
            if self.drops > 0:
                self.drops -= 1
                if self.how == "reset":
                    assert request.transport is not None
                    request.transport.close()
                    return web.Response(status=500)
                return web.Response(status=503, text="<html>503 Service Unavailable</html>")
        return web.Response(status=status, body=body, content_type="application/json")


@pytest.mark.parametrize("how", ["503", "reset"])
async def test_start_is_retried_without_a_duplicate_run(
    shared_config: RestateConfig, tmp_path: Path, how: str
) -> None:
    """Starts whose answers are lost are retried; the workflow key keeps it one run."""
    proxy = FlakyProxy(shared_config.endpoint, "/run/send", drops=2, how=how)
    async with serve(proxy.app) as url:
        config = RestateConfig(
            endpoint=url, admin_endpoint=shared_config.admin_endpoint,
            deployment_url=shared_config.deployment_url, service_name=shared_config.service_name,
            retry_attempts=3,
        )
        async with RestateProvider(config) as provider:
            spec = spec_for("FiveSteps", unique_id("flaky"))
            await provider.create_workflow(spec)
            marks = tmp_path / "marks"
            result = await provider.start_execution(
                spec.workflow_id, ExecutionInput(input={"marks": str(marks)})
            )
            status = await wait_terminal(provider, result.execution_id)
            assert await duplicate_runs(provider, spec.workflow_id) == 0
    assert proxy.forwarded == 3  # two answers lost, the third delivered
    assert status.state is ExecutionState.SUCCEEDED
    assert read_marks(marks) == [f"step-{i}" for i in range(1, 6)]


async def test_requests_not_declared_idempotent_are_tried_once(
    shared_config: RestateConfig,
) -> None:
    """Only idempotent requests retry: a non-idempotent one surfaces the first failure."""
    import aiohttp

    proxy = FlakyProxy(shared_config.admin_endpoint, "/health", drops=1, how="503")
    async with serve(proxy.app) as url, aiohttp.ClientSession() as session:
        http = RestateHttp(session, url, backoff=Backoff(min_retries=3, window=0))
        with pytest.raises(RestateServerError) as caught:
            await http.request("GET", "/health", idempotent=False)
        assert caught.value.status == 503
        assert "503 Service Unavailable" in caught.value.body
        assert proxy.forwarded == 1
        status, _ = await http.request("GET", "/health", idempotent=True)
        assert status == 200


# -- a restart, as an operator sees it -------------------------------------------------------


async def test_calls_right_after_a_restart_answer_correctly(private_stack: Stack) -> None:
    """kill -9, restart, and call at the moment /health first answers: every call is right.

    No readiness wait beyond /health: the partitions may still be without a leader, which
    Restate answers with 500s the provider must wait out, not report.
    """
    provider = private_stack.provider
    spec = spec_for("SlowSteps", unique_id("restart"))
    await provider.create_workflow(spec)
    done = await provider.start_execution(
        spec.workflow_id, ExecutionInput(execution_name="done", input={"step_seconds": 0.01})
    )
    await wait_terminal(provider, done.execution_id)
    for round_ in range(3):
        slow = await provider.start_execution(
            spec.workflow_id,
            ExecutionInput(execution_name=f"slow-{round_}", input={"step_seconds": 30}),
        )
        private_stack.server.kill()
        await private_stack.server.start(wait_for_partitions=False)
        status, listed, fresh = await asyncio.gather(
            provider.get_execution_status(done.execution_id),
            provider.list_executions(spec.workflow_id),
            provider.start_execution(
                spec.workflow_id,
                ExecutionInput(execution_name=f"fresh-{round_}", input={"step_seconds": 0.01}),
            ),
        )
        assert status.state is ExecutionState.SUCCEEDED
        assert done.execution_id in {s.execution_id for s in listed}
        assert slow.execution_id in {s.execution_id for s in listed}
        await provider.stop_execution(slow.execution_id, "restart test")
        assert (await wait_terminal(provider, slow.execution_id)).state is ExecutionState.STOPPED
        assert (await wait_terminal(provider, fresh.execution_id)).state is (
            ExecutionState.SUCCEEDED
        )


# -- strict starts: shared catalog reads never serve a start a read older than itself ---------


async def test_no_start_after_a_delete_through_another_provider(
    shared_config: RestateConfig, shared_provider: RestateProvider, tmp_path: Path,
) -> None:
    """Two provider instances: one deletes while the other starts in bursts. No start that
    began after the delete returned runs a handler step: it is refused, or (the service is
    shared with other workflows, so its door stays open) its run fails
    `workflow_not_found` before its first step. A create is seen at once by the other."""
    other = shared_provider
    marks = tmp_path / "marks"
    async with RestateProvider(shared_config) as deleter:
        spec = spec_for("FiveSteps", unique_id("strict"))
        await deleter.create_workflow(spec)
        # created through one instance: the other starts it at once
        first = await other.start_execution(spec.workflow_id, ExecutionInput(input={}))
        assert first.execution_id.startswith("inv_")
        deleted_at: list[float] = []
        outcomes: list[tuple[float, int, str | None]] = []

        async def start_one(i: int) -> None:
            began = time.monotonic()
            try:
                started = await other.start_execution(spec.workflow_id, ExecutionInput(
                    execution_name=f"s{i}", input={"marks": f"{marks}-{i}"}))
                outcomes.append((began, i, started.execution_id))
            except WorkflowNotFoundError:
                outcomes.append((began, i, None))

        async def delete_soon() -> None:
            await asyncio.sleep(0.05)
            await deleter.delete_workflow(spec.workflow_id)
            deleted_at.append(time.monotonic())

        starts = [start_one(i) for i in range(120)]
        staggered = [asyncio.sleep(i * 0.002) for i in range(120)]
        await asyncio.gather(
            delete_soon(), *(chain(s, t) for s, t in zip(staggered, starts, strict=True))
        )
        # and a few that surely begin after it, however slow the machine was
        await asyncio.gather(*(start_one(1000 + i) for i in range(10)))
    after = [(i, execution_id) for began, i, execution_id in outcomes if began > deleted_at[0]]
    assert after, "some starts must begin after the delete returned"
    for i, execution_id in after:
        if execution_id is not None:
            status = await wait_terminal(other, execution_id)
            assert status.state is ExecutionState.FAILED, status
            assert status.error is not None
            assert status.error.code == "workflow_not_found"
            assert not [e for e in status.history if e.type.startswith("step_")]
        assert read_marks(Path(f"{marks}-{i}")) == []


async def chain(first: Any, then: Any) -> None:
    """Await `first`, then `then`."""
    await first
    await then
