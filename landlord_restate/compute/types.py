"""Landlord's `internal/compute` types, field for field.

Plain frozen value objects with the Go field names: JSON (the Go tags, `omitempty`, RFC 3339
times, Go's `null` for an empty map or slice) lives in `landlord_restate.workflow.convert`,
the project's one converter, not here.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from attrs import field, frozen

#: a `json.RawMessage`: any JSON value, kept as parsed Python data
JSONValue = Any


class ProvisionStatus(enum.StrEnum):
    """How a provision ended (Landlord's `ProvisionStatus`)."""

    SUCCESS = "success"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"


class UpdateStatus(enum.StrEnum):
    """How an update ended (Landlord's `UpdateStatus`)."""

    SUCCESS = "success"
    NO_CHANGES = "no_changes"
    IN_PROGRESS = "in_progress"
    FAILED = "failed"


class ComputeState(enum.StrEnum):
    """The state of a tenant's compute as a whole (Landlord's `ComputeState`)."""

    RUNNING = "running"
    STOPPED = "stopped"
    STARTING = "starting"
    STOPPING = "stopping"
    FAILED = "failed"
    UNKNOWN = "unknown"


class HealthStatus(enum.StrEnum):
    """Overall health of a tenant's compute (Landlord's `HealthStatus`)."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


@frozen(kw_only=True)
class PortMapping:
    """How a container port is exposed."""

    container_port: int
    #: 0: the provider picks one
    host_port: int = 0
    #: "tcp" or "udp"
    protocol: str = ""
    name: str = ""


@frozen(kw_only=True)
class HealthCheckConfig:
    """How a container's health is checked."""

    #: "http", "tcp" or "exec"
    type: str
    http_path: str = ""
    port: int = 0
    command: list[str] = field(factory=list)
    interval_seconds: int = 0
    timeout_seconds: int = 0
    healthy_threshold: int = 0
    unhealthy_threshold: int = 0


@frozen(kw_only=True)
class ResourceRequirements:
    """Compute resource limits: CPU in millicores (1000 = one CPU), memory and storage in MB."""

    cpu: int = 0
    memory: int = 0
    storage: int = 0


@frozen(kw_only=True)
class ContainerSpec:
    """One container of the tenant's deployment."""

    name: str
    image: str = ""
    command: list[str] = field(factory=list)
    args: list[str] = field(factory=list)
    env: dict[str, str] = field(factory=dict)
    ports: list[PortMapping] = field(factory=list)
    health_check: HealthCheckConfig | None = None
    resources: ResourceRequirements | None = None


@frozen(kw_only=True)
class DNSConfig:
    """DNS names of the tenant."""

    hostname: str = ""
    domain: str = ""


@frozen(kw_only=True)
class NetworkConfig:
    """Networking of the tenant."""

    public_ip: bool = False
    security_groups: list[str] = field(factory=list)
    subnets: list[str] = field(factory=list)
    dns: DNSConfig | None = None


@frozen(kw_only=True)
class SecretReference:
    """A secret a container needs, and where the provider finds it."""

    name: str
    #: where the secret is kept, e.g. "aws-secrets-manager", "kubernetes-secret"
    source: str
    key: str
    env_var: str = ""


@frozen(kw_only=True)
class TenantComputeSpec:
    """The desired compute of one tenant; `provider_config` is the provider's own JSON."""

    tenant_id: str
    #: the registered name of the provider that runs it
    provider_type: str
    containers: list[ContainerSpec] = field(factory=list)
    resources: ResourceRequirements = field(factory=ResourceRequirements)
    networking: NetworkConfig = field(factory=NetworkConfig)
    secrets: list[SecretReference] = field(factory=list)
    labels: dict[str, str] = field(factory=dict)
    provider_config: JSONValue = None


@frozen(kw_only=True)
class Endpoint:
    """How to reach a tenant."""

    #: "http", "https", "tcp", "grpc", ...
    type: str
    address: str
    port: int
    url: str = ""


@frozen(kw_only=True)
class ProvisionResult:
    """What a provision made: the provider's ids for it and where it answers."""

    tenant_id: str
    provider_type: str
    status: ProvisionStatus
    #: resource kind to provider id, e.g. {"container_id": "..."}
    resource_ids: dict[str, str] = field(factory=dict)
    endpoints: list[Endpoint] = field(factory=list)
    message: str = ""
    provisioned_at: datetime


@frozen(kw_only=True)
class UpdateResult:
    """What an update changed, in words."""

    tenant_id: str
    provider_type: str
    status: UpdateStatus
    changes: list[str] = field(factory=list)
    message: str = ""
    updated_at: datetime


@frozen(kw_only=True)
class ContainerStatus:
    """The state of one container."""

    name: str
    #: "running", "stopped", "failed" or "unknown"
    state: str
    ready: bool = False
    restart_count: int = 0
    message: str = ""


@frozen(kw_only=True)
class ComputeStatus:
    """The current state of a tenant's compute, as the provider sees it now."""

    tenant_id: str
    provider_type: str
    state: ComputeState
    containers: list[ContainerStatus] = field(factory=list)
    health: HealthStatus
    last_updated: datetime
    #: provider-specific details, e.g. {"container_id": ..., "image": ...}
    metadata: dict[str, str] = field(factory=dict)
