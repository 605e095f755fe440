"""`make bench`: the provider against raw HTTP to the same restate-server, in one run.

Each line runs both sides in this process against one server and one deployment, in
alternating rounds, and prints medians (and p99 where latencies are measured) with the
ratio. Figures only: nothing here asserts a timing.

A line is an `async def` taking the run (`Run`: the bench, its config and a scratch folder),
registered with `@line("N")` in any module of this package; `python -m tests.bench` runs
them all in order, `python -m tests.bench 1 3 6` the ones named.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import attrs

from landlord_restate import RestateConfig, RestateProvider, WorkflowSpec
from landlord_restate.restate.http import ack_now
from landlord_restate.restate.wire import ExecutionEnvelope
from landlord_restate.testing import ServerProcess
from landlord_restate.workflow.convert import to_json

ROOT = Path(__file__).resolve().parent.parent.parent
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
                 raw: aiohttp.ClientSession, *, echo: bool = True) -> None:
        self.server = server
        #: print each line as it is measured (off where a caller relabels the lines)
        self.echo = echo
        self.provider = provider
        self.raw = raw
        self.lines: list[tuple[str, str, str, str]] = []
        #: workflow id -> its catalog entry's invocation id
        self.entries: dict[str, str] = {}

    async def workflow(self, handler: str) -> str:
        """Create a fresh workflow running `handler` on the bench service."""
        workflow_id = f"bench-{handler.lower()}-{uuid.uuid4().hex[:8]}"
        await self.create(self.provider, WorkflowSpec(
            workflow_id=workflow_id, provider_type="restate", definition={"handler": handler}))
        return workflow_id

    def envelope(self, workflow_id: str, handler: str, name: str) -> dict[str, Any]:
        """Exactly the body the provider sends for a start (naming the workflow's catalog
        entry, which the run attaches to)."""
        return ExecutionEnvelope(
            workflow_id=workflow_id, handler=handler, execution_name=name, input={},
            timeout=to_json(self.provider.config.timeout),
            catalog_entry=self.entries.get(workflow_id, ""),
        ).to_json()

    async def create(self, provider: RestateProvider, spec: WorkflowSpec) -> None:
        """Create the workflow through `provider`; remember its catalog entry."""
        created = await provider.create_workflow(spec)
        self.entries[spec.workflow_id] = created.resource_ids["catalog_entry"]

    async def raw_send(self, service: str, key: str, body: Any) -> str:
        """One raw start through the ingress; answers the invocation id."""
        url = f"{self.server.ingress_url}/{service}/{key}/run/send"
        async with self.raw.post(url, json=body) as resp:
            assert resp.status in (200, 202), await resp.text()
            answer: dict[str, Any] = await resp.json()
            return str(answer["invocationId"])

    async def raw_query(self, sql: str) -> list[dict[str, Any]]:
        """One raw SQL query on the admin API; asked again while a cluster node answers
        that a partition is moving (Restate calls that answer benign)."""
        for _ in range(50):
            async with self.raw.post(f"{self.server.admin_url}/query", json={"query": sql},
                                     headers={"accept": "application/json"}) as resp:
                ack_now(resp)  # as the provider does: a fair comparison, no delayed-ACK tail
                text = await resp.text()
                if resp.status != 200 and "benign" in text:
                    await asyncio.sleep(0.1)
                    continue
                assert resp.status == 200, text
                rows: list[dict[str, Any]] = json.loads(text)["rows"]
                return rows
        raise AssertionError(f"the cluster kept moving partitions: {text}")

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
        if self.echo:
            print(f"  {line}: provider {provider} | raw {raw} | {ratio}", flush=True)


async def gated(n: int, call: Callable[[int], Awaitable[Any]],
                concurrency: int = CONCURRENCY) -> float:
    """Run call(0..n-1), at most `concurrency` at once; answer the seconds it took."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.perf_counter() - began




@attrs.frozen
class Run:
    """What every line gets: the bench on the shared stack, its config, a scratch folder."""

    bench: Bench
    config: RestateConfig
    base: Path


#: a line of the table: it measures and calls `run.bench.add` itself
LineFn = Callable[[Run], Awaitable[None]]


@attrs.frozen
class Line:
    """A registered line: its number, the order it runs in, and what runs it."""

    number: str
    order: float
    run: LineFn


#: every line, by number (modules of this package register theirs on import)
LINES: dict[str, Line] = {}


def line(number: str, *, order: float | None = None) -> Callable[[LineFn], LineFn]:
    """Register a line; `order` (default: its number) decides when it runs, since some
    lines leave something behind (a tracer provider) and must come last."""

    def register(fn: LineFn) -> LineFn:
        if number in LINES:
            raise ValueError(f"bench line {number} is registered twice")
        LINES[number] = Line(number, float(number) if order is None else order, fn)
        return fn

    return register
