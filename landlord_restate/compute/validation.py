"""Structural checks of a compute spec (Landlord's `validation.go`), naming JSON paths.

Landlord stops at the first problem and names the container by index; these checks find
every problem and name each by its JSON path in the spec (`containers[0].ports[1].protocol`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from landlord_restate.compute.errors import InvalidComputeConfigError
from landlord_restate.compute.types import ContainerSpec, HealthCheckConfig, TenantComputeSpec

#: tenant ids and container names (Go's `^[a-z0-9-]+$`, matched whole)
TENANT_ID_PATTERN = re.compile(r"[a-z0-9-]+")
_CONTAINER_NAME_PATTERN = TENANT_ID_PATTERN
#: Landlord's floor for spec-level resources
MIN_CPU_MILLICORES = 128
MIN_MEMORY_MB = 128

#: (JSON path, what is wrong with it)
Problem = tuple[str, str]


def join_path(parent: str, child: str) -> str:
    """`parent.child`, or `parent[0]` when `child` is an index step."""
    if not parent:
        return child
    return parent + child if child.startswith("[") else f"{parent}.{child}"


def tenant_id_problems(tenant_id: str, path: str = "tenant_id") -> list[Problem]:
    """A tenant id is required and made of lowercase letters, digits and dashes."""
    if not tenant_id:
        return [(path, "required")]
    if TENANT_ID_PATTERN.fullmatch(tenant_id) is None:
        return [(path, f"must match pattern ^[a-z0-9-]+$, got {tenant_id!r}")]
    return []


def port_problems(
    container_port: int, host_port: int, protocol: str, path: str
) -> list[Problem]:
    """Ports within 1-65535 (host port 0: the provider picks), protocol tcp or udp."""
    problems: list[Problem] = []
    if not 1 <= container_port <= 65535:
        problems.append((
            join_path(path, "container_port"),
            f"must be between 1 and 65535, got {container_port}",
        ))
    if host_port != 0 and not 1 <= host_port <= 65535:
        problems.append((
            join_path(path, "host_port"), f"must be between 1 and 65535, got {host_port}",
        ))
    if protocol not in ("", "tcp", "udp"):
        problems.append((join_path(path, "protocol"), f"must be 'tcp' or 'udp', got {protocol!r}"))
    return problems


def health_check_problems(check: HealthCheckConfig, path: str) -> list[Problem]:
    """Type http, tcp or exec; interval at least 5 s; timeout at least 1 s and below the
    interval."""
    problems: list[Problem] = []
    if check.type not in ("http", "tcp", "exec"):
        problems.append((
            join_path(path, "type"), f"must be 'http', 'tcp', or 'exec', got {check.type!r}",
        ))
    if check.interval_seconds < 5:
        problems.append((
            join_path(path, "interval_seconds"), f"must be >= 5, got {check.interval_seconds}",
        ))
    if check.timeout_seconds < 1:
        problems.append((
            join_path(path, "timeout_seconds"), f"must be >= 1, got {check.timeout_seconds}",
        ))
    elif check.timeout_seconds >= check.interval_seconds:
        problems.append((
            join_path(path, "timeout_seconds"),
            f"must be < interval_seconds ({check.interval_seconds}), got {check.timeout_seconds}",
        ))
    if check.type == "exec" and not check.command:
        problems.append((join_path(path, "command"), "required for an exec health check"))
    return problems


def container_problems(
    container: ContainerSpec, path: str, *, require_image: bool = True
) -> list[Problem]:
    """A container's name, image, ports and health check."""
    problems: list[Problem] = []
    if not container.name:
        problems.append((join_path(path, "name"), "required"))
    elif _CONTAINER_NAME_PATTERN.fullmatch(container.name) is None:
        problems.append((
            join_path(path, "name"), f"must match pattern ^[a-z0-9-]+$, got {container.name!r}",
        ))
    if require_image and not container.image:
        problems.append((join_path(path, "image"), "required"))
    for j, port in enumerate(container.ports):
        problems += port_problems(
            port.container_port, port.host_port, port.protocol,
            join_path(path, f"ports[{j}]"),
        )
    if container.health_check is not None:
        problems += health_check_problems(
            container.health_check, join_path(path, "health_check"),
        )
    return problems


def compute_spec_problems(spec: TenantComputeSpec) -> list[Problem]:
    """Every structural problem of `spec`, as Landlord's `ValidateComputeSpec` checks it."""
    problems = tenant_id_problems(spec.tenant_id)
    if not spec.provider_type:
        problems.append(("provider_type", "required"))
    if not spec.containers:
        problems.append(("containers", "at least one container required"))
    seen: set[str] = set()
    for i, container in enumerate(spec.containers):
        path = f"containers[{i}]"
        problems += container_problems(container, path)
        if container.name and container.name in seen:
            problems.append((
                join_path(path, "name"), f"duplicate container name {container.name!r}",
            ))
        seen.add(container.name)
    if spec.resources.cpu < MIN_CPU_MILLICORES:
        problems.append((
            "resources.cpu",
            f"must be at least {MIN_CPU_MILLICORES} millicores, got {spec.resources.cpu}",
        ))
    if spec.resources.memory < MIN_MEMORY_MB:
        problems.append((
            "resources.memory",
            f"must be at least {MIN_MEMORY_MB} MB, got {spec.resources.memory}",
        ))
    return problems


def raise_problems(
    problems: Iterable[Problem], *, tenant_id: str | None = None, provider: str | None = None
) -> None:
    """Raise `InvalidComputeConfigError` for `problems`, if there are any."""
    problems = list(problems)
    if problems:
        raise InvalidComputeConfigError(
            [f"{path}: {message}" for path, message in problems],
            field=problems[0][0], tenant_id=tenant_id or None, provider=provider,
        )


def validate_compute_spec(spec: TenantComputeSpec) -> None:
    """Landlord's `ValidateComputeSpec`: tenant id, provider type, at least one uniquely
    named container with an image, valid ports and health checks, and at least 128
    millicores and 128 MB. Raises `InvalidComputeConfigError` listing every problem."""
    raise_problems(compute_spec_problems(spec), tenant_id=spec.tenant_id)
