"""The fault and load scenarios, shared by the fast tests (make test) and the soak (make soak).

Each scenario returns a FaultReport; the soak prints them as a table.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionState,
    RestateProvider,
)
from landlord_restate.restate.naming import split_workflow_key
from landlord_restate.restate.status import build_history
from tests.conftest import spec_for, unique_id

#: every report of this test session, printed by conftest at the end
REPORTS: list[FaultReport] = []


@attrs.define
class FaultReport:
    """One row of the table `make soak` prints."""

    fault: str
    executions: int
    completed: int = 0
    duplicates: int = 0
    lost: int = 0
    rerun_steps: int = 0
    redone_in_flight: int = 0
    #: the longest status or list call through the provider while the fault lasted
    slowest_call: float = 0.0
    seconds: float = 0.0
    note: str = ""
    probe_errors: list[BaseException] = attrs.Factory(list)


class CallProbe:
    """Status and list calls through the provider, back to back, while a fault lasts.

    Records the slowest call; any call that fails is kept, since the provider must keep
    answering from the nodes that survive.
    """

    def __init__(self, provider: RestateProvider, workflow_id: str, ids: list[str]) -> None:
        self.provider = provider
        self.workflow_id = workflow_id
        self.ids = ids
        self.slowest = 0.0
        self.calls = 0
        self.errors: list[BaseException] = []
        self._task: asyncio.Task[None] | None = None
        self._in_flight_since: float | None = None

    def start(self) -> None:
        """Begin probing in the background."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """End probing (the probe's own failures are in `errors`)."""
        if self._in_flight_since is not None:  # a call still waiting counts as it stands
            self.slowest = max(self.slowest, time.monotonic() - self._in_flight_since)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        i = 0
        while True:
            i += 1
            began = self._in_flight_since = time.monotonic()
            try:
                if i % 4 == 0:
                    await self.provider.list_executions(self.workflow_id, limit=10)
                else:
                    await self.provider.get_execution_status(self.ids[i % len(self.ids)])
            except Exception as exc:
                self.errors.append(exc)
            self._in_flight_since = None
            self.calls += 1
            self.slowest = max(self.slowest, time.monotonic() - began)
            await asyncio.sleep(0.05)


def assert_clean(report: FaultReport) -> None:
    """Every execution completed, none twice, no journaled step ran again, no call failed."""
    assert report.completed == report.executions, report
    assert report.duplicates == 0, report
    assert report.lost == 0, report
    assert report.rerun_steps == 0, report
    assert report.probe_errors == [], report


async def start_mix(
    provider: RestateProvider, n: int, marks: Path, step_seconds: float = 0.5
) -> tuple[str, dict[str, str], list[str]]:
    """Start n SoakMix executions: a third sleep, a third wait for the callback.

    Answers the workflow id, execution id by name, and the names waiting for a callback.
    """
    spec = spec_for("SoakMix", unique_id("soak"))
    await provider.create_workflow(spec)
    inputs = {}
    for i in range(n):
        request: dict[str, Any] = {"marks": str(marks), "step_seconds": step_seconds}
        if i % 3 == 0:
            request["sleep_ms"] = 1500
        elif i % 3 == 1:
            request["callback"] = True
        inputs[f"x{i:04d}"] = request
    results = await asyncio.gather(*(
        provider.start_execution(spec.workflow_id, ExecutionInput(execution_name=name, input=req))
        for name, req in inputs.items()
    ))
    ids = {name: r.execution_id for name, r in zip(inputs, results, strict=True)}
    waiting = [name for name, req in inputs.items() if req.get("callback")]
    return spec.workflow_id, ids, waiting


async def journaled_steps(provider: RestateProvider, workflow_id: str) -> set[tuple[str, str]]:
    """(execution name, step) of every step whose result Restate has journaled."""
    rows = await provider.admin.query(
        "SELECT i.target_service_key AS key, j.index, j.entry_type, j.name, "
        "j.entry_lite_json, j.appended_at FROM sys_journal j JOIN sys_invocation i "
        f"ON j.id = i.id WHERE i.target_service_key LIKE '{workflow_id}.%' "
        "ORDER BY i.target_service_key, j.index"
    )
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    done = set()
    for key, journal in by_key.items():
        name = split_workflow_key(key)[1]
        for event in build_history(journal, ExecutionState.RUNNING, None, None):
            if event.type == "step_completed":
                done.add((name, event.details["step"]))
    return done


async def post_callbacks(provider: RestateProvider, ids: dict[str, str], names: list[str]) -> None:
    """Deliver the compute callback to each waiting execution."""
    await asyncio.gather(*(
        provider.post_compute_callback(
            ids[name],
            ComputeCallbackPayload(execution_id=f"c-{name}", tenant_id=name, status="succeeded"),
        )
        for name in names
    ))


async def wait_all_terminal(
    provider: RestateProvider, workflow_id: str, n: int, within: float
) -> None:
    """Wait until every run of the workflow has completed (one SQL count per poll)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        rows = await provider.admin.query(
            "SELECT count(*) AS n FROM sys_invocation WHERE target_handler_name = 'run' "
            f"AND status = 'completed' AND target_service_key LIKE '{workflow_id}.%'"
        )
        if rows[0]["n"] >= n:
            return
        await asyncio.sleep(0.25)


async def statuses(
    provider: RestateProvider, ids: dict[str, str], concurrency: int = 32
) -> dict[str, ExecutionState]:
    """The state of each execution, read through the provider."""
    gate = asyncio.Semaphore(concurrency)

    async def one(execution_id: str) -> ExecutionState:
        async with gate:
            return (await provider.get_execution_status(execution_id)).state

    states = await asyncio.gather(*(one(i) for i in ids.values()))
    return dict(zip(ids, states, strict=True))


async def duplicate_runs(provider: RestateProvider, workflow_id: str) -> int:
    """Workflow keys with more than one `run` invocation (must be none)."""
    rows = await provider.admin.query(
        "SELECT target_service_key, count(*) AS n FROM sys_invocation "
        f"WHERE target_handler_name = 'run' AND target_service_key LIKE '{workflow_id}.%' "
        "GROUP BY target_service_key HAVING count(*) > 1"
    )
    return len(rows)


def step_counts(marks: Path) -> Counter[tuple[str, str]]:
    """How often each (execution name, step) really ran."""
    lines = marks.read_text().splitlines() if marks.exists() else []
    return Counter((name, step) for name, _, step in (line.partition(" ") for line in lines))


async def crash_scenario(
    fault: str,
    provider: RestateProvider,
    n: int,
    marks: Path,
    crash: Callable[[], None],
    recover: Callable[[], Awaitable[None]],
    within: float = 180.0,
) -> FaultReport:
    """n executions in flight (steps, timers, a pending callback), crash, recover, finish."""
    began = time.monotonic()
    workflow_id, ids, waiting = await start_mix(provider, n, marks)
    # crash once some executions are inside step two and others still before it
    deadline = time.monotonic() + 60
    while sum(1 for (_, s) in step_counts(marks) if s == "two") < max(1, n // 5):
        assert time.monotonic() < deadline, "the workload did not reach step two"
        await asyncio.sleep(0.05)
    before = await journaled_steps(provider, workflow_id)
    # a journaled step has already written its mark: what it writes after this is a re-run
    counts_before = step_counts(marks)
    probe = CallProbe(provider, workflow_id, list(ids.values()))
    probe.start()
    try:
        crash()
        await recover()
        await post_callbacks(provider, ids, waiting)
        await wait_all_terminal(provider, workflow_id, n, within)
    finally:
        await probe.stop()
    states = await statuses(provider, ids)
    counts = step_counts(marks)
    report = FaultReport(
        fault=fault,
        executions=n,
        completed=sum(1 for s in states.values() if s is ExecutionState.SUCCEEDED),
        duplicates=await duplicate_runs(provider, workflow_id),
        # a step journaled before the fault that ran again after it. (A step can also run
        # twice before the fault, when a leadership change on a cluster re-invoked it before
        # its result was journaled: that is "redone in flight", not a re-run.)
        rerun_steps=sum(counts[step] - counts_before[step] for step in before),
        redone_in_flight=sum(c - 1 for c in counts.values() if c > 1),
        slowest_call=probe.slowest,
        seconds=time.monotonic() - began,
        note=f"{len(before)} steps journaled before the crash; {probe.calls} probe calls, "
        f"{len(probe.errors)} failed",
    )
    report.probe_errors = probe.errors
    report.lost = n - report.completed
    report.redone_in_flight -= report.rerun_steps
    REPORTS.append(report)
    return report
