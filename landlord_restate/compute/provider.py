"""The compute provider contract: Landlord's Go `compute.Provider`, as a Protocol.

Any object with these members is a provider: no base class to inherit. A provider is made
by its factory (`create(config)`, found through the `landlord_restate.compute_providers`
entry point group) without I/O; connections open on first use and close in `aclose()`.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from landlord_restate.compute.types import (
    ComputeStatus,
    JSONValue,
    ProvisionResult,
    TenantComputeSpec,
    UpdateResult,
)


@runtime_checkable
class ComputeProvider(Protocol):
    """Provisions, updates and removes the compute of tenants on one backend."""

    @property
    def name(self) -> str:
        """The unique name Landlord selects this provider by ("docker", "ecs", "mock"):
        `provider_type` in specs."""
        ...

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """Create the tenant's compute; answer its resource ids and endpoints.

        Validates first: an invalid spec is an `InvalidComputeConfigError` and nothing is
        made. A provider whose state survives it (docker) answers a repeated provision with
        the same spec as the first (a step retried after a crash makes nothing twice); a
        provision of a tenant it already runs with another spec is an error (update it).
        """
        ...

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """Bring the tenant's compute to `spec`; answer what changed, in words.

        Must be idempotent: with the spec it already runs, nothing is touched and the status
        is `no_changes` (Landlord's answer), also right after an update brought it there. So
        a step retried after a crash that had completed the change answers `no_changes`:
        the compute is right either way; an update cut short part way is finished by the
        retry, with the changes listed. A tenant the provider does not run is
        `TenantNotFoundError`.
        """
        ...

    async def destroy(self, tenant_id: str) -> None:
        """Remove all of the tenant's compute.

        Must be idempotent: destroying a tenant that does not exist (any more) succeeds;
        only an unexpected failure raises. (Landlord's in-memory mock is the exception: it
        answers `TenantNotFoundError`.)
        """
        ...

    async def get_status(self, tenant_id: str) -> ComputeStatus:
        """The tenant's compute as it is now; `TenantNotFoundError` when there is none."""
        ...

    async def validate(self, spec: TenantComputeSpec) -> None:
        """Check that this provider can run `spec`, without provisioning anything.

        Raises `InvalidComputeConfigError` naming the JSON path of what is wrong.
        """
        ...

    def validate_config(self, config: JSONValue) -> None:
        """Check a tenant's provider config (Landlord's `compute_config`, JSON text or parsed
        data) before it is stored, merged over the provider's defaults.

        Raises `InvalidComputeConfigError` whose `problems` name every field and constraint.
        """
        ...

    def config_schema(self) -> dict[str, Any]:
        """The JSON Schema (draft 2020-12) of this provider's config."""
        ...

    def config_defaults(self) -> dict[str, Any] | None:
        """The config defaults this provider merges under every tenant's; None when none."""
        ...

    async def aclose(self) -> None:
        """Release what the provider holds (a client session); safe to call twice, and a
        no-op for providers that hold nothing."""
        ...
