"""A Docker daemon that does not answer is a retryable error naming where it was looked
for; Docker's host comes from the config, else DOCKER_HOST, else the default socket."""

from __future__ import annotations

import asyncio
import shutil
import socket
import tempfile
from pathlib import Path

import aiodocker
import pytest

from landlord_restate import ExecutionState, ProvisionRequest, RestateProvider
from landlord_restate.compute import (
    ComputeUnavailableError,
    ContainerSpec,
    InvalidComputeConfigError,
    TenantComputeSpec,
)
from landlord_restate.compute.docker import DEFAULT_HOST, create, read_settings
from landlord_restate.testing import LocalRestate
from landlord_restate.testing._docker import DockerDaemon
from landlord_restate.workflow import ConfigError
from tests.compute.conftest import (
    HTTPD,
    docker_worker_env,
    new_tenant,
    provider_config,
    tenant_containers,
    worker_config_file,
)
from tests.conftest import ROOT
from tests.waiting import wait_status, wait_terminal


def spec(tenant: str) -> TenantComputeSpec:
    """A valid spec: validation passes, so the daemon is asked."""
    return TenantComputeSpec(
        tenant_id=tenant, provider_type="docker", containers=[ContainerSpec(name="app")],
        provider_config={"image": "busybox:1", "command": HTTPD},
    )


async def test_missing_socket_is_retryable_and_named(tmp_path: Path) -> None:
    """Every call on a socket path that does not exist: retryable, naming host and source."""
    host = f"unix://{tmp_path}/docker.sock"
    tenant = new_tenant()
    async with create({"host": host}, env={"DOCKER_HOST": "unix:///elsewhere.sock"}) as provider:
        calls = [
            provider.provision(spec(tenant)), provider.update(tenant, spec(tenant)),
            provider.destroy(tenant), provider.get_status(tenant), provider.ping(),
        ]
        for call in calls:
            with pytest.raises(ComputeUnavailableError) as caught:
                await call
            assert caught.value.retryable
            assert caught.value.host == host
            assert f"{host} (from compute.docker.host) does not answer" in str(caught.value)


async def test_refused_connection_names_docker_host(tmp_path: Path) -> None:
    """A socket nothing listens on (connection refused), taken from DOCKER_HOST."""
    path = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as bound:  # bound, never listening
        bound.bind(str(path))
        async with create({}, env={"DOCKER_HOST": f"unix://{path}"}) as provider:
            with pytest.raises(ComputeUnavailableError) as caught:
                await provider.provision(spec(new_tenant()))
    assert caught.value.retryable
    assert f"unix://{path} (from DOCKER_HOST)" in str(caught.value)


async def test_tcp_port_nothing_listens_on() -> None:
    """A TCP address nobody serves: the same retryable error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with create({"host": f"tcp://127.0.0.1:{port}"}, env={}) as provider:
        with pytest.raises(ComputeUnavailableError, match=f"tcp://127.0.0.1:{port}"):
            await provider.get_status(new_tenant())


async def test_validation_comes_first(tmp_path: Path) -> None:
    """A bad spec is refused as such, without asking the absent daemon."""
    async with create({"host": f"unix://{tmp_path}/docker.sock"}, env={}) as provider:
        bad = spec(new_tenant())
        bad = TenantComputeSpec(
            tenant_id=bad.tenant_id, provider_type="docker", containers=bad.containers,
            provider_config={"image": "busybox:1", "ports": [{"container_port": 70000}]},
        )
        with pytest.raises(InvalidComputeConfigError):
            await provider.provision(bad)


def test_host_precedence() -> None:
    """compute.docker.host, else DOCKER_HOST, else the default socket; a host without a
    scheme is a ConfigError."""
    assert read_settings({"host": "tcp://a:2375"}, {"DOCKER_HOST": "tcp://b:2375"}).host == (
        "tcp://a:2375"
    )
    from_env = read_settings({}, {"DOCKER_HOST": "tcp://b:2375"})
    assert (from_env.host, from_env.host_source) == ("tcp://b:2375", "DOCKER_HOST")
    default = read_settings({}, {})
    assert (default.host, default.host_source) == (DEFAULT_HOST, "the default socket")
    with pytest.raises(ConfigError) as caught:
        read_settings({"host": "/var/run/docker.sock"}, {})
    assert caught.value.key == "compute.docker.host"


def test_settings_and_defaults() -> None:
    """Landlord's keys and ours are settings; every other key is a tenant default."""
    settings = read_settings({
        "network_name": "tenants", "label_prefix": "acme", "host_ip": "127.0.0.1",
        "allowed_volume_roots": ["/srv"], "stop_timeout": 3, "image": "nginx:1.25",
        "env": {"TZ": "UTC"},
    }, {})
    assert settings.network_name == "tenants"
    assert settings.label_prefix == "acme"
    assert settings.allowed_volume_roots == ("/srv",)
    assert settings.defaults == {"image": "nginx:1.25", "env": {"TZ": "UTC"}}
    for bad in (
        {"stop_timeout": -1}, {"allowed_volume_roots": ["relative"]}, {"env": {"A": 1}},
        {"network_name": 5},
    ):
        with pytest.raises(ConfigError):
            read_settings(bad, {})



async def test_a_provisioning_waits_out_a_docker_daemon_that_is_down(
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker, tmp_path: Path,
) -> None:
    """The worker's Docker daemon does not answer when a tenant is provisioned: the step's
    retryable failure is retried by Restate (the run reads running, its last failure naming
    the daemon) and nothing is made; once the daemon answers, the same run ends with one
    container. The daemon is the session's real dockerd behind a socket the test opens."""
    folder = Path(tempfile.mkdtemp(prefix="dk-"))  # a unix socket's path must stay short
    door = folder / "docker.sock"
    config_file = worker_config_file(tmp_path / "worker", {
        "docker": provider_config(docker_daemon) | {"host": f"unix://{door}"},
    })

    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        inner_reader, inner_writer = await asyncio.open_unix_connection(
            str(docker_daemon.socket_path))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, inner_writer), pipe(inner_reader, writer),
                             return_exceptions=True)

    async with LocalRestate(base_dir=tmp_path / "stack", config_file=ROOT / "restate.toml",
                            env=docker_worker_env(config_file)) as local, \
            RestateProvider(local.config()) as provider:
        await provider.register_deployment()
        tenant = new_tenant()
        started = await provider.invoke("tenant-provisioning", ProvisionRequest(
            tenant_id=tenant, desired_config={
                "image": docker_daemon.image, "command": HTTPD,
                "ports": [{"container_port": 8080}]}))
        retrying = await wait_status(
            provider, started.execution_id,
            lambda s: s.error is not None and f"unix://{door}" in s.error.message, within=60)
        assert retrying.state is ExecutionState.RUNNING
        assert "does not answer" in retrying.error.message  # type: ignore[union-attr]
        assert await tenant_containers(docker_client, tenant) == []
        server = await asyncio.start_unix_server(forward, path=str(door))
        try:
            done = await wait_terminal(provider, started.execution_id, within=120)
        finally:
            server.close()
            await server.wait_closed()
            shutil.rmtree(folder, ignore_errors=True)
    assert done.state is ExecutionState.SUCCEEDED, done.error
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Id"] == done.output["resource_ids"]["container_id"]
    assert container["State"]["Running"]
