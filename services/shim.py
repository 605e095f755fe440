"""Adapts Go-style handlers to a Restate Workflow.

`run` executes one Landlord execution: it reads its workflow's catalog record (a run of a
workflow deleted meanwhile ends at once as `workflow_not_found`, before any handler step),
arms the timeout, runs the handler with the durable-step API and records the outcome. A
shared handler beside it takes the compute callback; a delayed call to `expire` enforces
the timeout inside Restate, so it survives restarts. Stop reasons are kept by the provider
(`LandlordControl`), so a stop never waits for this deployment.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs
import restate
from restate.exceptions import SdkInternalBaseException

from landlord_restate.restate.limits import json_problem
from landlord_restate.restate.wire import (
    COMPUTE_CALLBACK_HANDLER,
    COMPUTE_CALLBACK_PROMISE,
    EXPIRE_HANDLER,
    EXPIRED_PROMISE,
    HANDLERS_METADATA,
    OUTCOME_STATE,
    RUN_HANDLER,
    CatalogRecord,
    ExecutionEnvelope,
    Outcome,
    OutcomeError,
)
from landlord_restate.workflow.convert import to_json
from services import tracing
from services.catalog import get as catalog_get
from services.context import (
    HandlerContext,
    ReplayQuietLogger,
    handler_error_from,
)
from services.errors import HandlerError, checked, readable, terminal_failure
from services.registry import HandlerFn

_CANCELLED = 409


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
        description=f"Landlord handlers: {', '.join(sorted(hosted))}",
        metadata={HANDLERS_METADATA: ",".join(sorted(hosted))},
        # only run's journal is the history; stop/expire/compute_callback keep none
        journal_retention=timedelta(0),
    )

    @workflow.main(name=RUN_HANDLER, workflow_retention=retention, journal_retention=retention)
    async def run(ctx: restate.WorkflowContext, body: dict[str, Any]) -> Any:
        try:
            envelope = ExecutionEnvelope.from_json(body)
        except Exception as exc:
            raise restate.TerminalError(f"malformed execution envelope: {exc}", 400) from exc
        # the envelope is the run's input, already in the journal (status reads it there)
        envelope = await _checked_against_catalog(ctx, service_name, envelope)
        fn = hosted.get(envelope.handler)
        if fn is None:
            error = HandlerError(
                "handler_not_found",
                f"service {service_name} does not host handler {envelope.handler!r}",
            )
            raise _fail(ctx, error)
        timer = None
        if envelope.timeout > 0:
            timer = ctx.workflow_send(
                expire,
                ctx.key(),
                arg=ctx.request().id,
                send_delay=timedelta(microseconds=envelope.timeout // 1000),
            )
        hctx = HandlerContext(ctx, envelope)
        hctx.logger.info("execution running", state="running")
        try:
            with tracing.span("run", handler=envelope.handler, workflow_id=envelope.workflow_id,
                              execution_id=hctx.execution_id,
                              execution_name=envelope.execution_name):
                output = await _call_handler(fn, hctx, envelope.input)
        except HandlerError as exc:
            hctx.logger.info("execution failed", state="failed", code=exc.code)
            await _disarm(timer)
            raise _fail(ctx, checked(exc)) from exc
        except restate.TerminalError as exc:
            if exc.status_code != _CANCELLED:
                await _disarm(timer)
                raise _fail(ctx, handler_error_from(exc, "terminal_error")) from exc
            if not await _record_cancellation(ctx, hctx.logger.bind(service=service_name)):
                await _disarm(timer)
            raise
        await _disarm(timer)
        # a success's output is the run's Output entry (status reads it there); only
        # failures, stops and timeouts need an Outcome of their own
        hctx.logger.info("execution succeeded", state="succeeded")
        return output

    @workflow.handler(name=EXPIRE_HANDLER)
    async def expire(ctx: restate.WorkflowSharedContext, invocation_id: str) -> None:
        """The timeout fired: mark it, then cancel `run`."""
        if await ctx.promise(EXPIRED_PROMISE, type_hint=bool).peek() is None:
            await ctx.promise(EXPIRED_PROMISE, type_hint=bool).resolve(True)
        ctx.cancel_invocation(invocation_id)

    @workflow.handler(name=COMPUTE_CALLBACK_HANDLER)
    async def compute_callback(ctx: restate.WorkflowSharedContext, payload: dict[str, Any]) -> None:
        """Deliver Landlord's compute callback; a second delivery changes nothing."""
        promise = ctx.promise(COMPUTE_CALLBACK_PROMISE, type_hint=dict)
        if await promise.peek() is None:
            await promise.resolve(payload)

    return workflow


async def _checked_against_catalog(
    ctx: restate.WorkflowContext, service_name: str, envelope: ExecutionEnvelope
) -> ExecutionEnvelope:
    """The envelope as the workflow's catalog record says to run it now; the run fails as
    `workflow_not_found` when the workflow was deleted or now lives on another service.

    Read through the catalog, in the journal, before any handler step: a start that got
    past the provider's and the ingress's checks (another node's stale view, a raw ingress
    call, a service shared with workflows that still exist) never runs a step of a deleted
    workflow.
    """
    answer = await _catalog_record(ctx, envelope)
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
            record = None  # an entry of another workflow: this one has none
    if record is None or (record.service and record.service != service_name):
        raise _fail(ctx, HandlerError(
            "workflow_not_found",
            f"workflow {envelope.workflow_id!r} "
            + ("does not exist (deleted?)" if record is None
               else f"now runs on service {record.service}, not {service_name}"),
        ))
    return attrs.evolve(
        envelope,
        handler=record.handler or envelope.handler,
        timeout=to_json(spec.timeout) if spec.timeout else envelope.timeout,
        retry_policy=spec.retry_policy,
    )


async def _catalog_record(ctx: restate.WorkflowContext, envelope: ExecutionEnvelope) -> Any:
    """The workflow's catalog record as JSON data, or None when it was deleted.

    With the entry's invocation id (the provider sends it), an attach: Restate answers it
    from the completed entry, or 404 once a delete purged it, without a call through this
    deployment. Without it (a raw start), a call to the catalog's `get`.
    """
    if not envelope.catalog_entry:
        return await ctx.object_call(catalog_get, key=envelope.workflow_id, arg=None)
    try:
        return await ctx.attach_invocation(envelope.catalog_entry, type_hint=dict)
    except restate.TerminalError:
        # purged by a delete (404), or killed by one before it completed (409): an entry
        # only ever ends in failure that way, so the workflow is gone
        return None


def _fail(ctx: restate.WorkflowContext, error: HandlerError) -> restate.TerminalError:
    """Record the failure; the caller raises the returned error to end `run` for good."""
    outcome = Outcome(
        state="failed",
        error=OutcomeError(code=error.code, message=error.message, cause=error.cause),
    )
    ctx.set(OUTCOME_STATE, outcome.to_json())
    return restate.TerminalError(f"{error.code}: {error.message}", 500)


async def _disarm(timer: restate.SendHandle | None) -> None:
    """Cancel the pending timeout call: a finished run leaves nothing scheduled behind it."""
    if timer is not None:
        await timer.cancel_invocation()


async def _record_cancellation(ctx: restate.WorkflowContext, log: ReplayQuietLogger) -> bool:
    """`run` was cancelled: by the timeout, by the provider's stop, or from outside.

    Answers whether it was the timeout (whose call then has already run). A stop's reason
    is the provider's record (status reads it there), not this deployment's.
    """
    timed_out = bool(await ctx.promise(EXPIRED_PROMISE, type_hint=bool).peek())
    if timed_out:
        outcome = Outcome(
            state="timeout",
            error=OutcomeError(code="timeout", message="execution exceeded its timeout"),
        )
    else:
        outcome = Outcome(
            state="stopped", reason="cancelled",
            error=OutcomeError(code="stopped", message="cancelled"),
        )
    ctx.set(OUTCOME_STATE, outcome.to_json())
    log.info("execution {}", outcome.state, state=outcome.state)
    return timed_out
