"""The durable-step API a handler sees: named steps, durable sleep, the compute callback.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple, overload

import restate
from loguru import logger
from restate.aws_lambda import is_running_on_lambda
from restate.exceptions import SdkInternalBaseException
from restate.server_context import restate_context_is_replaying

from landlord_restate.restate.limits import MAX_LAMBDA_JOURNAL_BYTES, json_problem
from landlord_restate.restate.tracing import add_trace_ids
from landlord_restate.restate.wire import (
    COMPUTE_CALLBACK_PROMISE,
    REDRIVEN_CALLBACK_STEP,
    REUSED_STATE,
    ExecutionEnvelope,
    Reuse,
)
from services import tracing
from services.errors import CANCELLED, ExecutionTimedOut, HandlerError, terminal_failure

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")
Ts = TypeVarTuple("Ts")

# HandlerError crosses a journaled step as a TerminalError carrying these metadata keys
_CODE = "landlord.code"
_CAUSE = "landlord.cause"


class ReplayQuietLogger:
    """A loguru logger that says nothing while Restate replays a journal.

    On replay the handler re-executes code whose log lines were already written once.
    Each level is a method of its own, typed as loguru's; `bind` keeps the quiet.
    """

    def __init__(self, bound: Logger) -> None:
        self._logger = bound

    def _quiet(self) -> bool:
        return bool(restate_context_is_replaying.get())

    def bind(self, **fields: Any) -> ReplayQuietLogger:
        """A quiet logger with more structured fields."""
        return ReplayQuietLogger(self._logger.bind(**fields))

    def trace(self, message: str, *args: Any, **kwargs: Any) -> None:
        """TRACE, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).trace(message, *args, **kwargs)

    def debug(self, message: str, *args: Any, **kwargs: Any) -> None:
        """DEBUG, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).debug(message, *args, **kwargs)

    def info(self, message: str, *args: Any, **kwargs: Any) -> None:
        """INFO, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).info(message, *args, **kwargs)

    def success(self, message: str, *args: Any, **kwargs: Any) -> None:
        """SUCCESS, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).success(message, *args, **kwargs)

    def warning(self, message: str, *args: Any, **kwargs: Any) -> None:
        """WARNING, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).warning(message, *args, **kwargs)

    def error(self, message: str, *args: Any, **kwargs: Any) -> None:
        """ERROR, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).error(message, *args, **kwargs)

    def critical(self, message: str, *args: Any, **kwargs: Any) -> None:
        """CRITICAL, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).critical(message, *args, **kwargs)

    def exception(self, message: str, *args: Any, **kwargs: Any) -> None:
        """ERROR with the current exception, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1, exception=True).error(message, *args, **kwargs)

    def log(self, level: int | str, message: str, *args: Any, **kwargs: Any) -> None:
        """Any level, unless replaying."""
        if not self._quiet():
            self._logger.opt(depth=1).log(level, message, *args, **kwargs)


def _retry_options(envelope: ExecutionEnvelope) -> restate.RunOptions[Any]:
    """Landlord's RetryPolicy as Restate run retry options (zero values: Restate's default)."""
    policy = envelope.retry_policy
    if policy is None:
        return restate.RunOptions()
    return restate.RunOptions(
        max_attempts=policy.max_attempts or None,
        initial_retry_interval=policy.initial_interval or None,
        max_retry_interval=policy.max_interval or None,
        retry_interval_factor=policy.backoff_rate or None,
    )


def _terminal(error: HandlerError) -> restate.TerminalError:
    return restate.TerminalError(
        error.message, status_code=500, metadata={_CODE: error.code, _CAUSE: error.cause}
    )


def _step_failure(name: str, exc: BaseException) -> BaseException:
    """What a step's exception becomes: retried by the spec's RetryPolicy (a real failure)
    or terminal (see `terminal_failure`), never reaching the process that serves every
    other execution."""
    failure = terminal_failure(exc, f"step {name}")
    return exc if failure is None else _terminal(failure)


def _step_output(name: str, result: Any) -> Any:
    """A step's result, if it is strict JSON; else the execution fails (a retry cannot help)."""
    problem = json_problem(result)
    if problem is not None:
        raise _terminal(HandlerError(
            "invalid_step_output", f"step {name} returned what is not strict JSON: {problem}"
        ))
    return result


class _JournalBudget:
    """What a run on AWS Lambda may still journal: each invocation carries the whole
    journal (input and every step result) in Lambda's 6 MB request, so a run whose journal
    outgrows it could never be invoked again and would retry until its timeout. A step
    whose result would not fit fails the run at once instead (`payload_too_large`)."""

    def __init__(self, envelope: ExecutionEnvelope) -> None:
        self._used = _json_bytes(envelope.to_json())

    def admit(self, name: str, result: Any) -> None:
        """Raise a terminal `payload_too_large` if journaling `result` would not fit."""
        size = _json_bytes(result)
        if self._used + size > MAX_LAMBDA_JOURNAL_BYTES:
            raise _terminal(HandlerError(
                "payload_too_large",
                f"step {name} returned {size} bytes; with the {self._used} bytes the run has "
                f"journaled that is over the {MAX_LAMBDA_JOURNAL_BYTES} bytes a run's journal "
                "may hold on AWS Lambda (each invocation carries it in a 6 MB request): "
                "keep large data outside the journal (store it, journal a reference)",
            ))

    def add(self, result: Any) -> None:
        """Count a journaled result (a new one, or one a replay answered)."""
        self._used += _json_bytes(result)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), default=str))


def handler_error_from(error: restate.TerminalError, default_code: str) -> HandlerError:
    """Recover the HandlerError a step raised, or describe a Restate terminal failure."""
    metadata = error.metadata or {}
    return HandlerError(
        metadata.get(_CODE, default_code), error.message, metadata.get(_CAUSE, "")
    )


class HandlerContext:
    """What a Go-style handler gets instead of Restate's WorkflowContext."""

    def __init__(
        self,
        ctx: restate.WorkflowContext,
        envelope: ExecutionEnvelope,
        deadline: restate.RestateDurableFuture[None] | None = None,
        timeout: str = "",
    ) -> None:
        self._ctx = ctx
        #: the run's durable deadline timer (None: no timeout), raced by every wait below
        self._deadline = deadline
        self._timeout = timeout
        #: on Lambda only, what the run's journal may still hold
        self._budget = _JournalBudget(envelope) if is_running_on_lambda() else None
        self._run_options = _retry_options(envelope)
        self.execution_id: str = ctx.request().id
        self.workflow_id: str = envelope.workflow_id
        self.execution_name: str = envelope.execution_name
        #: the ids every handler span carries
        self._ids = {"workflow_id": self.workflow_id, "execution_id": self.execution_id,
                     "execution_name": self.execution_name}
        self.logger = ReplayQuietLogger(
            logger.bind(workflow_id=self.workflow_id, execution_id=self.execution_id)
            .patch(add_trace_ids)
        )
        #: a redrive's plan: what the original completed, consumed in order while the
        #: handler's steps match it (the plan is in the run's input, so replay agrees)
        self._reuse = list(envelope.redrive)
        #: the steps this run answered from the plan instead of running them, in order
        self._reused_steps: list[str] = []
        #: whether that list is recorded (or there was no plan to record)
        self._reuse_settled = not self._reuse

    def _reused(self, kind: str, name: str) -> Reuse | None:
        """The plan's next entry if it is this `kind` and `name`; at the first mismatch
        the plan is dropped and everything from there runs for real."""
        if not self._reuse:
            return None
        head = self._reuse[0]
        if head.kind == kind and head.name == name:
            taken = self._reuse.pop(0)
            if kind != "sleep":
                self._reused_steps.append(name or REDRIVEN_CALLBACK_STEP)
            if not self._reuse:
                self.settle_reuse()
            return taken
        self.logger.info("redrive: reuse ends at {} {!r} (the original had {} {!r})",
                         kind, name, head.kind, head.name)
        self._reuse.clear()
        self.settle_reuse()
        return None

    def settle_reuse(self) -> None:
        """Record, once, which steps this redrive answered from its original without
        running them: status marks exactly those as reused (a step that ran again under a
        name the plan also had is not). Called when the plan runs out or stops matching,
        and by the shim when the run ends with plan left over."""
        if self._reuse_settled:
            return
        self._reuse_settled = True
        self._reuse.clear()
        self._ctx.set(REUSED_STATE, list(self._reused_steps))

    async def _within_deadline(self, future: restate.RestateDurableFuture[T]) -> T:
        """`future`'s result, unless the run's deadline timer fires first: then (and at
        every wait after) ExecutionTimedOut. A stop (Restate's cancellation) raises its
        TerminalError here as at any await. Journals nothing: which of the two completed
        is in the journal's order, so a replay decides the same."""
        if self._deadline is None:
            return await future
        done, _ = await restate.wait_completed(future, self._deadline)
        if future not in done:
            raise ExecutionTimedOut(self._timeout)
        return await future

    @property
    def restate(self) -> restate.WorkflowContext:
        """Restate's own context, for what this API does not cover."""
        return self._ctx

    @overload
    async def step(
        self, name: str, fn: Callable[[*Ts], Coroutine[Any, Any, T]], *args: *Ts
    ) -> T: ...

    @overload
    async def step(self, name: str, fn: Callable[[*Ts], T], *args: *Ts) -> T: ...

    async def step(self, name: str, fn: Callable[[*Ts], Any], *args: *Ts) -> Any:
        """Run `fn(*args)` once, journal its result under `name`; a replay returns it.

        Typed for mypy: the result is what `fn` returns (awaited, for an async `fn`), and
        `args` must be what `fn` takes.

        `fn` may be sync (run in a thread) or async. It is retried by the spec's
        RetryPolicy; raising HandlerError fails the execution at once. In a redrive, a
        step the original completed answers its result without running.
        """
        reused = self._reused("step", name)
        if reused is not None:
            with tracing.span(f"step {name} (reused)", step=name, **self._ids):
                value = await self._ctx.run_typed(name, _answer, self._run_options, reused.value)
            self._count(value)
            return value
        if inspect.iscoroutinefunction(fn):

            async def action_async() -> Any:
                try:
                    result = await fn(*args)
                except (asyncio.CancelledError, GeneratorExit, SdkInternalBaseException):
                    raise  # Restate's and asyncio's control flow, not the step's failure
                except BaseException as exc:
                    raise _step_failure(name, exc) from exc
                return self._checked_output(name, result)

            action: Callable[[], Any] = action_async
        else:

            def action_sync() -> Any:
                try:
                    result = fn(*args)
                except BaseException as exc:
                    raise _step_failure(name, exc) from exc
                return self._checked_output(name, result)

            action = action_sync
        try:
            with tracing.span(f"step {name}", step=name, **self._ids):
                result = await self._within_deadline(
                    self._ctx.run_typed(name, action, self._run_options))
        except ExecutionTimedOut:
            raise
        except restate.TerminalError as exc:
            if exc.status_code == CANCELLED:  # stopped: not this step's failure
                raise
            raise handler_error_from(exc, "step_failed") from exc
        self._count(result)
        return result

    def _count(self, journaled: Any) -> None:
        """On Lambda, count what the journal now holds."""
        if self._budget is not None:
            self._budget.add(journaled)

    def _checked_output(self, name: str, result: Any) -> Any:
        """A new step result, checked before it is journaled: strict JSON, and on Lambda
        within what the run's journal may still hold."""
        output = _step_output(name, result)
        if self._budget is not None:
            self._budget.admit(name, output)
        return output

    async def sleep(self, duration: timedelta, name: str | None = None) -> None:
        """A durable timer: survives restarts of the server and of this deployment. In a
        redrive, a sleep the original completed is not slept again."""
        if self._reused("sleep", name or "") is not None:
            # journaled, but not slept: a redrive of this redrive finds the sleep done too
            await self._ctx.sleep(timedelta(0), name=name)
            return
        with tracing.span(f"sleep {name or ''}".rstrip(), **self._ids):
            await self._within_deadline(self._ctx.sleep(duration, name=name))

    async def compute_callback(self) -> dict[str, Any]:
        """Wait for Landlord's compute callback (`post_compute_callback`); returns its payload.
        In a redrive, the callback the original received is answered again, not awaited."""
        reused = self._reused("callback", "")
        if reused is not None:
            received = reused.value if isinstance(reused.value, dict) else {}
            payload: dict[str, Any] = await self._ctx.run_typed(
                REDRIVEN_CALLBACK_STEP, _answer, restate.RunOptions(), received)
        else:
            promise = self._ctx.promise(COMPUTE_CALLBACK_PROMISE, type_hint=dict)
            with tracing.span("compute callback wait", **self._ids):
                payload = await self._within_deadline(promise.value())
        self._count(payload)
        return payload


async def _answer(value: Any) -> Any:
    """A reused step's journaled result: async, so the SDK runs it on the event loop rather
    than hopping to a worker thread for a value already at hand."""
    return value
