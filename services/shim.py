"""Adapts Go-style handlers to a Restate Workflow.

`run` executes one Landlord execution. It checks its workflow's catalog record (a run of a
workflow deleted meanwhile ends at once as `workflow_not_found`, before any handler step),
starts the run's durable deadline timer, runs the handler with the durable-step API
(whose every wait races that timer) and records the outcome. A shared handler beside it
takes the compute callback. Stop reasons are recorded by the provider (`LandlordControl`)
before it cancels, so a stop never waits for this deployment; a cancelled run reads its
reason back and ends with it, in its own journal and failure, where Restate's UI shows it.

What the journal of a run holds, in order: the attach to its workflow's record (the
check), the deadline timer `landlord.deadline` (when the spec has a timeout), the
handler's steps, sleeps and callback wait, and how it ended.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
import restate
from loguru import logger
from restate.exceptions import SdkInternalBaseException

from landlord_restate.restate.limits import MAX_MESSAGE, json_problem
from landlord_restate.restate.tracing import add_trace_ids
from landlord_restate.restate.wire import (
    COMPUTE_CALLBACK_HANDLER,
    COMPUTE_CALLBACK_PROMISE,
    DEADLINE_TIMER,
    HANDLERS_METADATA,
    OUTCOME_STATE,
    RUN_HANDLER,
    CatalogRecord,
    ExecutionEnvelope,
    Outcome,
    OutcomeError,
)
from landlord_restate.workflow.convert import format_go_duration, to_json
from services import tracing
from services.catalog import get as catalog_get
from services.context import (
    HandlerContext,
    ReplayQuietLogger,
    handler_error_from,
)
from services.control import stop_record
from services.errors import (
    CANCELLED,
    ExecutionTimedOut,
    HandlerError,
    checked,
    readable,
    status_code_for,
    terminal_failure,
)
from services.registry import HandlerFn

#: TerminalError metadata keys carrying Landlord's code (Restate's UI lists them)
_CODE_KEY, _CAUSE_KEY = "landlord.code", "landlord.cause"


def _split_go_result(result: Any) -> tuple[Any, Any]:
    """Go's `(output, error)` pair, or a plain output."""
    if isinstance(result, tuple) and len(result) == 2:
        return result[0], result[1]
    return result, None


def _as_handler_error(error: Any) -> HandlerError:
    """Go's returned `error`, whatever shape the handler gave it, as a checked HandlerError."""
    if isinstance(error, HandlerError):
        return checked(error)
    if isinstance(error, Mapping):
        return checked(HandlerError(
            error.get("code", "handler_error"),
            error.get("message", "handler returned an error"),
            error.get("cause", ""),
        ))
    if isinstance(error, BaseException):
        return HandlerError("handler_error", readable(error) or type(error).__name__)
    return HandlerError("handler_error", _safe_text(error))


def _safe_text(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"an unprintable {type(value).__name__}"


async def _call_handler(fn: HandlerFn, hctx: HandlerContext, value: Any) -> Any:
    """The handler's output; HandlerError when it failed or misbehaved for good.

    A real failure (an Exception) goes through for Restate to retry the invocation.
    """
    try:
        output, error = _split_go_result(await fn(hctx, value))
    except (restate.TerminalError, HandlerError, asyncio.CancelledError, GeneratorExit,
            SdkInternalBaseException):
        raise
    except BaseException as exc:
        failure = terminal_failure(exc, "the handler")
        if failure is None:
            raise  # a real failure: Restate retries the invocation
        raise failure from exc
    if error is not None:
        raise _as_handler_error(error)
    problem = json_problem(output)
    if problem is not None:
        raise HandlerError("invalid_output", f"the handler's output is not strict JSON: {problem}")
    return output


def build_workflow(
    service_name: str,
    handlers: Mapping[str, HandlerFn],
    *,
    retention: timedelta = timedelta(days=1),
) -> restate.Workflow:
    """One Restate Workflow service hosting `handlers` (Go name -> function)."""
    hosted = dict(handlers)
    workflow = restate.Workflow(
        service_name,
        description=f"Landlord workflows running the Go-style handlers "
                    f"{', '.join(sorted(hosted))}; each run is one Landlord execution",
        metadata={HANDLERS_METADATA: ",".join(sorted(hosted))},
        # only run's journal is the history; compute_callback keeps none
        journal_retention=timedelta(0),
    )

    @workflow.main(name=RUN_HANDLER, workflow_retention=retention, journal_retention=retention)
    async def run(ctx: restate.WorkflowContext, body: dict[str, Any]) -> Any:
        """One Landlord execution: the input is the execution envelope (workflow id,
        handler, the handler's input, tags, metadata, timeout); the output is the
        handler's output. A failure says Landlord's code first ("compute_failed: ...")."""
        try:
            envelope = ExecutionEnvelope.from_json(body)
        except Exception as exc:
            raise restate.TerminalError(f"malformed execution envelope: {exc}", 400) from exc
        log = ReplayQuietLogger(logger.bind(workflow_id=envelope.workflow_id,
                                            execution_id=ctx.request().id).patch(add_trace_ids))
        try:
            return await _execute(ctx, service_name, hosted, envelope, log)
        except ExecutionTimedOut as exc:
            log.info("execution timed out", state="timeout")
            raise _fail(ctx, HandlerError("timeout", exc.message), Outcome(
                state="timeout",
                error=OutcomeError(code="timeout", message="execution exceeded its timeout"),
            )) from exc
        except restate.TerminalError as exc:
            if exc.status_code != CANCELLED:
                raise
            raise await _stopped(ctx, log) from exc

    @workflow.handler(name=COMPUTE_CALLBACK_HANDLER)
    async def compute_callback(ctx: restate.WorkflowSharedContext, payload: dict[str, Any]) -> None:
        """Deliver Landlord's compute callback to the run; a second delivery changes
        nothing. Sent by `LandlordControl.deliver_callback`."""
        promise = ctx.promise(COMPUTE_CALLBACK_PROMISE, type_hint=dict)
        if await promise.peek() is None:
            await promise.resolve(payload)

    return workflow


async def _execute(
    ctx: restate.WorkflowContext,
    service_name: str,
    hosted: Mapping[str, HandlerFn],
    envelope: ExecutionEnvelope,
    log: ReplayQuietLogger,
) -> Any:
    """Check, arm the deadline, run the handler, record how it ended. A stop or the
    timeout propagates (as Restate's TerminalError 409, or ExecutionTimedOut)."""
    envelope = await _checked_against_catalog(ctx, service_name, envelope)
    fn = hosted.get(envelope.handler)
    if fn is None:
        raise _fail(ctx, HandlerError(
            "handler_not_found",
            f"service {service_name} does not host handler {envelope.handler!r}",
        ))
    deadline, timeout = None, ""
    if envelope.timeout > 0:
        duration = timedelta(microseconds=envelope.timeout // 1000)
        deadline, timeout = ctx.sleep(duration, name=DEADLINE_TIMER), format_go_duration(duration)
    hctx = HandlerContext(ctx, envelope, deadline, timeout)
    hctx.logger.info("execution running", state="running")
    try:
        with tracing.span("run", handler=envelope.handler, workflow_id=envelope.workflow_id,
                          execution_id=hctx.execution_id, execution_name=envelope.execution_name):
            output = await _call_handler(fn, hctx, envelope.input)
    except HandlerError as exc:
        hctx.logger.info("execution failed", state="failed", code=exc.code)
        hctx.settle_reuse()
        raise _fail(ctx, checked(exc)) from exc
    except ExecutionTimedOut:
        hctx.settle_reuse()
        raise
    except restate.TerminalError as exc:
        hctx.settle_reuse()
        if exc.status_code == CANCELLED:
            raise
        raise _fail(ctx, handler_error_from(exc, "terminal_error")) from exc
    hctx.settle_reuse()
    # a success's output is the run's Output entry (status reads it there); only
    # failures, stops and timeouts need an Outcome of their own
    hctx.logger.info("execution succeeded", state="succeeded")
    return output


async def _checked_against_catalog(
    ctx: restate.WorkflowContext, service_name: str, envelope: ExecutionEnvelope
) -> ExecutionEnvelope:
    """The envelope as the workflow's catalog record says to run it now; the run fails as
    `workflow_not_found` when the workflow was deleted or now lives on another service.

    Read before any handler step: a start that got past the provider's and the ingress's
    checks (another node's stale view, a raw ingress call, a service shared with workflows
    that still exist) never runs a step of a deleted workflow.
    """
    answer, why = await _catalog_record(ctx, envelope)
    record = None
    if answer is not None:
        try:
            record = CatalogRecord.from_json(answer)
            spec = record.workflow_spec()
        except Exception as exc:
            raise _fail(ctx, HandlerError(
                "invalid_catalog_record",
                f"the catalog record of workflow {envelope.workflow_id!r} cannot be read: "
                f"{readable(exc) or type(exc).__name__}",
            )) from exc
        if spec.workflow_id != envelope.workflow_id:
            record = None  # a record of another workflow: this one has none
    if record is None or (record.service and record.service != service_name):
        raise _fail(ctx, HandlerError(
            "workflow_not_found",
            f"workflow {envelope.workflow_id!r} "
            + ("does not exist (deleted?)" if record is None
               else f"now runs on service {record.service}, not {service_name}"),
            why,
        ))
    return attrs.evolve(
        envelope,
        handler=record.handler or envelope.handler,
        timeout=to_json(spec.timeout) if spec.timeout else envelope.timeout,
        retry_policy=spec.retry_policy,
    )


async def _catalog_record(
    ctx: restate.WorkflowContext, envelope: ExecutionEnvelope
) -> tuple[Any, str]:
    """The workflow's catalog record as JSON data, or None when it was deleted; and, for
    None, what said so (the failure's cause).

    With the record's invocation id (the provider sends it), an attach: Restate answers it
    from the completed invocation without a call through this deployment. Without it (a
    raw start), a call to the catalog's `get`.

    An attach answered "not found" is not yet proof: the record's invocation is started
    by a send from the catalog, which can reach its partition after this run's attach
    does (seen under load and when a node was lost). The catalog's `get` then decides:
    the workflow exists while the catalog still holds a record naming that same
    invocation; a delete clears the record, and a later create names another one.

    A stop arriving while this waits is this run's cancellation, not an answer about the
    record: it is told apart by waiting for completion first (only a cancellation of this
    run raises there), and only then reading the attach's own answer.
    """
    if not envelope.catalog_entry:
        got = await ctx.object_call(catalog_get, key=envelope.workflow_id, arg=None)
        return got, "the catalog has no record of it"
    attached = ctx.attach_invocation(envelope.catalog_entry, type_hint=dict)
    await restate.wait_completed(attached)  # a stop raises here, and propagates
    try:
        return await attached, ""
    except restate.TerminalError as exc:
        answered = f"{exc.status_code}: {exc.message}"
    # purged by a delete, killed by one before it completed, or not there yet: the catalog
    # says which (a cancellation of this run while asking raises, and propagates)
    stored = await ctx.object_call(catalog_get, key=envelope.workflow_id, arg=None)
    if isinstance(stored, dict) and stored.get("entry") == envelope.catalog_entry:
        return stored, ""
    return None, (f"its catalog record {envelope.catalog_entry} answered {answered}, and the "
                  "catalog holds " + ("another record" if stored else "none"))


async def _stopped(ctx: restate.WorkflowContext, log: ReplayQuietLogger) -> restate.TerminalError:
    """`run` was cancelled: by the provider's stop (which recorded why, first), or from
    outside Landlord. Record the outcome; answer the failure that ends `run` with the
    reason, so the run's own journal and failure say why it stopped."""
    reason, how = "cancelled (no reason recorded: not stopped through Landlord)", ""
    try:
        stop = await ctx.object_call(stop_record, key=ctx.request().id, arg=None)
    except restate.TerminalError:  # a second cancellation while asking: keep the default
        stop = None
    if isinstance(stop, dict) and stop.get("reason"):
        reason, how = str(stop["reason"]), str(stop.get("how", ""))
    log.info("execution stopped", state="stopped", reason=reason)
    return _fail(ctx, HandlerError("stopped", reason, f"stopped by {how or 'a cancellation'}"),
                 Outcome(state="stopped", reason=reason,
                         error=OutcomeError(code="stopped", message=reason)))


def _fail(
    ctx: restate.WorkflowContext, error: HandlerError, outcome: Outcome | None = None
) -> restate.TerminalError:
    """Record how the run ended; the caller raises the returned error to end `run` for
    good. Its message starts with Landlord's code, its status says whose mistake it was
    (4xx a caller's, 500 the work's) and its metadata carries the code and the cause, so
    Restate's UI shows them on the failure without opening the message."""
    recorded = outcome or Outcome(
        state="failed",
        error=OutcomeError(code=error.code, message=error.message, cause=error.cause),
    )
    ctx.set(OUTCOME_STATE, recorded.to_json())
    metadata = {_CODE_KEY: error.code}
    if error.cause:
        metadata[_CAUSE_KEY] = error.cause[:MAX_MESSAGE]
    return restate.TerminalError(f"{error.code}: {error.message}", status_code_for(error.code),
                                 metadata=metadata)
