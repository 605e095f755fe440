"""landlord-restate: the Restate workflow provider for Landlord.

`workflow` is the provider-agnostic contract (Landlord's Go `internal/workflow`: types,
errors, `Provider`, `Registry`, the JSON converter, `extract_workflow_details`,
`config_hash`); `restate` is the provider on a real restate-server; `testing` is
`LocalRestate` for handler tests; `cli` and `doctor` the `landlord-restate` operator CLI;
`demo` what `make run` runs, with `rendering` and `trace_tree`. The handler deployment
is the `services` package beside this one.

The library logs through loguru but leaves it disabled, as loguru asks of libraries;
an application turns it on with `logger.enable("landlord_restate")`. `RestateProvider`
(and aiohttp with it) loads on first use: the handler deployment never needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loguru import logger

from landlord_restate.restate.config import AuthType, ExecutionMechanism, RestateConfig
from landlord_restate.restate.deployments import DeploymentInfo
from landlord_restate.restate.errors import (
    DeploymentError,
    DeploymentInUseError,
    RestateConnectionError,
    RestateProtocolError,
    RestateServerError,
    RestateUnavailableError,
)
from landlord_restate.restate.settings import load_config
from landlord_restate.workflow import (
    BackoffType,
    CallbackOptions,
    ComputeCallbackPayload,
    ConfigError,
    CreateWorkflowResult,
    ExecutionCount,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionPage,
    ExecutionResult,
    ExecutionState,
    ExecutionStateError,
    ExecutionStatus,
    ExecutionSummary,
    InvalidInputError,
    InvalidSpecError,
    Provider,
    ProviderConflictError,
    ProviderNotFoundError,
    ProviderStateError,
    ProvisionRequest,
    Registry,
    RetryPolicy,
    WorkflowError,
    WorkflowNotFoundError,
    WorkflowSpec,
    WorkflowStatus,
    WorkflowSubState,
    config_hash,
    extract_workflow_details,
    from_json,
    to_json,
)

if TYPE_CHECKING:
    from landlord_restate.restate.provider import RestateProvider

logger.disable("landlord_restate")

__all__ = [
    "AuthType",
    "BackoffType",
    "CallbackOptions",
    "ComputeCallbackPayload",
    "ConfigError",
    "CreateWorkflowResult",
    "DeploymentError",
    "DeploymentInUseError",
    "DeploymentInfo",
    "ExecutionCount",
    "ExecutionError",
    "ExecutionEvent",
    "ExecutionInput",
    "ExecutionMechanism",
    "ExecutionNotFoundError",
    "ExecutionPage",
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
    "RestateConfig",
    "RestateConnectionError",
    "RestateProtocolError",
    "RestateProvider",
    "RestateServerError",
    "RestateUnavailableError",
    "RetryPolicy",
    "WorkflowError",
    "WorkflowNotFoundError",
    "WorkflowSpec",
    "WorkflowStatus",
    "WorkflowSubState",
    "config_hash",
    "extract_workflow_details",
    "from_json",
    "load_config",
    "to_json",
]


def __getattr__(name: str) -> Any:
    # RestateProvider: loaded (with aiohttp) by landlord_restate.restate on first use
    if name != "RestateProvider":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from landlord_restate import restate

    value = restate.RestateProvider
    globals()[name] = value
    return value
