"""From what Restate holds of an execution to Landlord's ExecutionStatus: pure functions.

`sys_invocation` says where Restate is (status, times, retries); `sys_journal` is the
history, each entry stamped by Restate when it was appended; what the shim and the provider
recorded (`records`) says how it ended and why. `reading` gathers all of it in one read;
`build_status` builds the status from that, and `build_summary` a list line from a row.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from landlord_restate.restate.naming import split_workflow_key
from landlord_restate.restate.records import (
    ExecutionRecord,
    entry_json,
    read_outcome,
    row_time,
    unexpected,
)
from landlord_restate.restate.vocabulary import (
    CANCEL_SIGNAL_INDEX,
    NOT_STARTED,
    RETRYING,
    CompletionResult,
    EntryType,
    InvocationStatus,
)
from landlord_restate.restate.wire import (
    DEADLINE_TIMER,
    ENVELOPE_STATE,
    OUTCOME_STATE,
    PROVIDER_METADATA_KEYS,
    PROVIDER_TYPE,
    REDRIVEN_CALLBACK_STEP,
    REUSED_STATE,
    STOP_STATE,
    Outcome,
    OutcomeError,
)
from landlord_restate.workflow.types import (
    ExecutionError,
    ExecutionEvent,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
)

#: sys_invocation.status (not completed) -> (state, Landlord's sub-state)
_LIVE_STATES: dict[str, tuple[ExecutionState, str]] = {
    **dict.fromkeys(NOT_STARTED, (ExecutionState.PENDING, "waiting")),
    InvocationStatus.RUNNING: (ExecutionState.RUNNING, "running"),
    InvocationStatus.SUSPENDED: (ExecutionState.RUNNING, "waiting"),
    InvocationStatus.BACKING_OFF: (ExecutionState.RUNNING, "backing-off"),
    InvocationStatus.PAUSED: (ExecutionState.RUNNING, "error"),
}
_OUTCOME_STATES = {
    "failed": ExecutionState.FAILED,
    "stopped": ExecutionState.STOPPED,
    "timeout": ExecutionState.TIMEOUT,
}
#: the terminal history event of each terminal state
_TERMINAL_EVENTS = {
    ExecutionState.SUCCEEDED: "execution_succeeded",
    ExecutionState.FAILED: "execution_failed",
    ExecutionState.STOPPED: "execution_stopped",
    ExecutionState.TIMEOUT: "execution_timed_out",
}
_CANCELLED_PREFIX = "[409]"
#: how Restate records a killed invocation's failure (a stop reason may say "killed" too)
_KILLED = "[409] killed"


def _awaiting(history: Sequence[ExecutionEvent]) -> bool:
    """The last event started a timer or a callback wait that has not completed yet."""
    return bool(history) and history[-1].type in ("timer_started", "callback_waiting")


def live_state(status: str) -> tuple[ExecutionState, str]:
    """(state, sub-state) of a Restate status other than `completed`."""
    live = _LIVE_STATES.get(status)
    if live is None:
        raise unexpected(f"unknown invocation status {status!r}", {"status": status})
    return live


def map_state(
    invocation: Mapping[str, Any], outcome: Outcome | None
) -> tuple[ExecutionState, str]:
    """Restate status -> (ExecutionState, sub-state).

    `completed` is read through `completion_result`: success only when Restate says so,
    and a failure is told apart (failed, stopped, timeout) by what the shim recorded.
    """
    status = invocation.get("status")
    if status != InvocationStatus.COMPLETED:
        live = _LIVE_STATES.get(str(status))
        if live is None:
            raise unexpected(f"unknown invocation status {status!r}", invocation)
        return live
    result = invocation.get("completion_result")
    if result == CompletionResult.SUCCESS:
        return ExecutionState.SUCCEEDED, "succeeded"
    if result != CompletionResult.FAILURE:
        raise unexpected(f"unknown completion_result {result!r}", invocation)
    recorded = _OUTCOME_STATES.get(outcome.state) if outcome is not None else None
    if recorded is not None:
        return recorded, "failed"
    if str(invocation.get("completion_failure", "")).startswith(_CANCELLED_PREFIX):
        return ExecutionState.STOPPED, "failed"
    return ExecutionState.FAILED, "failed"


def _count(value: Any, row: Mapping[str, Any]) -> int:
    """A count column (None is zero); UnexpectedRow for anything but an integer."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise unexpected(f"a count, not {value!r}", row)
    return int(value)


#: "[500 Internal] RuntimeError('x')": Restate's status prefix on a failure's first line
_FAILURE_PREFIX = re.compile(r"^\[[^\]]*\]\s*")


def _retrying_error(invocation: Mapping[str, Any]) -> ExecutionError | None:
    """While Restate retries (or has paused) a failing step: the last failure, readably.

    The code is Restate's (`RT0007`, ...), the message the exception as its traceback's last
    line says it ("RuntimeError: boom"), never the traceback; the cause names the step.
    """
    failure = str(invocation.get("last_failure") or "")
    if invocation.get("status") not in RETRYING or not failure:
        return None
    lines = [line for line in failure.splitlines() if line.strip()]
    message = _FAILURE_PREFIX.sub("", lines[0]) if lines else failure
    if len(lines) > 1 and lines[1].startswith("Traceback"):
        message = lines[-1].strip()
    step = str(invocation.get("last_failure_related_command_name") or "")
    code = str(invocation.get("last_failure_error_code") or "")
    return ExecutionError(
        code=code or "retrying",
        message=message,
        cause=f"step {step}" if step else "",
        failed_at=row_time(invocation.get("modified_at")),
    )


def _error(
    state: ExecutionState,
    invocation: Mapping[str, Any],
    outcome: Outcome | None,
    failed_at: datetime | None,
) -> ExecutionError | None:
    if state is ExecutionState.RUNNING:
        return _retrying_error(invocation)
    if state in (ExecutionState.SUCCEEDED, ExecutionState.PENDING):
        return None
    if outcome is not None and outcome.error is not None:
        recorded = outcome.error
        return ExecutionError(
            code=recorded.code, message=recorded.message, cause=recorded.cause,
            failed_at=failed_at,
        )
    failure = str(invocation.get("completion_failure", ""))
    return ExecutionError(
        code="stopped" if state is ExecutionState.STOPPED else "restate_failure",
        message=failure or "execution failed",
        failed_at=failed_at,
    )


def build_history(
    journal: Sequence[Mapping[str, Any]],
    state: ExecutionState,
    outcome: Outcome | None,
    stop_time: datetime | None,
    reused: Sequence[str] = (),
) -> list[ExecutionEvent]:
    """One event per journal entry that matters, in journal order, then the terminal event.

    `reused`: the steps a redrive answered from its original's journal, in order; their
    events say `reused: true` (the step did not run).
    """
    events: list[ExecutionEvent] = []
    names: dict[int, tuple[str, str]] = {}  # completion id -> (kind, name)
    for row in journal:
        at = row_time(row.get("appended_at"))
        if at is None:
            continue
        event = _journal_event(row, names)
        if event is not None:
            kind, details = event
            events.append(ExecutionEvent(timestamp=at, type=kind, details=details))
    _mark_reused(events, reused)
    terminal = _TERMINAL_EVENTS.get(state)
    if terminal is not None and stop_time is not None:
        ending: dict[str, Any] = {}
        if outcome is not None and outcome.reason:
            ending["reason"] = outcome.reason
        if outcome is not None and outcome.error is not None:
            ending["error"] = {"code": outcome.error.code, "message": outcome.error.message,
                               "cause": outcome.error.cause}
        events.append(ExecutionEvent(timestamp=stop_time, type=terminal, details=ending))
    return events


def _mark_reused(events: list[ExecutionEvent], reused: Sequence[str]) -> None:
    """Mark the first steps, as long as they follow `reused` in order, as reused."""
    pending = list(reused)
    for i, event in enumerate(events):
        if not pending or event.type not in ("step_started", "step_completed"):
            continue
        if event.details.get("step") != pending[0]:
            return
        events[i] = attrs.evolve(event, details={**event.details, "reused": True})
        if event.type == "step_completed":
            pending.pop(0)


def _journal_event(
    row: Mapping[str, Any], names: dict[int, tuple[str, str]]
) -> tuple[str, dict[str, Any]] | None:
    """Map one journal entry to (event type, details), or None for bookkeeping entries."""
    entry_type = str(row.get("entry_type", ""))
    name = str(row.get("name") or "")
    lite = entry_json(row)
    if entry_type == EntryType.INPUT:
        return "execution_started", {}
    if entry_type == EntryType.RUN:
        _remember(names, lite, "Run", "step", name)
        return "step_started", {"step": name}
    if entry_type == EntryType.SLEEP:
        if name == DEADLINE_TIMER:
            return None  # the shim's own timeout timer: its firing is the timeout event
        _remember(names, lite, "Sleep", "timer", name)
        sleep = lite.get("Command", {}).get("Sleep", {})
        timer: dict[str, Any] = {"timer": name} if name else {}
        if isinstance(sleep.get("wake_up_time"), int):
            timer["wake_up_time_ms"] = sleep["wake_up_time"]
        return "timer_started", timer
    if entry_type == EntryType.GET_PROMISE:
        promise = str(lite.get("Command", {}).get("GetPromise", {}).get("key") or name)
        _remember(names, lite, "GetPromise", "promise", promise)
        return "callback_waiting", {"promise": promise}
    if entry_type.startswith(EntryType.NOTIFICATION):
        return _notification_event(lite, names)
    return None


def _remember(
    names: dict[int, tuple[str, str]], lite: Mapping[str, Any], command: str, kind: str, name: str
) -> None:
    completion_id = lite.get("Command", {}).get(command, {}).get("completion_id")
    if isinstance(completion_id, int):
        names[completion_id] = (kind, name)


def _notification_event(
    lite: Mapping[str, Any], names: Mapping[int, tuple[str, str]]
) -> tuple[str, dict[str, Any]] | None:
    notification = lite.get("Notification", {})
    if not isinstance(notification, dict):
        return None
    ident = notification.get("id", {})
    completion_id = ident.get("CompletionId") if isinstance(ident, dict) else None
    if not isinstance(completion_id, int) or completion_id not in names:
        if notification.get("ty") == "Signal" and isinstance(ident, dict) and (
            ident.get("SignalIndex") == CANCEL_SIGNAL_INDEX
        ):
            return "stop_requested", {}
        return None
    kind, name = names[completion_id]
    succeeded = notification.get("result") != "Failure"
    if kind == "step":
        return ("step_completed" if succeeded else "step_failed"), {"step": name}
    if kind == "timer":
        return "timer_fired", ({"timer": name} if name else {})
    return ("callback_received" if succeeded else "callback_failed"), {"promise": name}


def build_summary(
    invocation: Mapping[str, Any],
    recorded_outcome: Any,
    tags: Mapping[str, str] | None = None,
    trigger_source: str = "",
) -> ExecutionSummary:
    """One list line from a sys_invocation row, the shim's recorded outcome, and the tags
    and trigger source its start carried (the provider's record of them)."""
    state, sub_state = map_state(invocation, read_outcome(recorded_outcome))
    key = str(invocation.get("target_service_key", ""))
    workflow_id, name = split_workflow_key(key)
    start = row_time(invocation.get("running_at")) or row_time(invocation.get("created_at"))
    if start is None:
        raise unexpected("invocation without created_at", invocation)
    return ExecutionSummary(
        execution_id=str(invocation.get("id", "")),
        workflow_id=workflow_id,
        execution_name=name,
        state=state,
        sub_state=sub_state,
        start_time=start,
        stop_time=row_time(invocation.get("completed_at")) if state.is_terminal else None,
        tags=dict(tags or {}),
        trigger_source=trigger_source,
    )


def _reused_steps(recorded: Mapping[str, Any], envelope: Mapping[str, Any]) -> list[str]:
    """The steps a redrive answered from its original without running them, in order, as
    the shim recorded them; for a redrive from before that record, its plan's steps."""
    reused = recorded.get(REUSED_STATE)
    if isinstance(reused, list):
        return [str(name) for name in reused]
    steps = []
    for reuse in envelope.get("redrive") or ():
        if not isinstance(reuse, dict):
            break
        if reuse.get("kind") == "step":
            steps.append(str(reuse.get("name", "")))
        elif reuse.get("kind") == "callback":
            steps.append(REDRIVEN_CALLBACK_STEP)
    return steps


def build_status(record: ExecutionRecord) -> ExecutionStatus:
    """The ExecutionStatus of one execution, from everything `reading` gathered of it.

    A stopped execution's reason is the provider's record (`record.control`), whether the
    run recorded its cancellation or was killed before it could.
    """
    invocation, journal = record.invocation, record.journal
    envelope: dict[str, Any] = record.recorded.get(ENVELOPE_STATE) or {}
    if not isinstance(envelope, dict):
        envelope = {}
    outcome = read_outcome(record.recorded.get(OUTCOME_STATE))
    state, sub_state = map_state(invocation, outcome)
    stop = record.control.get(STOP_STATE)
    if state is ExecutionState.STOPPED and isinstance(stop, dict) and stop.get("reason"):
        reason = str(stop["reason"])
        outcome = Outcome(state="stopped", reason=reason,
                          error=OutcomeError(code="stopped", message=reason))
    start_time = row_time(invocation.get("running_at")) or row_time(invocation.get("created_at"))
    if start_time is None:
        raise unexpected("invocation without created_at", invocation)
    stop_time = row_time(invocation.get("completed_at")) if state.is_terminal else None
    history = build_history(journal, state, outcome, stop_time,
                            _reused_steps(record.recorded, envelope))
    if sub_state in ("running", "waiting"):
        # what the run does, not how Restate holds it: a bidi stream stays "running" while
        # it awaits a timer or the callback, and a run in request/response mode (Lambda) is
        # "suspended" between two steps it is about to run
        sub_state = "waiting" if _awaiting(history) else "running"
    key = str(invocation.get("target_service_key", ""))
    given = envelope.get("metadata")
    # the execution's own metadata, without keys only the provider may state (a start
    # drops them; an execution started before that rule may hold them)
    metadata = {
        str(k): v for k, v in (given.items() if isinstance(given, dict) else ())
        if isinstance(v, str) and k not in PROVIDER_METADATA_KEYS
    }
    metadata |= {
        "restate_status": str(invocation.get("status", "")),
        "workflow_sub_state": sub_state,
        # Restate counts attempts ("increments on start"); Landlord counts retries
        "retry_count": str(max(_count(invocation.get("retry_count"), invocation) - 1, 0)),
        "service_name": str(invocation.get("target_service_name", "")),
        "workflow_key": key,
    }
    if isinstance(stop, dict) and state is ExecutionState.STOPPED:
        # how it was stopped: "killed" (at once, or after stop_grace) or "cancelled"
        failure = str(invocation.get("completion_failure", ""))
        metadata["stopped_by"] = "killed" if failure.startswith(_KILLED) else "cancelled"
    if envelope.get("redriven_from"):
        metadata["redriven_from"] = str(envelope["redriven_from"])
    if invocation.get("pinned_deployment_id"):  # once Restate has chosen the code it runs
        metadata["deployment_id"] = str(invocation["pinned_deployment_id"])
    if invocation.get("trace_id"):  # recorded when restate-server exports traces
        metadata["trace_id"] = str(invocation["trace_id"])
    if invocation.get("last_failure"):
        metadata["last_failure"] = str(invocation["last_failure"])
        if invocation.get("last_failure_related_command_name"):
            metadata["last_failure_step"] = str(invocation["last_failure_related_command_name"])
    return ExecutionStatus(
        execution_id=record.execution_id,
        workflow_id=str(envelope.get("workflow_id") or split_workflow_key(key)[0]),
        provider_type=PROVIDER_TYPE,
        state=state,
        start_time=start_time,
        stop_time=stop_time,
        input=envelope.get("input"),
        output=outcome.output if outcome is not None and state is ExecutionState.SUCCEEDED
        else None,
        error=_error(state, invocation, outcome, stop_time),
        history=history,
        metadata=metadata,
    )
