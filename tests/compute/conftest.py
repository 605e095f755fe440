"""A Docker daemon for the session (`landlord_restate.testing._docker.DockerDaemon`), and
docker providers on it that publish on 127.0.0.1 and stop containers at once; a Restate
stack whose worker provisions through them (`docker_stack`).

Tests isolate themselves with a tenant id of their own (`new_tenant()`).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiodocker
import pytest
import yaml

from landlord_restate import RestateProvider
from landlord_restate.compute import ContainerSpec, TenantComputeSpec
from landlord_restate.compute.docker import DockerProvider, create
from landlord_restate.testing import LocalRestate
from landlord_restate.testing._docker import DockerDaemon
from tests.conftest import ROOT, deployment_env

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


def worker_config_file(folder: Path, compute: Mapping[str, Any]) -> Path:
    """A Landlord config file holding `compute:` (what LANDLORD_CONFIG names for a worker)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump({"compute": dict(compute)}))
    return path


def docker_worker_env(config_file: Path, **extra: str) -> dict[str, str]:
    """A test deployment's environment, its compute from `config_file` (docker by default,
    not the mock the other test deployments use)."""
    return deployment_env(**{
        "LANDLORD_CONFIG": str(config_file),
        "LANDLORD_RESTATE_HANDLERS": "tests.compute.providers",
        "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "docker",
        **extra,
    })


@pytest.fixture(scope="session")
async def docker_stack(
    docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[LocalRestate]:
    """restate-server and a worker whose TenantProvisioning runs on the session's Docker
    daemon (`compute.docker`, volumes allowed only under `<tmp>/volumes`)."""
    base = tmp_path_factory.mktemp("docker-stack")
    (base / "volumes").mkdir()
    config_file = worker_config_file(base, {
        "docker": provider_config(docker_daemon,
                                  allowed_volume_roots=[str(base / "volumes")]),
    })
    async with LocalRestate(base_dir=base, config_file=ROOT / "restate.toml",
                            env=docker_worker_env(config_file)) as local:
        yield local


@pytest.fixture
async def docker_stack_provider(docker_stack: LocalRestate) -> AsyncIterator[RestateProvider]:
    """A provider on the docker stack, its deployment registered (so `tenant-provisioning`
    exists without create_workflow)."""
    async with RestateProvider(docker_stack.config()) as provider:
        await provider.register_deployment()
        yield provider
