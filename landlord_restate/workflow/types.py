"""Landlord's `internal/workflow` types, field for field.

Plain frozen value objects: JSON names, Go encodings and unknown-key rejection live in
`landlord_restate.workflow.convert`, not here.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any

from attrs import field, frozen

#: a `json.RawMessage`: any JSON value, kept as parsed Python data
JSONValue = Any


class ExecutionState(enum.StrEnum):
    """Lifecycle of one execution, in Landlord's words."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMEOUT = "timeout"
    STOPPED = "stopped"

    @classmethod
    def parse(cls, value: str) -> ExecutionState:
        """Read a state, also in the words Landlord's Go constants use on the wire."""
        return cls(_GO_STATE_ALIASES.get(value, value))

    @property
    def is_terminal(self) -> bool:
        """True once the execution can no longer change."""
        return self not in (ExecutionState.PENDING, ExecutionState.RUNNING)


#: Landlord's Go `StateTimedOut` and `StateCancelled` are written "timed_out" and "cancelled"
_GO_STATE_ALIASES = {"timed_out": "timeout", "cancelled": "stopped"}


@frozen(kw_only=True)
class RetryPolicy:
    """How often and how fast a failing step is retried (zero values mean: Restate's default)."""

    max_attempts: int = 0
    backoff_rate: float = 0.0
    initial_interval: timedelta = timedelta(0)
    max_interval: timedelta = timedelta(0)


@frozen(kw_only=True)
class WorkflowSpec:
    """What Landlord asks a provider to create. `definition` is provider-specific JSON."""

    workflow_id: str
    provider_type: str = ""
    name: str = ""
    description: str = ""
    definition: JSONValue = None
    #: zero: use the provider's configured default
    timeout: timedelta = timedelta(0)
    retry_policy: RetryPolicy | None = None
    tags: dict[str, str] = field(factory=dict)
    provider_config: JSONValue = None


@frozen(kw_only=True)
class ExecutionInput:
    """One request to run a workflow. An empty `execution_name` gets a generated one."""

    execution_name: str = ""
    input: JSONValue = None
    tags: dict[str, str] = field(factory=dict)
    metadata: dict[str, str] = field(factory=dict)
    trigger_source: str = ""


@frozen(kw_only=True)
class CreateWorkflowResult:
    """What `create_workflow` made, with the provider's ids for it."""

    workflow_id: str
    provider_type: str
    resource_ids: dict[str, str] = field(factory=dict)
    created_at: datetime
    message: str = ""


@frozen(kw_only=True)
class ExecutionResult:
    """The answer to `start_execution`."""

    execution_id: str
    workflow_id: str
    provider_type: str
    state: ExecutionState
    started_at: datetime
    message: str = ""


@frozen(kw_only=True)
class ExecutionError:
    """Why an execution failed."""

    code: str
    message: str
    cause: str = ""
    failed_at: datetime | None = None


@frozen(kw_only=True)
class ExecutionEvent:
    """One entry of an execution's history."""

    timestamp: datetime
    type: str
    details: dict[str, JSONValue] = field(factory=dict)


@frozen(kw_only=True)
class ExecutionStatus:
    """Everything known about one execution."""

    execution_id: str
    workflow_id: str
    provider_type: str
    state: ExecutionState
    start_time: datetime
    stop_time: datetime | None = None
    input: JSONValue = None
    output: JSONValue = None
    error: ExecutionError | None = None
    history: list[ExecutionEvent] = field(factory=list)
    metadata: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class ExecutionSummary:
    """One line of `list_executions`: an execution without its payloads and history."""

    execution_id: str
    workflow_id: str
    execution_name: str
    state: ExecutionState
    sub_state: str
    start_time: datetime
    stop_time: datetime | None = None
    #: the tags its start carried (Landlord's reconciler: tenant_id, tenant_uuid, operation)
    tags: dict[str, str] = field(factory=dict)
    #: what started it ("reconciler", "cli", ...), as its start said
    trigger_source: str = ""


@frozen(kw_only=True)
class ExecutionPage:
    """One page of a search for executions, newest first."""

    executions: list[ExecutionSummary] = field(factory=list)
    #: hand it back (with the same filters) for the next page; None on the last page
    next_page_token: str | None = None


@frozen(kw_only=True)
class ExecutionCount:
    """How many executions a search matches, in all and by state (every state, zeros too)."""

    total: int
    by_state: dict[ExecutionState, int] = field(factory=dict)


@frozen(kw_only=True)
class ProvisionRequest:
    """Landlord's simplified execution request (`Invoke`): what to do to which tenant."""

    tenant_id: str
    tenant_uuid: str = ""
    operation: str = ""
    desired_config: dict[str, JSONValue] = field(factory=dict)
    compute_provider: str = ""
    api_base_url: str = ""
    #: strings to strings, passed on to the execution; Landlord's reconciler puts
    #: `config_hash` here for change detection
    metadata: dict[str, str] = field(factory=dict)


@frozen(kw_only=True)
class WorkflowStatus:
    """Landlord's simplified execution status (`GetWorkflowStatus`)."""

    execution_id: str
    state: ExecutionState
    output: JSONValue = None
    error: ExecutionError | None = None


@frozen(kw_only=True)
class ComputeCallbackPayload:
    """Landlord's `compute.CallbackPayload`: a compute operation finished."""

    execution_id: str
    tenant_id: str
    #: pending, running, succeeded or failed
    status: str
    resource_ids: dict[str, JSONValue] = field(factory=dict)
    error_code: str = ""
    error_message: str = ""
    is_retriable: bool = False


class BackoffType(enum.StrEnum):
    """How the pause between callback deliveries grows (Landlord's `BackoffType`)."""

    EXPONENTIAL = "exponential"
    LINEAR = "linear"


@frozen(kw_only=True)
class CallbackOptions:
    """Landlord's `compute.CallbackOptions`: how a compute callback delivery is retried."""

    #: retries after the first delivery attempt, when Restate is unreachable or not ready
    max_retries: int = 3
    #: the first pause between attempts
    retry_delay: timedelta = timedelta(seconds=1)
    backoff_type: BackoffType | str = BackoffType.EXPONENTIAL
