"""Provider-agnostic contract: a mirror of Landlord's Go `internal/workflow` package."""

from landlord_restate.workflow.convert import from_json, to_json
from landlord_restate.workflow.errors import (
    ConfigError,
    ExecutionNotFoundError,
    InvalidInputError,
    InvalidSpecError,
    ProviderConflictError,
    ProviderNotFoundError,
    RestateConnectionError,
    RestateServerError,
    RestateUnavailableError,
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.registry import Registry
from landlord_restate.workflow.types import (
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    ProvisionRequest,
    RetryPolicy,
    WorkflowSpec,
    WorkflowStatus,
)

__all__ = [
    "ComputeCallbackPayload",
    "ConfigError",
    "CreateWorkflowResult",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionInput",
    "ExecutionNotFoundError",
    "ExecutionResult",
    "ExecutionState",
    "ExecutionStatus",
    "ExecutionSummary",
    "InvalidInputError",
    "InvalidSpecError",
    "Provider",
    "ProviderConflictError",
    "ProviderNotFoundError",
    "ProvisionRequest",
    "Registry",
    "RestateConnectionError",
    "RestateServerError",
    "RestateUnavailableError",
    "RetryPolicy",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowSpec",
    "WorkflowStatus",
    "from_json",
    "to_json",
]
