"""Landlord's view of a status: `ExtractWorkflowDetails` and `MapExecutionStateToSubState`.

A mirror of `internal/workflow/status_details.go` and `types.go`, rule for rule, so a
Python reconciler reads a status exactly as Landlord's Go controller does.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence

from landlord_restate.workflow.types import ExecutionEvent, ExecutionState, ExecutionStatus


class WorkflowSubState(enum.StrEnum):
    """Provider-agnostic sub-state of an execution (Go's `WorkflowSubState`)."""

    RUNNING = "running"
    WAITING = "waiting"
    BACKING_OFF = "backing-off"
    ERROR = "error"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def map_execution_state_to_sub_state(state: ExecutionState) -> WorkflowSubState:
    """Go's `MapExecutionStateToSubState`: every terminal failure is `failed`."""
    if state is ExecutionState.SUCCEEDED:
        return WorkflowSubState.SUCCEEDED
    if state in (ExecutionState.FAILED, ExecutionState.TIMEOUT, ExecutionState.STOPPED):
        return WorkflowSubState.FAILED
    if state is ExecutionState.PENDING:
        return WorkflowSubState.WAITING
    return WorkflowSubState.RUNNING


def extract_workflow_details(
    status: ExecutionStatus | None,
) -> tuple[WorkflowSubState, int | None, str | None]:
    """Go's `ExtractWorkflowDetails`: (sub-state, retry count, error message)."""
    if status is None:
        return WorkflowSubState.RUNNING, None, None
    sub_state = map_execution_state_to_sub_state(status.state)
    metadata = status.metadata or {}
    provided = metadata.get("workflow_sub_state")
    if isinstance(provided, str) and provided in set(WorkflowSubState):
        sub_state = WorkflowSubState(provided)
    if _has_backoff_metadata(metadata):
        sub_state = WorkflowSubState.BACKING_OFF
    retry_count = _retry_count_from_metadata(metadata)
    if retry_count is None:
        counted = _retry_count_from_history(status.history)
        if counted > 0:
            retry_count = counted
    message = None
    if status.error is not None and status.error.message != "":
        message = status.error.message
        if status.state in (ExecutionState.RUNNING, ExecutionState.PENDING) and (
            sub_state is not WorkflowSubState.BACKING_OFF
        ):
            sub_state = WorkflowSubState.ERROR
    return sub_state, retry_count, message


def _has_backoff_metadata(metadata: Mapping[str, str]) -> bool:
    for key, value in metadata.items():
        k, v = key.lower(), str(value).lower()
        if ("backoff" in k or "retry_state" in k) and (
            "backoff" in v or "backing" in v or v == "true"
        ):
            return True
    return False


_RETRY_COUNT_KEYS = ("retry_count", "retrycount", "retry_attempts", "retryattempts", "attempts")


def _retry_count_from_metadata(metadata: Mapping[str, str]) -> int | None:
    """The value of a retry-count key Go recognises.

    Go ranges over a map, so with several such keys it takes any one; here `retry_count`
    (the one this provider writes) is taken first, which is one of Go's possible answers.
    """
    ordered = sorted(metadata.items(), key=lambda kv: kv[0].lower() != "retry_count")
    for key, value in ordered:
        if key.lower() in _RETRY_COUNT_KEYS:
            if value == "":
                return None
            return _atoi(str(value))
    return None


def _atoi(value: str) -> int | None:
    """Go's `strconv.Atoi`: an optional sign and ASCII digits, nothing else."""
    digits = value[1:] if value[:1] in "+-" else value
    if not digits or not (digits.isascii() and digits.isdigit()):
        return None
    return int(value)


def _retry_count_from_history(history: Sequence[ExecutionEvent]) -> int:
    return sum(1 for event in history if "retry" in event.type.lower())
