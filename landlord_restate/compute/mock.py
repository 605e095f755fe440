"""The in-memory compute provider, Landlord's `providers/mock`, for tests and demos.

Its semantics are Landlord's exactly: tenants live in this object only; a second provision
of a tenant is refused; `update` lists what changed in the container count, CPU and memory
(or says `no_changes`); `destroy` and `get_status` of an unknown tenant are
`TenantNotFoundError`. It accepts every spec and config.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from attrs import define

from landlord_restate.compute.errors import TenantAlreadyProvisionedError, TenantNotFoundError
from landlord_restate.compute.types import (
    ComputeState,
    ComputeStatus,
    ContainerStatus,
    Endpoint,
    HealthStatus,
    JSONValue,
    ProvisionResult,
    ProvisionStatus,
    TenantComputeSpec,
    UpdateResult,
    UpdateStatus,
)

NAME = "mock"


@define
class _TenantState:
    spec: TenantComputeSpec
    provisioned_at: datetime
    updated_at: datetime | None = None


class MockProvider:
    """Landlord's mock compute provider: tenants in a dict, nothing outside this object."""

    def __init__(self, defaults: Mapping[str, Any] | None = None) -> None:
        self._tenants: dict[str, _TenantState] = {}
        self._defaults = dict(defaults or {})

    @property
    def name(self) -> str:
        """Always "mock"."""
        return NAME

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """Record the tenant; one HTTP endpoint per container with ports (its first port)."""
        if spec.tenant_id in self._tenants:
            raise TenantAlreadyProvisionedError(
                spec.tenant_id, provider=NAME, message=f"tenant {spec.tenant_id} already exists",
            )
        self._tenants[spec.tenant_id] = _TenantState(spec=spec, provisioned_at=_now())
        endpoints = [
            Endpoint(
                type="http", address="mock.local", port=container.ports[0].container_port,
                url=f"http://mock.local:{container.ports[0].container_port}",
            )
            for container in spec.containers
            if container.ports
        ]
        return ProvisionResult(
            tenant_id=spec.tenant_id, provider_type=NAME, status=ProvisionStatus.SUCCESS,
            resource_ids={"tenant": spec.tenant_id}, endpoints=endpoints,
            message="Mock provisioning successful", provisioned_at=_now(),
        )

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """Replace the recorded spec; the changes are the container count, CPU and memory."""
        state = self._tenants.get(tenant_id)
        if state is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)
        changes: list[str] = []
        if len(state.spec.containers) != len(spec.containers):
            changes.append("container count changed")
        if state.spec.resources.cpu != spec.resources.cpu:
            changes.append("CPU allocation changed")
        if state.spec.resources.memory != spec.resources.memory:
            changes.append("memory allocation changed")
        state.spec = spec
        state.updated_at = _now()
        return UpdateResult(
            tenant_id=tenant_id, provider_type=NAME,
            status=UpdateStatus.SUCCESS if changes else UpdateStatus.NO_CHANGES,
            changes=changes, message="Mock update successful", updated_at=_now(),
        )

    async def destroy(self, tenant_id: str) -> None:
        """Forget the tenant; an unknown one is `TenantNotFoundError` (Landlord's mock)."""
        if self._tenants.pop(tenant_id, None) is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)

    async def get_status(self, tenant_id: str) -> ComputeStatus:
        """Every container running and ready, the tenant healthy."""
        state = self._tenants.get(tenant_id)
        if state is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)
        containers = [
            ContainerStatus(
                name=container.name, state="running", ready=True, restart_count=0,
                message="Mock container running",
            )
            for container in state.spec.containers
        ]
        return ComputeStatus(
            tenant_id=tenant_id, provider_type=NAME, state=ComputeState.RUNNING,
            containers=containers, health=HealthStatus.HEALTHY, last_updated=_now(),
            metadata={"mock": "true"},
        )

    async def validate(self, spec: TenantComputeSpec) -> None:
        """Every spec is valid."""

    def validate_config(self, config: JSONValue) -> None:
        """Every config is valid."""

    def config_schema(self) -> dict[str, Any]:
        """The empty schema: anything goes."""
        return {}

    def config_defaults(self) -> dict[str, Any] | None:
        """The `compute.mock` section's values, if any (Landlord keeps and ignores them)."""
        return dict(self._defaults) or None

    async def aclose(self) -> None:
        """Nothing to release."""


def create(config: Mapping[str, Any]) -> MockProvider:
    """The entry point: a mock provider; its `compute.mock` section is kept as defaults."""
    return MockProvider(config)


def _now() -> datetime:
    return datetime.now(UTC)
