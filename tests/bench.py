"""`make bench`: the provider against raw HTTP to the same restate-server, in one run.

Each line runs both sides in this process against one server and one deployment, in
alternating rounds, and prints medians (and p99 where latencies are measured) with the
ratio. Figures only: nothing here asserts a timing.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from landlord_restate import (
    ExecutionInput,
    RestateConfig,
    RestateProvider,
    WorkflowSpec,
)
from landlord_restate.restate.local import DeploymentProcess, ServerProcess, describe_machine
from landlord_restate.restate.naming import workflow_key
from landlord_restate.restate.wire import ExecutionEnvelope
from landlord_restate.workflow.convert import to_json

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "Bench"
CONCURRENCY = 64


def rss_mb() -> float:
    """Resident memory of this process now, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Bench:
    """One server, one deployment, one provider and one raw session."""

    def __init__(self, server: ServerProcess, provider: RestateProvider,
                 raw: aiohttp.ClientSession) -> None:
        self.server = server
        self.provider = provider
        self.raw = raw
        self.lines: list[tuple[str, str, str, str]] = []

    async def workflow(self, handler: str) -> str:
        """Create a fresh workflow running `handler` on the bench service."""
        workflow_id = f"bench-{handler.lower()}-{uuid.uuid4().hex[:8]}"
        await self.provider.create_workflow(
            WorkflowSpec(workflow_id=workflow_id, provider_type="restate",
                         definition={"handler": handler})
        )
        return workflow_id

    def envelope(self, workflow_id: str, handler: str, name: str) -> dict[str, Any]:
        """Exactly the body the provider sends for a start."""
        return ExecutionEnvelope(
            workflow_id=workflow_id, handler=handler, execution_name=name, input={},
            timeout=to_json(self.provider.config.timeout),
        ).to_json()

    async def raw_send(self, service: str, key: str, body: Any) -> str:
        """One raw start through the ingress; answers the invocation id."""
        url = f"{self.server.ingress_url}/{service}/{key}/run/send"
        async with self.raw.post(url, json=body) as resp:
            assert resp.status in (200, 202), await resp.text()
            answer: dict[str, Any] = await resp.json()
            return str(answer["invocationId"])

    async def raw_query(self, sql: str) -> list[dict[str, Any]]:
        """One raw SQL query on the admin API."""
        async with self.raw.post(f"{self.server.admin_url}/query", json={"query": sql},
                                 headers={"accept": "application/json"}) as resp:
            assert resp.status == 200, await resp.text()
            rows: list[dict[str, Any]] = (await resp.json())["rows"]
            return rows

    async def drain(self) -> None:
        """Wait until no invocation is still running, so rounds start alike."""
        while True:
            rows = await self.raw_query(
                "SELECT count(*) AS n FROM sys_invocation "
                "WHERE target_handler_name = 'run' AND status != 'completed'"
            )
            if rows[0]["n"] == 0:
                return
            await asyncio.sleep(0.2)

    async def wait_completed(self, prefix: str, n: int) -> None:
        """Wait until n runs whose key starts with prefix have completed."""
        while True:
            rows = await self.raw_query(
                "SELECT count(*) AS n FROM sys_invocation WHERE status = 'completed' "
                f"AND target_handler_name = 'run' AND target_service_key LIKE '{prefix}%'"
            )
            if rows[0]["n"] >= n:
                return
            await asyncio.sleep(0.05)

    def add(self, line: str, provider: str, raw: str, ratio: str) -> None:
        """Record and print one line of the table."""
        self.lines.append((line, provider, raw, ratio))
        print(f"  {line}: provider {provider} | raw {raw} | {ratio}", flush=True)


async def gated(n: int, call: Callable[[int], Awaitable[Any]]) -> float:
    """Run call(0..n-1) at CONCURRENCY; answer the seconds it took."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began


async def scale_and_memory(bench: Bench) -> None:
    """Lines 4 and 5: status p50 at 100 vs 10,000 retained; RSS after 100 vs 10,000 starts."""
    workflow_id = await bench.workflow("Noop")
    ids: list[str] = []

    async def start(i: int) -> None:
        result = await bench.provider.start_execution(
            workflow_id, ExecutionInput(execution_name=f"s{i:05d}", input={})
        )
        ids.append(result.execution_id)

    async def p50_status() -> float:
        sample = ids[:100]
        times = []
        for execution_id in sample * 2:
            began = time.perf_counter()
            await bench.provider.get_execution_status(execution_id)
            times.append(time.perf_counter() - began)
        return statistics.median(times) * 1000

    await gated(100, start)
    await bench.wait_completed(f"{workflow_id}.", 100)
    await bench.drain()
    rss_100 = rss_mb()
    at_100 = await p50_status()
    async def later(i: int) -> None:
        await start(100 + i)

    await gated(9900, later)
    rss_10k = rss_mb()
    await bench.wait_completed(f"{workflow_id}.", 10000)
    await bench.drain()
    at_10k = await p50_status()
    bench.add("4. status p50, 100 vs 10,000 retained", f"{at_10k:.1f} ms at 10k",
              f"{at_100:.1f} ms at 100", f"ratio {at_10k / at_100:.2f} (goal <= 1.2)")
    bench.add("5. provider RSS, 10,000 starts vs 100", f"{rss_10k:.1f} MB",
              f"{rss_100:.1f} MB", f"+{rss_10k - rss_100:.1f} MB (goal <= 20)")


async def start_throughput(
    bench: Bench, provider: RestateProvider, label: str, n: int = 2000, rounds: int = 3
) -> None:
    """Line 1: start_execution vs raw POST .../run/send, 2,000 each at concurrency 64."""
    provider_rates, raw_rates = [], []
    for _ in range(rounds):
        workflow_id = await bench.workflow("Noop")
        run = uuid.uuid4().hex[:6]

        async def ours(i: int, w: str = workflow_id, r: str = run) -> Any:
            return await provider.start_execution(
                w, ExecutionInput(execution_name=f"p{r}{i}", input={}))

        provider_rates.append(n / await gated(n, ours))
        await bench.drain()
        raw_id = await bench.workflow("Noop")

        async def raw(i: int, w: str = raw_id, r: str = run) -> Any:
            return await bench.raw_send(
                SERVICE, workflow_key(w, f"r{r}{i}"), bench.envelope(w, "Noop", f"r{r}{i}"))

        seconds = await gated(n, raw)
        raw_rates.append(n / seconds)
        await bench.drain()
    p, r = statistics.median(provider_rates), statistics.median(raw_rates)
    bench.add(f"1. starts/s, 2,000 at concurrency 64{label}", f"{p:.0f}/s", f"{r:.0f}/s",
              f"{p / r:.2f}x (goal >= 0.9x)")


async def status_latency(bench: Bench, n: int = 50, rounds: int = 4) -> None:
    """Line 2: get_execution_status (input, output, 5-step history) vs one raw sys_invocation
    query."""
    workflow_id = await bench.workflow("FiveSteps")
    ids = [
        (await bench.provider.start_execution(
            workflow_id, ExecutionInput(execution_name=f"st{i}", input={}))).execution_id
        for i in range(n)
    ]
    await bench.wait_completed(f"{workflow_id}.", n)
    ours: list[float] = []
    raw: list[float] = []
    for _ in range(rounds):
        for execution_id in ids:
            began = time.perf_counter()
            status = await bench.provider.get_execution_status(execution_id)
            ours.append(time.perf_counter() - began)
            assert len([e for e in status.history if e.type == "step_completed"]) == 5
        for execution_id in ids:
            began = time.perf_counter()
            await bench.raw_query(f"SELECT * FROM sys_invocation WHERE id = '{execution_id}'")
            raw.append(time.perf_counter() - began)
    p50, r50 = pct(ours, 0.5) * 1000, pct(raw, 0.5) * 1000
    bench.add("2. status latency p50 (p99)",
              f"{p50:.1f} ms ({pct(ours, 0.99) * 1000:.1f})",
              f"{r50:.1f} ms ({pct(raw, 0.99) * 1000:.1f})",
              f"{p50 / r50:.2f}x (goal <= 1.5x)")


async def shim_overhead(bench: Bench, n: int = 500, rounds: int = 2) -> None:
    """Line 3: 500 runs of ThreeSteps through the shim vs the same steps as a plain
    restate.Workflow in the same app."""
    shim_rates, plain_rates = [], []
    for _ in range(rounds):
        workflow_id = await bench.workflow("ThreeSteps")
        began = time.perf_counter()

        async def shim(i: int, w: str = workflow_id) -> Any:
            return await bench.raw_send(
                SERVICE, workflow_key(w, f"e{i}"), bench.envelope(w, "ThreeSteps", f"e{i}"))

        await gated(n, shim)
        await bench.wait_completed(f"{workflow_id}.", n)
        shim_rates.append(n / (time.perf_counter() - began))
        await bench.drain()
        prefix = f"plain{uuid.uuid4().hex[:6]}"
        began = time.perf_counter()

        async def plain(i: int, p: str = prefix) -> Any:
            return await bench.raw_send("PlainThreeSteps", f"{p}{i}", {})

        await gated(n, plain)
        await bench.wait_completed(prefix, n)
        plain_rates.append(n / (time.perf_counter() - began))
        await bench.drain()
    s, p = statistics.median(shim_rates), statistics.median(plain_rates)
    bench.add("3. completions/s, 500 runs of 3 steps", f"{s:.0f}/s (shim)", f"{p:.0f}/s (plain)",
              f"{s / p:.2f}x (goal >= 0.9x)")


async def main(lines: Sequence[str] = ("1", "2", "3", "4", "5")) -> int:
    """Start the stack, run the lines asked for (all five by default), print the table."""
    machine = describe_machine(ROOT)
    print(f"machine: {machine}", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="landlord-bench-") as tmp:
        base = Path(tmp)
        env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": SERVICE}
        server = ServerProcess(base / "data", config_file=ROOT / "restate.toml")
        deployment = DeploymentProcess(base / "hypercorn.log", env=env, app="tests.bench_app:app")
        async with server, deployment:
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   deployment_url=deployment.url, service_name=SERVICE)
            connector = aiohttp.TCPConnector(limit=256)
            async with RestateProvider(config) as provider, aiohttp.ClientSession(
                connector=connector
            ) as raw:
                bench = Bench(server, provider, raw)
                if "4" in lines or "5" in lines:
                    await scale_and_memory(bench)
                if "1" in lines:
                    await start_throughput(bench, provider, "")
                    cached = attrs.evolve(config, spec_cache_ttl=timedelta(seconds=5))
                    async with RestateProvider(cached) as fast:
                        await start_throughput(bench, fast, ", spec_cache_ttl=5s")
                if "2" in lines:
                    await status_latency(bench)
                if "3" in lines:
                    await shim_overhead(bench)
    print(f"\n{machine}; total {time.perf_counter() - began:.0f} s\n")
    print("| line | provider | raw Restate | ratio |")
    print("|---|---|---|---|")
    for line in sorted(bench.lines):
        print("| " + " | ".join(line) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:] or ("1", "2", "3", "4", "5"))))
