"""The provider against raw Restate on the shared stack: starts, status, shim completions,
waits, strictness after a delete, and where a start's time goes (lines 1-9, 13)."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from landlord_restate import ExecutionInput, RestateConfig, RestateProvider, WorkflowNotFoundError
from landlord_restate.restate.http import ack_now
from landlord_restate.restate.naming import workflow_key
from landlord_restate.restate.waiting import poll_until_terminal
from landlord_restate.workflow.convert import parse_rfc3339
from tests.bench import SERVICE, Bench, Run, gated, line, pct, rss_mb
from tests.conftest import spec_for


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
    bench.add(f"1. starts/s, {n:,} at concurrency 64{label}", f"{p:.0f}/s", f"{r:.0f}/s",
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
              f"p50 {p50 / r50:.2f}x (goal <= 1.2x), p99 "
              f"{pct(ours, 0.99) / pct(raw, 0.99):.2f}x (goal <= 1.5x)")


@attrs.frozen
class Completions:
    """Completions per second of the shim and of the plain workflow, one per round, and
    what `counted` grew by per run in each (when given)."""

    shim: list[float]
    plain: list[float]
    shim_counted: list[float]
    plain_counted: list[float]


async def completion_rounds(bench: Bench, n: int, rounds: int,
                            counted: Callable[[], int] | None = None) -> Completions:
    """`rounds` rounds, each n runs of ThreeSteps through the shim and then n of
    PlainThreeSteps, all started raw, every run of a side completed before the next
    side starts."""
    found = Completions([], [], [], [])

    async def side(send: Callable[[int], Awaitable[Any]], prefix: str,
                   rates: list[float], grew: list[float]) -> None:
        before = counted() if counted else 0
        began = time.perf_counter()
        await gated(n, send)
        await bench.wait_completed(prefix, n)
        rates.append(n / (time.perf_counter() - began))
        await bench.drain()
        if counted:
            grew.append((counted() - before) / n)

    for _ in range(rounds):
        workflow_id = await bench.workflow("ThreeSteps")

        async def shim(i: int, w: str = workflow_id) -> Any:
            return await bench.raw_send(
                SERVICE, workflow_key(w, f"e{i}"), bench.envelope(w, "ThreeSteps", f"e{i}"))

        await side(shim, f"{workflow_id}.", found.shim, found.shim_counted)
        prefix = f"plain{uuid.uuid4().hex[:6]}"

        async def plain(i: int, p: str = prefix) -> Any:
            return await bench.raw_send("PlainThreeSteps", f"{p}{i}", {})

        await side(plain, prefix, found.plain, found.plain_counted)
    return found


async def shim_overhead(bench: Bench, n: int = 500, rounds: int = 2) -> None:
    """Line 3: 500 runs of ThreeSteps through the shim vs the same steps as a plain
    restate.Workflow in the same app."""
    found = await completion_rounds(bench, n, rounds)
    s, p = statistics.median(found.shim), statistics.median(found.plain)
    bench.add("3. completions/s, 500 runs of 3 steps", f"{s:.0f}/s (shim)", f"{p:.0f}/s (plain)",
              f"{s / p:.2f}x (goal >= 0.95x)")


async def single_start_latency(bench: Bench, n: int = 200) -> None:
    """Line 6: one start at a time (concurrency 1): provider vs raw send, p50 and p99."""
    workflow_id = await bench.workflow("Noop")
    raw_id = await bench.workflow("Noop")
    run = uuid.uuid4().hex[:6]
    ours: list[float] = []
    raw: list[float] = []
    for i in range(n):
        began = time.perf_counter()
        await bench.provider.start_execution(
            workflow_id, ExecutionInput(execution_name=f"one{run}{i}", input={}))
        ours.append(time.perf_counter() - began)
        began = time.perf_counter()
        await bench.raw_send(SERVICE, workflow_key(raw_id, f"one{run}{i}"),
                             bench.envelope(raw_id, "Noop", f"one{run}{i}"))
        raw.append(time.perf_counter() - began)
    await bench.drain()
    p50, r50, p99, r99 = (pct(ours, 0.5) * 1000, pct(raw, 0.5) * 1000,
                          pct(ours, 0.99) * 1000, pct(raw, 0.99) * 1000)
    bench.add("6. single start latency p50 (p99), concurrency 1", f"{p50:.1f} ms ({p99:.1f})",
              f"{r50:.1f} ms ({r99:.1f})", f"p50 {p50 / r50:.2f}x, p99 {p99 / r99:.2f}x")


async def notice_latency(bench: Bench, n: int = 15) -> None:
    """Line 7: from Restate's completed_at to the caller knowing: wait_execution against
    polling status every 250 ms and against a raw attach, on the same executions."""
    workflow_id = await bench.workflow("SlowSteps")
    waited: list[float] = []
    polled: list[float] = []
    attached: list[float] = []

    async def by_wait(execution_id: str) -> float:
        await bench.provider.wait_execution(execution_id, timeout=60)
        return time.time()

    async def by_polling(execution_id: str) -> float:
        await poll_until_terminal(bench.provider, execution_id, interval=0.25)
        return time.time()

    async def by_raw_attach(execution_id: str) -> float:
        url = f"{bench.server.ingress_url}/restate/attach/{execution_id}"
        async with bench.raw.get(url) as resp:
            ack_now(resp)
            await resp.read()
        return time.time()

    for i in range(n):
        started = await bench.provider.start_execution(workflow_id, ExecutionInput(
            execution_name=f"n{i}", input={"step_seconds": 0.3, "steps": 1}))
        execution_id = started.execution_id
        known = await asyncio.gather(
            by_wait(execution_id), by_polling(execution_id), by_raw_attach(execution_id)
        )
        rows = await bench.raw_query(
            f"SELECT completed_at FROM sys_invocation WHERE id = '{execution_id}'")
        completed = parse_rfc3339(rows[0]["completed_at"]).timestamp()
        for out, at in zip((waited, polled, attached), known, strict=True):
            out.append(max(at - completed, 0.0))
    w, p, a = (pct(x, 0.5) * 1000 for x in (waited, polled, attached))
    bench.add("7. notice latency p50: wait_execution / polling 250 ms", f"{w:.1f} ms / {p:.1f} ms",
              f"{a:.1f} ms (raw attach)", f"+{w - a:.1f} ms over raw attach (goal <= 5 ms)")


async def strict_with_two_providers(bench: Bench, config: RestateConfig, rounds: int = 5,
                                    n: int = 100) -> None:
    """Line 8: one provider deletes a workflow that another has started (and so remembers);
    then the other begins `n` starts of it: each must be refused at Restate's door, or its
    run must fail `workflow_not_found` before its first step. Counts the runs that ran a
    step (goal 0) among the starts begun after the delete returned (a fixed number)."""
    ran = refused = failed_before_a_step = 0
    async with RestateProvider(config) as deleter:
        for r in range(rounds):
            spec = spec_for("ThreeSteps", f"bench-strict-{uuid.uuid4().hex[:8]}")
            await deleter.create_workflow(spec)
            # the starting provider learns the workflow's route, as a long-lived one has
            await bench.provider.start_execution(
                spec.workflow_id, ExecutionInput(execution_name=f"warm{r}", input={}))
            await deleter.delete_workflow(spec.workflow_id)
            started: list[str] = []

            async def start(i: int, w: str = spec.workflow_id, rr: int = r,
                            started: list[str] = started) -> None:
                nonlocal refused
                try:
                    result = await bench.provider.start_execution(
                        w, ExecutionInput(execution_name=f"x{rr}-{i}", input={}))
                except WorkflowNotFoundError:
                    refused += 1
                    return
                started.append(result.execution_id)

            await gated(n, start)
            await bench.drain()
            for execution_id in started:
                status = await bench.provider.get_execution_status(execution_id)
                steps = [e for e in status.history if e.type == "step_started"]
                if status.error is not None and status.error.code == "workflow_not_found" \
                        and not steps:
                    failed_before_a_step += 1
                else:
                    ran += 1
    total = rounds * n
    bench.add("8. starts after a delete through another provider: runs that ran a step",
              f"{ran} of {total}",
              f"{refused} refused at the door, {failed_before_a_step} failed before a step",
              "goal: 0")


async def status_under_load(bench: Bench, n: int = 100) -> None:
    """Line 9: status p50 and p99 while 64 starts are in flight, against the raw query."""
    workflow_id = await bench.workflow("FiveSteps")
    ids = [(await bench.provider.start_execution(
        workflow_id, ExecutionInput(execution_name=f"ul{i}", input={}))).execution_id
        for i in range(20)]
    await bench.wait_completed(f"{workflow_id}.", 20)
    load_id = await bench.workflow("Noop")
    stop = asyncio.Event()

    async def load() -> None:
        base = 0
        while not stop.is_set():
            async def one(k: int, first: int = base) -> Any:
                return await bench.provider.start_execution(
                    load_id, ExecutionInput(execution_name=f"l{first + k}", input={}))

            await gated(64, one)
            base += 64

    loader = asyncio.create_task(load())
    ours: list[float] = []
    raw: list[float] = []
    try:
        for k in range(n):
            execution_id = ids[k % len(ids)]
            began = time.perf_counter()
            await bench.provider.get_execution_status(execution_id)
            ours.append(time.perf_counter() - began)
            began = time.perf_counter()
            await bench.raw_query(f"SELECT * FROM sys_invocation WHERE id = '{execution_id}'")
            raw.append(time.perf_counter() - began)
    finally:
        stop.set()
        await loader
    await bench.drain()
    p50, r50, p99, r99 = (pct(ours, 0.5) * 1000, pct(raw, 0.5) * 1000,
                          pct(ours, 0.99) * 1000, pct(raw, 0.99) * 1000)
    bench.add("9. status p50 (p99) with 64 starts in flight", f"{p50:.1f} ms ({p99:.1f})",
              f"{r50:.1f} ms ({r99:.1f})",
              f"p50 {p50 / r50:.2f}x (goal <= 1.2x), p99 {p99 / r99:.2f}x (goal <= 1.5x)")


async def completions(bench: Bench, service: str, provider: RestateProvider, n: int) -> float:
    """Completions per second of n ThreeSteps runs started raw on `service`."""
    spec = spec_for("ThreeSteps", f"bench-threesteps-{uuid.uuid4().hex[:8]}")
    await bench.create(provider, spec)
    began = time.perf_counter()

    async def send(i: int) -> Any:
        return await bench.raw_send(service, workflow_key(spec.workflow_id, f"c{i}"),
                                    bench.envelope(spec.workflow_id, "ThreeSteps", f"c{i}"))

    await gated(n, send)
    await bench.wait_completed(f"{spec.workflow_id}.", n)
    rate = n / (time.perf_counter() - began)
    await bench.drain()
    return rate


async def start_profile(bench: Bench, n: int = 300) -> None:
    """Line 13: where a start's time goes, one start at a time: finding the workflow's
    service (an SQL read the first time, remembered after), the send, and the provider's
    own work (timed around the first two)."""
    workflow_id = await bench.workflow("Noop")
    provider = bench.provider
    catalog, ingress = provider._room.parts.specs, provider.ingress
    read: list[float] = []
    send: list[float] = []
    real_get, real_send = catalog.route, ingress.send_workflow

    async def timed_get(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await real_get(*args, **kwargs)
        finally:
            read.append(time.perf_counter() - began)

    async def timed_send(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return await real_send(*args, **kwargs)
        finally:
            send.append(time.perf_counter() - began)

    catalog.route, ingress.send_workflow = timed_get, timed_send  # type: ignore[method-assign]
    total: list[float] = []
    try:
        for i in range(n):
            began = time.perf_counter()
            await provider.start_execution(
                workflow_id, ExecutionInput(execution_name=f"prof{i}", input={}))
            total.append(time.perf_counter() - began)
    finally:
        catalog.route, ingress.send_workflow = real_get, real_send  # type: ignore[method-assign]
    await bench.drain()
    t, r, s_ = (statistics.median(x) * 1000 for x in (total, read, send))
    bench.add("13. a start, median of 300 at concurrency 1", f"{t:.1f} ms in all",
              f"service lookup {r:.2f} ms, send {s_:.1f} ms", f"own work {t - r - s_:.1f} ms")




@line("1")
async def _line_1(run: Run) -> None:
    await start_throughput(run.bench, run.bench.provider, "")


@line("2")
async def _line_2(run: Run) -> None:
    await status_latency(run.bench)


@line("3")
async def _line_3(run: Run) -> None:
    await shim_overhead(run.bench)


@line("4", order=0)  # first, on an empty server: it measures growth from 100 retained
async def _line_4(run: Run) -> None:
    await scale_and_memory(run.bench)


line("5", order=0)(_line_4)  # line 4's run prints line 5 too


@line("6")
async def _line_6(run: Run) -> None:
    await single_start_latency(run.bench)


@line("7")
async def _line_7(run: Run) -> None:
    await notice_latency(run.bench)


@line("8")
async def _line_8(run: Run) -> None:
    await strict_with_two_providers(run.bench, run.config)


@line("9")
async def _line_9(run: Run) -> None:
    await status_under_load(run.bench)


@line("13")
async def _line_13(run: Run) -> None:
    await start_profile(run.bench)
