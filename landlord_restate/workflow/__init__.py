"""Provider-agnostic contract: a mirror of Landlord's Go `internal/workflow` package."""

from landlord_restate.workflow.config_hash import config_hash
from landlord_restate.workflow.convert import from_json, to_json
from landlord_restate.workflow.details import (
    WorkflowSubState,
    extract_workflow_details,
    map_execution_state_to_sub_state,
)
from landlord_restate.workflow.errors import (
    ConfigError,
    ExecutionNotFoundError,
    ExecutionStateError,
    InvalidInputError,
    InvalidSpecError,
    ProviderConflictError,
    ProviderNotFoundError,
    ProviderStateError,
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.registry import Registry
from landlord_restate.workflow.types import (
    BackoffType,
    CallbackOptions,
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
    "BackoffType",
    "CallbackOptions",
    "ComputeCallbackPayload",
    "ConfigError",
    "CreateWorkflowResult",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionInput",
    "ExecutionNotFoundError",
    "ExecutionResult",
    "ExecutionState",
    "ExecutionStateError",
    "ExecutionStatus",
    "ExecutionSummary",
    "InvalidInputError",
    "InvalidSpecError",
    "Provider",
    "ProviderConflictError",
    "ProviderNotFoundError",
    "ProviderStateError",
    "ProvisionRequest",
    "Registry",
    "RetryPolicy",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowSpec",
    "WorkflowStatus",
    "WorkflowSubState",
    "config_hash",
    "extract_workflow_details",
    "from_json",
    "map_execution_state_to_sub_state",
    "to_json",
]
