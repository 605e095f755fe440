"""The provider contract: what Landlord awaits, whatever engine runs the workflows."""

from __future__ import annotations

import abc

from landlord_restate.workflow.types import (
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionInput,
    ExecutionResult,
    ExecutionStatus,
    ProvisionRequest,
    WorkflowSpec,
    WorkflowStatus,
)


class Provider(abc.ABC):
    """Python shape of Landlord's Go `workflow.Provider` interface."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The name Landlord selects this provider by (`provider_type` in specs)."""

    @abc.abstractmethod
    async def validate(self, spec: WorkflowSpec) -> None:
        """Raise `InvalidSpecError` naming the field when `spec` cannot be created."""

    @abc.abstractmethod
    async def create_workflow(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Make the workflow startable; idempotent on `spec.workflow_id`."""

    @abc.abstractmethod
    async def start_execution(
        self, workflow_id: str, execution: ExecutionInput
    ) -> ExecutionResult:
        """Start one execution; the same `execution_name` never starts a second run."""

    @abc.abstractmethod
    async def get_execution_status(self, execution_id: str) -> ExecutionStatus:
        """Everything known about one execution, history included."""

    @abc.abstractmethod
    async def stop_execution(self, execution_id: str, reason: str) -> None:
        """Stop a running execution; stopping a finished one changes nothing."""

    @abc.abstractmethod
    async def delete_workflow(self, workflow_id: str) -> None:
        """Make the workflow unstartable; running executions go on."""

    @abc.abstractmethod
    async def invoke(self, workflow_id: str, request: ProvisionRequest) -> ExecutionResult:
        """Start an execution from Landlord's simplified provisioning request."""

    @abc.abstractmethod
    async def get_workflow_status(self, execution_id: str) -> WorkflowStatus:
        """The simplified status: state, output, error."""

    @abc.abstractmethod
    async def post_compute_callback(
        self, execution_id: str, payload: ComputeCallbackPayload
    ) -> None:
        """Deliver a compute completion to the waiting execution; twice is harmless."""
