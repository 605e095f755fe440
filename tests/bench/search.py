"""Finding executions at fleet scale (lines 15 and 16): one tenant's first page and counts
by state, with 2,000 and then 20,000 executions retained over 200 tenants, against raw SQL
of the same answer; and what Landlord's three tags cost a start (a second line 15).

On a stack of its own (a server and a deployment started here), so the 20,000 executions
it leaves behind slow no other line; late in the run for the same reason.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs

from landlord_restate import ExecutionInput, ExecutionState, RestateProvider, WorkflowSpec
from landlord_restate.restate.http import ack_now
from landlord_restate.testing import DeploymentProcess, ServerProcess
from tests.bench import ROOT, Bench, Run, gated, line

SERVICE = "BenchSearch"
TENANTS = 200
#: one start in this many fails (FailWithCode), so counts read failures' outcomes too
FAILING_EVERY = 20
#: the page an operator asks for first
PAGE = 100
_SUMMARY = ("id, target_service_key, status, created_at, running_at, completed_at, "
            "completion_result, completion_failure")


def tenant(i: int) -> str:
    """The tenant of the i-th start: 200 tenants, round robin."""
    return f"tenant-{i % TENANTS:03d}"


async def p50_ms(calls: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Median milliseconds of `calls` calls, one at a time."""
    times = []
    for i in range(calls):
        began = time.perf_counter()
        await call(i)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


@attrs.frozen
class Fleet:
    """The bench's own stack, filled with tagged executions."""

    provider: RestateProvider
    raw: aiohttp.ClientSession
    server: ServerProcess
    noop: str
    failing: str

    async def fill(self, first: int, last: int) -> float:
        """Start executions first..last-1 with Landlord's tags, as invoke tags them;
        answers the seconds it took."""

        async def one(i: int) -> Any:
            n = first + i
            workflow_id = self.failing if n % FAILING_EVERY == 0 else self.noop
            return await self.provider.start_execution(workflow_id, ExecutionInput(
                execution_name=f"{tenant(n)}-provision-{n:06d}", input={
                    "code": "compute_failed", "message": "the dependency is down"},
                tags={"tenant_id": tenant(n), "tenant_uuid": f"uuid-{tenant(n)}",
                      "operation": "provision"},
                trigger_source="reconciler"))

        return await gated(last - first, one)

    async def query(self, sql: str) -> list[dict[str, Any]]:
        """One raw SQL query, as a client of Restate would send it."""
        async with self.raw.post(f"{self.server.admin_url}/query", json={"query": sql},
                                 headers={"accept": "application/json"}) as resp:
            ack_now(resp)  # as the provider does: a fair comparison
            assert resp.status == 200, await resp.text()
            rows: list[dict[str, Any]] = (await resp.json())["rows"]
            return rows

    async def settle(self, expected: int) -> None:
        """Wait until every execution started has ended."""
        while True:
            rows = await self.query(
                "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'run' "
                "AND status = 'completed' AND target_service_key LIKE 'bench-search-%'")
            if rows[0]["n"] >= expected:
                return
            await asyncio.sleep(0.5)

    async def measure(self, calls: int = 30) -> dict[str, float]:
        """p50s: one tenant's first page (provider by tag; raw SQL by workflow key), and a
        count by state (provider; raw grouped SQL), of the whole fleet and of one tenant."""

        def page(size: int) -> Callable[[int], Awaitable[None]]:
            async def call(i: int) -> None:
                found = await self.provider.list_executions_page(
                    tags={"tenant_id": tenant(i * 7)}, page_size=size)
                assert found.executions
            return call

        def raw_page(size: int) -> Callable[[int], Awaitable[None]]:
            async def call(i: int) -> None:
                rows = await self.query(
                    f"SELECT {_SUMMARY} FROM sys_invocation WHERE target_handler_name = 'run' "
                    f"AND target_service_key LIKE 'bench-search-%.{tenant(i * 7)}-provision-%' "
                    f"ORDER BY created_at DESC, id DESC LIMIT {size}")
                assert rows
            return call

        async def count(_: int) -> None:
            counted = await self.provider.count_executions()
            assert counted.by_state[ExecutionState.FAILED]

        async def raw_count(_: int) -> None:
            await self.query(
                "SELECT status, completion_result, count(*) AS n FROM sys_invocation WHERE "
                "target_handler_name = 'run' GROUP BY status, completion_result "
                "ORDER BY status")

        async def tenant_count(i: int) -> None:
            await self.provider.count_executions(tags={"tenant_id": tenant(i * 7)})

        figures = {}
        for name, call in (("page", page(PAGE)), ("raw_page", raw_page(PAGE)),
                           ("page10", page(10)), ("raw_page10", raw_page(10)),
                           ("count", count), ("raw_count", raw_count),
                           ("tenant_count", tenant_count)):
            await call(0)  # warm
            figures[name] = await p50_ms(calls, call)
        return figures


async def tag_cost(provider: RestateProvider, workflow_id: str, n: int = 200) -> tuple[float,
                                                                                       float]:
    """p50 ms of a start without tags and of one with Landlord's three, one at a time."""
    run = uuid.uuid4().hex[:6]
    plain = await p50_ms(n, lambda i: provider.start_execution(
        workflow_id, ExecutionInput(execution_name=f"plain-{run}-{i}", input={})))
    tagged = await p50_ms(n, lambda i: provider.start_execution(
        workflow_id, ExecutionInput(execution_name=f"tagged-{run}-{i}", input={},
                                    tags={"tenant_id": f"t{i}", "tenant_uuid": f"u{i}",
                                          "operation": "provision"},
                                    trigger_source="reconciler")))
    return plain, tagged


async def fleet_search(bench: Bench, run: Run) -> None:
    """Lines 15 and 16 on a stack of their own."""
    base = run.base / "search"
    env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": SERVICE}
    server = ServerProcess(base / "data", config_file=ROOT / "restate.toml")
    deployment = DeploymentProcess(base / "hypercorn.log", env=env, app="tests.bench_app:app")
    async with server, deployment:
        config = attrs.evolve(run.config, endpoint=server.ingress_url,
                              admin_endpoint=server.admin_url, deployment_url=deployment.url,
                              service_name=SERVICE)
        async with RestateProvider(config) as provider, aiohttp.ClientSession() as raw:
            suffix = uuid.uuid4().hex[:6]
            ids = []
            for handler in ("Noop", "FailWithCode"):
                spec = WorkflowSpec(workflow_id=f"bench-search-{handler.lower()}-{suffix}",
                                    provider_type="restate", definition={"handler": handler})
                await provider.create_workflow(spec)
                ids.append(spec.workflow_id)
            fleet = Fleet(provider, raw, server, *ids)
            filled = await fleet.fill(0, 2_000)
            await fleet.settle(2_000)
            small = await fleet.measure()
            filled += await fleet.fill(2_000, 20_000)
            await fleet.settle(20_000)
            large = await fleet.measure()
            plain, tagged = await tag_cost(provider, fleet.noop)
    def grows(key: str) -> str:
        return f"{large[key] / small[key]:.2f}x"

    bench.add(
        "15. one tenant's first page of 100 by tag, p50 at 20,000 over 200 tenants",
        f"{large['page']:.1f} ms ({small['page']:.1f} ms at 2,000: 10 runs a tenant)",
        f"{large['raw_page']:.1f} ms ({small['raw_page']:.1f} ms at 2,000), SQL by key",
        f"{large['page'] / large['raw_page']:.2f}x raw (goal <= 2x, <= 50 ms)",
    )
    bench.add(
        "15. its growth, 2,000 to 20,000 retained, the same answer (a page of 10)",
        f"{large['page10']:.1f} ms ({small['page10']:.1f} ms at 2,000)",
        f"{large['raw_page10']:.1f} ms ({small['raw_page10']:.1f} ms at 2,000)",
        f"grows {grows('page10')} (goal <= 2x), raw {grows('raw_page10')}; "
        f"the page of 100 {grows('page')} (10x the rows), raw {grows('raw_page')}",
    )
    bench.add(
        "16. count by state p50: all 20,000, 1,000 failed (a tenant: 100)",
        f"{large['count']:.1f} ms ({small['count']:.1f} ms at 2,000); a tenant "
        f"{large['tenant_count']:.1f} ms ({small['tenant_count']:.1f} ms at 10)",
        f"{large['raw_count']:.1f} ms ({small['raw_count']:.1f} ms at 2,000), grouped SQL",
        f"{large['count'] / large['raw_count']:.2f}x raw; grows {grows('count')} "
        f"(raw {grows('raw_count')}), a tenant {grows('tenant_count')}",
    )
    bench.add(
        "15. what it costs: a start with Landlord's 3 tags vs none, p50 at concurrency 1",
        f"{tagged:.1f} ms tagged", f"{plain:.1f} ms untagged",
        f"+{tagged - plain:.1f} ms (4 state writes; filled 20,000 tagged at "
        f"{20_000 / filled:.0f}/s, concurrency 64)",
    )


@line("15", order=900)  # late: fills a stack of its own with 20,000 executions
async def _line_15(run: Run) -> None:
    await fleet_search(run.bench, run)


line("16", order=900)(_line_15)  # line 15's run prints line 16 too
