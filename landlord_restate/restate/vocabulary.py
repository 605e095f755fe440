"""Restate's vocabulary, named once: invocation statuses, completion results, journal entry
kinds, and the rows the provider reads from its SQL introspection.

Every module that reads Restate's answers compares against these names, never against
strings of its own (checked with restate-server 1.7.12).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import enum
from typing import TypedDict


class InvocationStatus(enum.StrEnum):
    """`sys_invocation.status`."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    READY = "ready"
    INBOXED = "inboxed"
    RUNNING = "running"
    SUSPENDED = "suspended"
    BACKING_OFF = "backing-off"
    PAUSED = "paused"
    COMPLETED = "completed"


#: statuses of an invocation that has not begun running (waiting for its turn or time)
NOT_STARTED = frozenset({InvocationStatus.PENDING, InvocationStatus.SCHEDULED,
                         InvocationStatus.READY, InvocationStatus.INBOXED})
#: statuses in which the last failure is the news: it is being retried, or paused
RETRYING = frozenset({InvocationStatus.BACKING_OFF, InvocationStatus.PAUSED})


class CompletionResult(enum.StrEnum):
    """`sys_invocation.completion_result` of a completed invocation."""

    SUCCESS = "success"
    FAILURE = "failure"


class EntryType(enum.StrEnum):
    """`sys_journal.entry_type` values the provider reads."""

    INPUT = "Command: Input"
    OUTPUT = "Command: Output"
    SET_STATE = "Command: SetState"
    RUN = "Command: Run"
    SLEEP = "Command: Sleep"
    GET_PROMISE = "Command: GetPromise"
    #: prefix of every notification (`Notification: Run`, `Notification: Signal`, ...)
    NOTIFICATION = "Notification:"


#: the signal index Restate uses for cancellation (`Notification: Signal`, SignalIndex 1)
CANCEL_SIGNAL_INDEX = 1


class InvocationRow(TypedDict, total=False):
    """A `sys_invocation` row, as far as the provider selects it."""

    id: str
    target_service_name: str
    target_service_key: str
    target_handler_name: str
    status: str
    created_at: str
    running_at: str | None
    completed_at: str | None
    completion_result: str | None
    completion_failure: str | None
    retry_count: int | None
    journal_size: int | None
    last_failure: str | None
    last_failure_related_command_name: str | None
    last_failure_error_code: str | None
    modified_at: str | None
    trace_id: str | None
    pinned_deployment_id: str | None


class JournalRow(TypedDict, total=False):
    """A `sys_journal` row: `entry` is the entry's JSON (full or lite, as selected)."""

    id: str
    index: int
    entry_type: str
    name: str | None
    appended_at: str
    entry: str | None


class StateRow(TypedDict, total=False):
    """A `state` row: one key of a service's K/V state, its value as UTF-8 text."""

    service_key: str
    key: str
    value_utf8: str
