"""Provider-agnostic compute: a mirror of Landlord's Go `internal/compute` package.

- `types`: the value objects (`TenantComputeSpec`, `ProvisionResult`, `ComputeStatus`, ...);
  their JSON is in `landlord_restate.workflow.convert` (`from_json`, `to_json`).
- `errors`: `ComputeError` and its subclasses, each saying whether a retry can help.
- `provider`: the `ComputeProvider` protocol, each method's contract in its docstring.
- `registry`: providers by name, built from Landlord's `compute:` config section through
  the `landlord_restate.compute_providers` entry points (or `register_factory`).
- `landlord_api` (imported on its own, it needs aiohttp): Landlord's API asked which
  provider runs a tenant, as Landlord's worker asks it.
- `mock`: Landlord's in-memory provider. `docker` (imported on its own, it needs
  aiodocker): one container per tenant on a Docker Engine, its state kept in Docker.
"""

# Nothing here imports landlord_restate.workflow.convert: it imports this package's types.
from landlord_restate.compute.config_merge import merge_config
from landlord_restate.compute.errors import (
    ComputeBackendError,
    ComputeError,
    ComputeProviderConflictError,
    ComputeProviderNotFoundError,
    ComputeUnavailableError,
    InvalidComputeConfigError,
    ProvisionFailedError,
    TenantAlreadyProvisionedError,
    TenantNotFoundError,
    UpdateFailedError,
)
from landlord_restate.compute.metadata import (
    METADATA_NAMESPACE,
    METADATA_OWNER_KEY,
    METADATA_OWNER_VALUE,
    METADATA_PROVIDER_KEY,
    METADATA_TENANT_ID_KEY,
    default_metadata,
    merge_labels,
)
from landlord_restate.compute.mock import MockProvider
from landlord_restate.compute.provider import ComputeProvider
from landlord_restate.compute.registry import (
    ENTRY_POINT_GROUP,
    ComputeRegistry,
    create_provider,
    default_provider,
    installed_providers,
    load_registry,
    provider_names,
    register_factory,
)
from landlord_restate.compute.types import (
    ComputeState,
    ComputeStatus,
    ContainerSpec,
    ContainerStatus,
    DNSConfig,
    Endpoint,
    HealthCheckConfig,
    HealthStatus,
    NetworkConfig,
    PortMapping,
    ProvisionResult,
    ProvisionStatus,
    ResourceRequirements,
    SecretReference,
    TenantComputeSpec,
    UpdateResult,
    UpdateStatus,
)
from landlord_restate.compute.validation import TENANT_ID_PATTERN, validate_compute_spec

__all__ = [
    "ENTRY_POINT_GROUP",
    "METADATA_NAMESPACE",
    "METADATA_OWNER_KEY",
    "METADATA_OWNER_VALUE",
    "METADATA_PROVIDER_KEY",
    "METADATA_TENANT_ID_KEY",
    "TENANT_ID_PATTERN",
    "ComputeBackendError",
    "ComputeError",
    "ComputeProvider",
    "ComputeProviderConflictError",
    "ComputeProviderNotFoundError",
    "ComputeRegistry",
    "ComputeState",
    "ComputeStatus",
    "ComputeUnavailableError",
    "ContainerSpec",
    "ContainerStatus",
    "DNSConfig",
    "Endpoint",
    "HealthCheckConfig",
    "HealthStatus",
    "InvalidComputeConfigError",
    "MockProvider",
    "NetworkConfig",
    "PortMapping",
    "ProvisionFailedError",
    "ProvisionResult",
    "ProvisionStatus",
    "ResourceRequirements",
    "SecretReference",
    "TenantAlreadyProvisionedError",
    "TenantComputeSpec",
    "TenantNotFoundError",
    "UpdateFailedError",
    "UpdateResult",
    "UpdateStatus",
    "create_provider",
    "default_metadata",
    "default_provider",
    "installed_providers",
    "load_registry",
    "merge_config",
    "merge_labels",
    "provider_names",
    "register_factory",
    "validate_compute_spec",
]
