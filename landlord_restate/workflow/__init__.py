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
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.registry import Registry
from landlord_restate.workflow.types import (
    CreateWorkflowResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    RetryPolicy,
    WorkflowSpec,
)

__all__ = [
    "ConfigError",
    "CreateWorkflowResult",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionInput",
    "ExecutionNotFoundError",
    "ExecutionResult",
    "ExecutionState",
    "ExecutionStatus",
    "InvalidInputError",
    "InvalidSpecError",
    "Provider",
    "ProviderConflictError",
    "ProviderNotFoundError",
    "Registry",
    "RestateConnectionError",
    "RestateServerError",
    "RetryPolicy",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowSpec",
    "from_json",
    "to_json",
]
