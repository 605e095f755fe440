"""A Docker daemon for the session (`landlord_restate.testing._docker.DockerDaemon`), and
docker providers on it that publish on 127.0.0.1 and stop containers at once.

Tests isolate themselves with a tenant id of their own (`new_tenant()`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiodocker
import pytest

from landlord_restate.compute import ContainerSpec, TenantComputeSpec
from landlord_restate.compute.docker import DockerProvider, create
from landlord_restate.testing._docker import DockerDaemon

#: busybox's httpd in the foreground, serving the page the test image holds
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def new_tenant() -> str:
    """A tenant id no other test uses."""
    return f"t-{uuid.uuid4().hex[:12]}"


def busybox_spec(
    daemon: DockerDaemon, tenant_id: str, **config: Any
) -> TenantComputeSpec:
    """A spec as Landlord's handler builds it (one container named "app", the tenant's
    desired config as provider_config): the test image serving on 8080, published on a port
    Docker picks; `config` adds or overrides keys."""
    provider_config: dict[str, Any] = {
        "image": daemon.image,
        "command": HTTPD,
        "ports": [{"container_port": 8080}],
        **config,
    }
    return TenantComputeSpec(
        tenant_id=tenant_id, provider_type="docker", containers=[ContainerSpec(name="app")],
        provider_config=provider_config,
    )


def provider_config(daemon: DockerDaemon, **extra: Any) -> dict[str, Any]:
    """The `compute.docker` section for the session's daemon."""
    return {"host": daemon.host, "host_ip": "127.0.0.1", "stop_timeout": 0, **extra}


@pytest.fixture(scope="session")
async def docker_daemon() -> AsyncIterator[DockerDaemon]:
    """dockerd of the session's own (its own folders, socket and bridge) and a busybox
    image; every container removed and dockerd stopped at the end."""
    async with DockerDaemon() as daemon:
        yield daemon


@pytest.fixture
async def docker_provider(docker_daemon: DockerDaemon) -> AsyncIterator[DockerProvider]:
    """A docker provider on the session's daemon, closed after the test."""
    async with create(provider_config(docker_daemon), env={}) as provider:
        yield provider


@pytest.fixture
async def docker_client(docker_daemon: DockerDaemon) -> AsyncIterator[aiodocker.Docker]:
    """A plain Docker client on the session's daemon, to look behind the provider."""
    async with aiodocker.Docker(url=docker_daemon.host) as client:
        yield client


async def tenant_containers(
    client: aiodocker.Docker, tenant_id: str
) -> list[Mapping[str, Any]]:
    """Every container of the tenant on the daemon, running or not (by label or name)."""
    found: dict[str, Mapping[str, Any]] = {}
    for filters in (
        {"label": [f"landlord.tenant_id={tenant_id}"]},
        {"name": [f"landlord-tenant-{tenant_id}"]},
    ):
        for container in await client.containers.list(all=True, filters=filters):
            found[container.id] = await container.show()
    return list(found.values())
