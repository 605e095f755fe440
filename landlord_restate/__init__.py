"""landlord-restate: the Restate workflow provider for Landlord.

The library logs through loguru but leaves it disabled, as loguru asks of libraries;
an application turns it on with `logger.enable("landlord_restate")`.
"""

from loguru import logger

from landlord_restate.restate import (
    AuthType,
    ExecutionMechanism,
    RestateConfig,
    RestateProvider,
    load_config,
)
from landlord_restate.workflow import (
    ComputeCallbackPayload,
    ConfigError,
    CreateWorkflowResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    InvalidInputError,
    InvalidSpecError,
    Provider,
    ProviderConflictError,
    ProviderNotFoundError,
    ProvisionRequest,
    Registry,
    RestateConnectionError,
    RestateServerError,
    RestateUnavailableError,
    RetryPolicy,
    WorkflowError,
    WorkflowNotFoundError,
    WorkflowSpec,
    WorkflowStatus,
    from_json,
    to_json,
)

logger.disable("landlord_restate")

__all__ = [
    "AuthType",
    "ComputeCallbackPayload",
    "ConfigError",
    "CreateWorkflowResult",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionInput",
    "ExecutionMechanism",
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
    "RestateConfig",
    "RestateConnectionError",
    "RestateProvider",
    "RestateServerError",
    "RestateUnavailableError",
    "RetryPolicy",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowSpec",
    "WorkflowStatus",
    "from_json",
    "load_config",
    "to_json",
]
