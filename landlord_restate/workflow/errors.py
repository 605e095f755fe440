"""The provider's errors: one root, subclasses that carry what they are about.

`except WorkflowNotFoundError` plays the role of Go's `errors.Is(err, ErrWorkflowNotFound)`.
"""

from __future__ import annotations


class WorkflowError(Exception):
    """Root of every error the provider raises; carries the ids it is about."""

    def __init__(
        self,
        message: str,
        *,
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.workflow_id = workflow_id
        self.execution_id = execution_id


class InvalidSpecError(WorkflowError):
    """A workflow spec, its definition or its provider config is malformed."""

    def __init__(self, message: str, *, field: str | None = None, workflow_id: str | None = None):
        super().__init__(message, workflow_id=workflow_id)
        self.field = field


class InvalidInputError(WorkflowError):
    """A payload other than a spec (execution input, id, callback) is malformed."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id, execution_id=execution_id)
        self.field = field


class WorkflowNotFoundError(WorkflowError):
    """No workflow with this id was created (or it was deleted)."""

    def __init__(self, workflow_id: str) -> None:
        super().__init__(f"workflow {workflow_id!r} not found", workflow_id=workflow_id)


class ExecutionNotFoundError(WorkflowError):
    """No execution with this id is known to Restate."""

    def __init__(self, execution_id: str) -> None:
        super().__init__(f"execution {execution_id!r} not found", execution_id=execution_id)


class ProviderNotFoundError(WorkflowError):
    """No provider is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"provider {name!r} not registered")
        self.name = name


class ProviderConflictError(WorkflowError):
    """A provider is already registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"provider {name!r} already registered")
        self.name = name


class ProviderStateError(WorkflowError, RuntimeError):
    """A provider used outside its life: before `open`, after `aclose`, or from an event
    loop other than the one that opened it."""


class ConfigError(WorkflowError):
    """The provider's configuration is missing a value or holds a wrong one."""

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ExecutionStateError(WorkflowError):
    """The execution is not in a state that allows this action (purge a running one,
    redrive a succeeded one); nothing was changed."""

    def __init__(self, message: str, *, execution_id: str, state: str) -> None:
        super().__init__(message, execution_id=execution_id)
        self.state = state
