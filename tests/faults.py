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
from typing import Any, TypeVar

import attrs

from landlord_restate import (
    ComputeCallbackPayload,
    DeploymentInUseError,
    ExecutionInput,
    ExecutionState,
    ExecutionStatus,
    RestateProvider,
)
from landlord_restate.restate.naming import split_workflow_key
from landlord_restate.restate.status import build_history
from landlord_restate.testing import DeploymentProcess, LocalRestate
from tests.conftest import deployment_env, spec_for, unique_id

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
    #: what was wrong besides the counted columns (a wrong final state, a step after a stop)
    problems: list[str] = attrs.Factory(list)


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
    inputs = {f"x{i:04d}": mix_request(i, marks, step_seconds) for i in range(n)}
    results = await asyncio.gather(*(
        provider.start_execution(spec.workflow_id, ExecutionInput(execution_name=name, input=req))
        for name, req in inputs.items()
    ))
    ids = {name: r.execution_id for name, r in zip(inputs, results, strict=True)}
    waiting = [name for name, req in inputs.items() if req.get("callback")]
    return spec.workflow_id, ids, waiting


def mix_request(i: int, marks: Path, step_seconds: float = 0.5) -> dict[str, Any]:
    """The SoakMix input of the i-th execution of a mix: a timer, a callback, or neither."""
    request: dict[str, Any] = {"marks": str(marks), "step_seconds": step_seconds}
    if i % 3 == 0:
        request["sleep_ms"] = 1500
    elif i % 3 == 1:
        request["callback"] = True
    return request


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
    for name, execution_id in ids.items():
        if states[name] is not ExecutionState.SUCCEEDED:  # say how, for whoever reads it
            status = await provider.get_execution_status(execution_id)
            report.problems.append(f"{name} {execution_id}: {status.state.value} {status.error}")
    REPORTS.append(report)
    return report


# -- day two: an outage of the deployment, an upgrade of the handler code ----------------------

T = TypeVar("T")


class CallTimer:
    """Times each provider call made while a fault lasts: the slowest of each kind."""

    def __init__(self) -> None:
        self.slowest: dict[str, float] = {}
        self.calls = 0

    async def __call__(self, kind: str, call: Awaitable[T]) -> T:
        """Await `call`, recording how long it took under `kind`."""
        began = time.monotonic()
        try:
            return await call
        finally:
            took = time.monotonic() - began
            self.calls += 1
            self.slowest[kind] = max(self.slowest.get(kind, 0.0), took)

    @property
    def worst(self) -> float:
        """The slowest call of any kind."""
        return max(self.slowest.values(), default=0.0)

    def describe(self) -> str:
        """'start 0.01, stop 0.02, ...': the slowest call of each kind, in seconds."""
        return ", ".join(f"{kind} {took:.2f}" for kind, took in self.slowest.items())


async def until_step_two(marks: Path, n: int, within: float = 60.0) -> None:
    """Wait until a fifth of the executions (at least one) have begun step two."""
    deadline = time.monotonic() + within
    while sum(1 for (_, s) in step_counts(marks) if s == "two") < max(1, n // 5):
        assert time.monotonic() < deadline, "the workload did not reach step two"
        await asyncio.sleep(0.05)


async def run_states(provider: RestateProvider, workflow_id: str) -> dict[str, str]:
    """Restate's status of each run of the workflow, by execution name (one SQL query)."""
    rows = await provider.admin.query(
        "SELECT target_service_key AS key, status FROM sys_invocation "
        f"WHERE target_handler_name = 'run' AND target_service_key LIKE '{workflow_id}.%'"
    )
    return {split_workflow_key(row["key"])[1]: str(row["status"]) for row in rows}


async def full_statuses(
    provider: RestateProvider, ids: dict[str, str], concurrency: int = 32
) -> dict[str, ExecutionStatus]:
    """Each execution's whole status, read through the provider."""
    gate = asyncio.Semaphore(concurrency)

    async def one(execution_id: str) -> ExecutionStatus:
        async with gate:
            return await provider.get_execution_status(execution_id)

    found = await asyncio.gather(*(one(i) for i in ids.values()))
    return dict(zip(ids, found, strict=True))


def stopped_with(status: ExecutionStatus, reason: str) -> bool:
    """`status` is stopped, and says why with `reason`."""
    return (
        status.state is ExecutionState.STOPPED
        and status.error is not None
        and status.error.message == reason
    )


async def outage_scenario(
    fault: str,
    provider: RestateProvider,
    n: int,
    started_while_down: int,
    marks: Path,
    kill: Callable[[], Awaitable[None]],
    restart: Callable[[], Awaitable[None]],
    within: float = 180.0,
) -> FaultReport:
    """kill -9 of the deployment with n executions in flight; while it is down, starts,
    stops (with reasons) and callbacks through the provider; then the deployment back.

    The provider's `stop_grace` must be short (the outage lasts until every stop has
    killed its execution). Right final states: a stopped execution `stopped` with its
    reason and no step run after the stop; every other one succeeded.
    """
    began = time.monotonic()
    workflow_id, ids, waiting = await start_mix(provider, n, marks)
    await until_step_two(marks, n)
    await kill()
    down_since = time.monotonic()
    # the deployment is gone: what it journaled and marked is final until it returns
    journaled = await journaled_steps(provider, workflow_id)
    at_kill = step_counts(marks)
    in_flight_steps = {step for step, c in at_kill.items() if c and step not in journaled}
    open_runs = sorted(
        name for name, status in (await run_states(provider, workflow_id)).items()
        if status != "completed"
    )
    to_stop = open_runs[::4]
    reasons = {name: f"outage stop of {name}" for name in to_stop}
    new_inputs = {
        f"d{i:04d}": mix_request(i, marks) for i in range(started_while_down)
    }
    timer = CallTimer()
    probe = CallProbe(provider, workflow_id, list(ids.values()))
    probe.start()
    try:
        started = await asyncio.gather(*(
            timer("start", provider.start_execution(
                workflow_id, ExecutionInput(execution_name=name, input=request)
            ))
            for name, request in new_inputs.items()
        ))
        new_ids = {name: r.execution_id for name, r in zip(new_inputs, started, strict=True)}
        all_ids = ids | new_ids
        callback_to = [name for name in waiting if name not in reasons] + [
            name for name, request in new_inputs.items() if request.get("callback")
        ]
        await asyncio.gather(
            *(timer("stop", provider.stop_execution(ids[name], reason))
              for name, reason in reasons.items()),
            *(timer("callback", provider.post_compute_callback(
                all_ids[name],
                ComputeCallbackPayload(execution_id=f"c-{name}", tenant_id=name,
                                       status="succeeded"),
            )) for name in callback_to),
        )
        # the outage outlasts stop_grace: each stopped execution is killed while it is down
        deadline = time.monotonic() + 30
        for name, reason in reasons.items():
            while not stopped_with(
                await timer("status", provider.get_execution_status(ids[name])), reason
            ):
                assert time.monotonic() < deadline, f"{name} not stopped while down"
                await asyncio.sleep(0.1)
    finally:
        await probe.stop()
    down_for = time.monotonic() - down_since
    await restart()
    total = n + started_while_down
    await wait_all_terminal(provider, workflow_id, total, within)
    final = await full_statuses(provider, all_ids)
    counts = step_counts(marks)
    problems = []
    wrong = 0
    for name, status in final.items():
        if name in reasons:
            if not stopped_with(status, reasons[name]):
                wrong += 1
                problems.append(f"{name}: {status.state.value}, {status.error}, not stopped "
                                f"with {reasons[name]!r}")
        elif status.state is not ExecutionState.SUCCEEDED or status.output != {"name": name}:
            wrong += 1
            problems.append(f"{name}: {status.state.value} {status.output} {status.error}")
    after_stop = sum(
        c - at_kill[step] for step, c in counts.items() if step[0] in reasons
    )
    if after_stop:
        problems.append(f"{after_stop} steps ran after their execution was stopped")
    rerun = sum(counts[step] - at_kill[step] for step in journaled)
    report = FaultReport(
        fault=fault,
        executions=total,
        completed=total - wrong,
        duplicates=await duplicate_runs(provider, workflow_id) + sum(
            c - 1 for step, c in counts.items()
            if c > 1 and step not in in_flight_steps and step not in journaled
        ),
        rerun_steps=rerun,
        redone_in_flight=sum(counts[step] - 1 for step in in_flight_steps if counts[step] > 1),
        slowest_call=max(timer.worst, probe.slowest),
        seconds=time.monotonic() - began,
        note=(
            f"down {down_for:.1f}s: {started_while_down} started, {len(reasons)} stopped, "
            f"{len(callback_to)} callbacks; slowest {timer.describe()}, status/list "
            f"{probe.slowest:.2f} ({probe.calls} probe calls, {len(probe.errors)} failed); "
            f"{after_stop} steps after a stop; {len(journaled)} steps journaled at the kill"
        ),
        problems=problems,
    )
    report.probe_errors = probe.errors
    report.lost = total - report.completed
    REPORTS.append(report)
    return report


def assert_right_states(report: FaultReport) -> None:
    """`assert_clean`, and no execution in a wrong final state, no step after a stop."""
    assert report.problems == [], report
    assert_clean(report)


def versioned_request(i: int, marks: Path, sleep_ms: int) -> dict[str, Any]:
    """The Versioned input of the i-th execution: a third wait for the callback, the rest
    sleep `sleep_ms`."""
    if i % 3 == 1:
        return {"marks": str(marks), "callback": True}
    return {"marks": str(marks), "sleep_ms": sleep_ms}


async def upgrade_scenario(
    fault: str,
    local: LocalRestate,
    provider: RestateProvider,
    service_name: str,
    n: int,
    marks: Path,
    log_dir: Path,
    sleep_ms: int = 4000,
    within: float = 120.0,
) -> FaultReport:
    """n executions in flight on deployment A (code v1; timers, callbacks) while code v2 is
    registered at a new address B; new executions go to B; A is drained, removed and
    stopped. Every execution must finish on the code it started with, once."""
    began = time.monotonic()
    spec = spec_for("Versioned", unique_id("upgrade"))
    a_id = (await provider.create_workflow(spec)).resource_ids["deployment_id"]
    env = {
        **deployment_env(),
        "LANDLORD_TEST_CODE_VERSION": "v2",
        "LANDLORD_RESTATE_HANDLERS": "tests.handlers",
        "WORKFLOW_RESTATE_SERVICE_NAME": service_name,
    }
    timer = CallTimer()
    async with DeploymentProcess(log_dir / "deployment-b.log", env=env) as deployment_b:
        old = {f"a{i:04d}": versioned_request(i, marks, sleep_ms) for i in range(n)}
        started = await asyncio.gather(*(
            provider.start_execution(spec.workflow_id, ExecutionInput(execution_name=k, input=v))
            for k, v in old.items()
        ))
        ids = {name: r.execution_id for name, r in zip(old, started, strict=True)}
        # each has run step one on A: Restate has pinned it to A's code
        deadline = time.monotonic() + 60
        while sum(1 for (_, s) in step_counts(marks) if s == "one") < n:
            assert time.monotonic() < deadline, "not every execution ran step one on A"
            await asyncio.sleep(0.05)
        probe = CallProbe(provider, spec.workflow_id, list(ids.values()))
        probe.start()
        try:
            upgrade_config = attrs.evolve(provider.config, deployment_url=deployment_b.url)
            async with RestateProvider(upgrade_config) as upgrader:
                registered = await timer("create_workflow at B", upgrader.create_workflow(spec))
            b_id = registered.resource_ids["deployment_id"]
            assert b_id != a_id, registered
            listed = {d.deployment_id: d for d in await timer("list_deployments",
                                                              provider.list_deployments())}
            in_flight_at_upgrade = listed[a_id].in_flight
            assert listed[b_id].latest, listed
            assert not listed[a_id].latest, listed
            refused = 0
            try:
                await timer("remove_deployment", provider.remove_deployment(a_id))
            except DeploymentInUseError as exc:
                refused = exc.in_flight
            new = {
                f"b{i:04d}": versioned_request(i, marks, 200) for i in range(max(2, n // 3))
            }
            started = await asyncio.gather(*(
                timer("start", provider.start_execution(
                    spec.workflow_id, ExecutionInput(execution_name=k, input=v)
                ))
                for k, v in new.items()
            ))
            ids |= {name: r.execution_id for name, r in zip(new, started, strict=True)}
            await post_callbacks(provider, ids, [
                name for name, request in (old | new).items() if request.get("callback")
            ])
            # drained: nothing runs on A any more
            deadline = time.monotonic() + within
            while True:
                listed = {d.deployment_id: d for d in await timer(
                    "list_deployments", provider.list_deployments())}
                if a_id not in listed or listed[a_id].in_flight == 0:
                    break
                assert time.monotonic() < deadline, f"A never drained: {listed[a_id]}"
                await asyncio.sleep(0.25)
            drained_after = time.monotonic() - began
            await timer("remove_deployment", provider.remove_deployment(a_id))
            remaining = {d.deployment_id for d in await provider.list_deployments()}
            await asyncio.to_thread(local.deployment.stop)
            # with A gone, the workflow still starts, on B
            last = await timer("start", provider.start_execution(
                spec.workflow_id, ExecutionInput(execution_name="after-removal",
                                                 input={"marks": str(marks)}),
            ))
            ids["after-removal"] = last.execution_id
            await wait_all_terminal(provider, spec.workflow_id, len(ids), within)
        finally:
            await probe.stop()
        final = await full_statuses(provider, ids)
    problems = []
    if in_flight_at_upgrade < sum(1 for r in old.values() if r.get("callback")):
        problems.append(f"only {in_flight_at_upgrade} in flight on A at the upgrade")
    if refused == 0:
        problems.append("remove_deployment of A with executions in flight was not refused")
    if a_id in remaining:
        problems.append(f"A ({a_id}) still listed after remove_deployment")
    wrong = 0
    for name, status in final.items():
        code, on = ("v1", a_id) if name in old else ("v2", b_id)
        expected = {"code": code, "steps": [code, code], "name": name}
        if (status.state is not ExecutionState.SUCCEEDED or status.output != expected
                or status.metadata.get("deployment_id") != on):
            wrong += 1
            problems.append(f"{name}: {status.state.value} {status.output} on "
                            f"{status.metadata.get('deployment_id')}, expected {expected} on {on}")
    counts = step_counts(marks)
    report = FaultReport(
        fault=fault,
        executions=len(ids),
        completed=len(ids) - wrong,
        duplicates=await duplicate_runs(provider, spec.workflow_id)
        + sum(c - 1 for c in counts.values() if c > 1),
        slowest_call=max(timer.worst, probe.slowest),
        seconds=time.monotonic() - began,
        note=(
            f"{in_flight_at_upgrade} of {n} in flight on A at the upgrade (removal refused, "
            f"{refused} in flight); {len(ids) - n} started on B; A drained and removed at "
            f"{drained_after:.1f}s; slowest {timer.describe()}, status/list "
            f"{probe.slowest:.2f} ({probe.calls} probe calls, {len(probe.errors)} failed)"
        ),
        problems=problems,
    )
    report.probe_errors = probe.errors
    report.lost = len(ids) - report.completed
    REPORTS.append(report)
    return report
