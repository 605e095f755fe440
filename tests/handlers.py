"""Handlers the test deployments host (LANDLORD_RESTATE_HANDLERS=tests.handlers).

Side effects go to files named in the input, so a test can count how often a step really
ran, across restarts of the server and of the deployment.
"""

from __future__ import annotations

import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from services import HandlerContext, HandlerError, handler


def _mark(path: str | None, line: str) -> None:
    if path:
        with Path(path).open("a") as out:
            out.write(line + "\n")


@handler("FiveSteps")
async def five_steps(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Five named steps, each appending to request['marks'] when it really runs."""
    done = []
    for i in range(1, 6):
        name = f"step-{i}"

        def work(step: str = name) -> str:
            _mark(request.get("marks"), step)
            return step

        done.append(await ctx.step(name, work))
    return {"steps": done}


@handler("FailWithCode")
async def fail_with_code(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Fails terminally with the code and message it is given."""
    await ctx.step("before-failure", lambda: "ok")
    raise HandlerError(request["code"], request["message"], request.get("cause", ""))


@handler("GoPair")
async def go_pair(ctx: HandlerContext, request: dict[str, Any]) -> tuple[Any, Any]:
    """Returns Go's (output, error) pair."""
    if request.get("error"):
        return None, {"code": "go_error", "message": request["error"]}
    return {"echo": request.get("value")}, None


@handler("SlowSteps")
async def slow_steps(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Steps that each take `step_seconds` and mark start and end; for stop and crash tests."""
    seconds = float(request.get("step_seconds", 1.0))
    count = int(request.get("steps", 3))

    async def work(step: str) -> str:
        _mark(request.get("marks"), f"start {step}")
        await asyncio.sleep(seconds)
        _mark(request.get("marks"), f"end {step}")
        return step

    for i in range(1, count + 1):
        await ctx.step(f"slow-{i}", work, f"slow-{i}")
    return {"steps": count}


@handler("SleepThenCallback")
async def sleep_then_callback(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """A durable timer, then waits for Landlord's compute callback."""
    await ctx.step("provision-compute", lambda: {"requested": True})
    await ctx.sleep(timedelta(milliseconds=int(request.get("sleep_ms", 100))), name="settle")
    callback = await ctx.compute_callback()
    if callback.get("status") != "succeeded":
        raise HandlerError("compute_failed", str(callback.get("error_message", "")))
    return {"compute": callback}


@handler("Flaky")
async def flaky(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """A step that raises until its attempt count reaches request['succeed_on']."""
    marks = request["marks"]

    def attempt() -> int:
        _mark(marks, f"attempt {time.monotonic()}")
        attempts = len(Path(marks).read_text().splitlines())
        if attempts < int(request.get("succeed_on", 10**9)):
            raise RuntimeError(f"transient failure {attempts}")
        return attempts

    return {"attempts": await ctx.step("flaky-step", attempt)}


@handler("WhoAmI")
async def who_am_i(ctx: HandlerContext, request: Any) -> dict[str, Any]:
    """Answers what the context says is running."""
    ctx.logger.info("who am i", request=request)
    return {
        "workflow_id": ctx.workflow_id,
        "execution_id": ctx.execution_id,
        "execution_name": ctx.execution_name,
    }


@handler("SoakMix")
async def soak_mix(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Three steps with a timer or a compute callback between: the fault suite's workload.

    Each step appends '<execution name> <step>' to request['marks'] when it really runs.
    """
    marks = request["marks"]
    me = ctx.execution_name

    async def step(name: str) -> str:
        _mark(marks, f"{me} {name}")
        if name == "two":
            await asyncio.sleep(float(request.get("step_seconds", 0.5)))
        return name

    await ctx.step("one", step, "one")
    if request.get("sleep_ms"):
        await ctx.sleep(timedelta(milliseconds=int(request["sleep_ms"])), name="pause")
    if request.get("callback"):
        await ctx.compute_callback()
    await ctx.step("two", step, "two")
    await ctx.step("three", step, "three")
    return {"name": me}


@handler("ThreeSteps")
async def three_steps(ctx: HandlerContext, request: Any) -> dict[str, Any]:
    """Three trivial journaled steps: the benchmark's shim workload."""

    def work(name: str) -> str:
        return name

    return {"steps": [await ctx.step(f"step-{i}", work, f"step-{i}") for i in (1, 2, 3)]}


@handler("Noop")
async def noop(ctx: HandlerContext, request: Any) -> Any:
    """Returns its input: the start benchmark's workload."""
    return request


class _Unprintable(Exception):
    """An exception whose message cannot be read: str() and repr() raise."""

    def __str__(self) -> str:
        raise RuntimeError("str() of this exception raises")

    def __repr__(self) -> str:
        raise RuntimeError("repr() of this exception raises")


class _CustomBase(BaseException):
    """A BaseException of the handler's own, neither Exception nor cancellation."""


_BASE_EXCEPTIONS: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt, "custom": _CustomBase,
}


@handler("Misbehaves")
async def misbehaves(ctx: HandlerContext, request: dict[str, Any]) -> Any:
    """Does what `request["bug"]` names: the ways a buggy handler can go wrong."""
    bug = request["bug"]
    if bug.startswith("raise "):  # raise SystemExit / KeyboardInterrupt / custom
        raise _BASE_EXCEPTIONS[bug.removeprefix("raise ")]()
    if bug.startswith("step raises "):  # the same from a sync step, in a worker thread
        kind = _BASE_EXCEPTIONS[bug.removeprefix("step raises ")]

        def crash() -> None:
            raise kind()

        return await ctx.step("crash", crash)
    if bug == "set output":
        return {"a", "set"}
    if bug == "nan output":
        return {"value": float("nan")}
    if bug == "int keys output":
        return {1: "a"}
    if bug == "step nan output":
        return await ctx.step("nan", lambda: float("inf"))
    if bug == "error with int code":
        raise HandlerError(7, "code is a number")  # type: ignore[arg-type]
    if bug == "huge error":
        raise HandlerError("huge", "x" * (40 * 1024 * 1024))
    if bug == "unprintable":
        raise _Unprintable()
    if bug == "step unprintable":

        def unprintable() -> None:
            raise _Unprintable()

        return await ctx.step("unprintable", unprintable)
    return {"ok": True}


@handler("Fixable")
async def fixable(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Steps one to four, each marking when it really runs; step three fails terminally
    while the file request['broken'] exists (an operator "fixes" it by deleting the file).
    With request['sleep_ms'], a durable sleep between steps two and three."""
    marks, broken = request["marks"], request.get("broken", "")

    def work(name: str) -> str:
        _mark(marks, name)
        if name == "three" and broken and Path(broken).exists():
            raise HandlerError("dependency_down", "step three's dependency is down")
        return f"{name}-done"

    done = [await ctx.step("one", work, "one"), await ctx.step("two", work, "two")]
    if request.get("sleep_ms"):
        await ctx.sleep(timedelta(milliseconds=int(request["sleep_ms"])), name="settle")
    if request.get("callback"):
        done.append(str((await ctx.compute_callback()).get("status")))
    done += [await ctx.step("three", work, "three"), await ctx.step("four", work, "four")]
    return {"done": done}


#: which code a deployment runs: set differently on a second deployment for upgrade tests
CODE_VERSION_ENV = "LANDLORD_TEST_CODE_VERSION"


@handler("Versioned")
async def versioned(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Step one, a timer (request['sleep_ms']) or the compute callback (request['callback']),
    step two; each step marks '<execution name> <step>' and returns the code version of
    the process that ran it, and the output names the version that finished the run."""
    marks = request.get("marks")
    me = ctx.execution_name

    def step(name: str) -> str:
        _mark(marks, f"{me} {name}")
        return os.environ.get(CODE_VERSION_ENV, "v1")

    first = await ctx.step("one", step, "one")
    if request.get("sleep_ms"):
        await ctx.sleep(timedelta(milliseconds=int(request["sleep_ms"])), name="pause")
    if request.get("callback"):
        await ctx.compute_callback()
    second = await ctx.step("two", step, "two")
    return {"code": os.environ.get(CODE_VERSION_ENV, "v1"), "steps": [first, second],
            "name": me}


@handler("NotDeterministic")
async def not_deterministic(ctx: HandlerContext, request: Any) -> dict[str, Any]:
    """Names its steps after the clock: each replay sees other names than its journal (the
    bug `LocalRestate(always_replay=True)` exists to catch)."""
    first = await ctx.step(f"at-{time.time_ns()}", lambda: 1)
    second = await ctx.step(f"at-{time.time_ns()}", lambda: 2)
    return {"sum": first + second}


@handler("Chain")
async def chain(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Steps one and two, a durable sleep, steps three to five; each marks when it really
    runs, and step N fails terminally while the file request['broken'] + '-N' exists (an
    operator fixes it by deleting the file): a redrive chain's workload."""
    marks, broken = request["marks"], request.get("broken", "")

    def work(name: str) -> str:
        _mark(marks, name)
        if broken and Path(f"{broken}-{name}").exists():
            raise HandlerError("dependency_down", f"step {name}'s dependency is down")
        return f"{name}-done"

    done = [await ctx.step("one", work, "one"), await ctx.step("two", work, "two")]
    await ctx.sleep(timedelta(milliseconds=int(request.get("sleep_ms", 50))), name="settle")
    for name in ("three", "four", "five"):
        done.append(await ctx.step(name, work, name))
    return {"done": done}


@handler("IgnoresCancel")
async def ignores_cancel(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """A handler whose cancellation never completes: it takes the cancel and sleeps on."""
    try:
        await ctx.sleep(timedelta(seconds=float(request.get("sleep_s", 60))), name="first")
    except HandlerError:
        raise
    except Exception:  # the cancellation, as a TerminalError: ignored on purpose
        await ctx.sleep(timedelta(seconds=float(request.get("sleep_s", 60))), name="again")
    return {"ended": "normally"}
