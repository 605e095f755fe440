"""The docker provider against a real Docker daemon: the tenant's lifecycle."""

from __future__ import annotations

import asyncio

import aiodocker
import aiohttp
import pytest

from landlord_restate.compute import (
    ComputeError,
    ComputeState,
    ContainerSpec,
    HealthCheckConfig,
    HealthStatus,
    ProvisionFailedError,
    ProvisionStatus,
    TenantAlreadyProvisionedError,
    TenantComputeSpec,
    TenantNotFoundError,
    UpdateStatus,
)
from landlord_restate.compute.docker import DockerProvider, create
from landlord_restate.testing._docker import DockerDaemon
from landlord_restate.testing._docker_image import DEFAULT_PAGE
from tests.compute.conftest import busybox_spec, new_tenant, provider_config, tenant_containers


async def fetch(port: int) -> str:
    """The page the tenant serves on 127.0.0.1:`port`, once httpd answers."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        for _ in range(100):
            try:
                async with session.get(f"http://127.0.0.1:{port}/") as response:
                    return await response.text()
            except aiohttp.ClientError:
                await asyncio.sleep(0.05)
    raise AssertionError(f"nothing answers on 127.0.0.1:{port}")


async def test_provision_serves_and_is_idempotent(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """Provision runs one labelled container answering on its published 127.0.0.1 port; a
    second provision answers the same, still with one container."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant, env={"GREETING": "hi"}, labels={"team": "a"})
    result = await docker_provider.provision(spec)
    assert result.status is ProvisionStatus.SUCCESS
    assert result.message == "Container provisioned successfully"
    (endpoint,) = result.endpoints
    assert endpoint.address == "127.0.0.1"
    assert endpoint.url == f"tcp://127.0.0.1:{endpoint.port}"
    assert await fetch(endpoint.port) == DEFAULT_PAGE
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Id"] == result.resource_ids["container_id"]
    assert container["Name"] == f"/landlord-tenant-{tenant}"
    labels = container["Config"]["Labels"]
    assert labels["landlord.owner"] == "landlord"
    assert labels["landlord.tenant_id"] == tenant
    assert labels["landlord.provider"] == "docker"
    assert labels["team"] == "a"
    assert "hi" not in labels["landlord.spec"]  # env values only as a digest
    assert container["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    assert container["Config"]["Cmd"] == ["httpd", "-f", "-p", "8080", "-h", "/www"]
    again = await docker_provider.provision(spec)
    assert again == result
    assert len(await tenant_containers(docker_client, tenant)) == 1
    await docker_provider.destroy(tenant)


async def test_provision_with_another_spec_is_refused(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """A tenant that runs one spec is not provisioned again with another (update it)."""
    tenant = new_tenant()
    await docker_provider.provision(busybox_spec(docker_daemon, tenant))
    with pytest.raises(TenantAlreadyProvisionedError, match=f"tenant {tenant} already provisioned"):
        await docker_provider.provision(busybox_spec(docker_daemon, tenant, env={"A": "1"}))
    assert len(await tenant_containers(docker_client, tenant)) == 1
    await docker_provider.destroy(tenant)


async def test_provision_survives_a_new_provider(docker_daemon: DockerDaemon) -> None:
    """State lives in Docker: a fresh provider (a restarted Landlord) knows the tenant."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant)
    async with create(provider_config(docker_daemon), env={}) as first:
        made = await first.provision(spec)
    async with create(provider_config(docker_daemon), env={}) as second:
        assert (await second.get_status(tenant)).state is ComputeState.RUNNING
        assert await second.provision(spec) == made
        await second.destroy(tenant)


async def test_update_recreates_only_on_change(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """An unchanged update touches nothing; a changed env recreates the container and says
    so; repeating that update is `no_changes`, as in Landlord (it runs that spec now)."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant, env={"MODE": "blue"})
    first = await docker_provider.provision(spec)
    unchanged = await docker_provider.update(tenant, spec)
    assert (unchanged.status, unchanged.changes) == (UpdateStatus.NO_CHANGES, [])
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Id"] == first.resource_ids["container_id"]

    changed_spec = busybox_spec(docker_daemon, tenant, env={"MODE": "green"}, cpu=250, memory=64)
    changed = await docker_provider.update(tenant, changed_spec)
    assert changed.status is UpdateStatus.SUCCESS
    assert changed.changes == ["environment variables changed", "resource limits changed"]
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Id"] != first.resource_ids["container_id"]
    assert container["State"]["Running"]
    assert "MODE=green" in container["Config"]["Env"]
    assert container["HostConfig"]["NanoCpus"] == 250_000_000
    assert container["HostConfig"]["Memory"] == 64 * 1024 * 1024
    again = await docker_provider.update(tenant, changed_spec)
    assert (again.status, again.changes) == (UpdateStatus.NO_CHANGES, [])
    (same,) = await tenant_containers(docker_client, tenant)
    assert same["Id"] == container["Id"]

    image_and_ports = busybox_spec(
        docker_daemon, tenant, env={"MODE": "green"}, cpu=250, memory=64,
        image=f"{docker_daemon.image.split(':')[0]}:1", ports=[
            {"container_port": 8080}, {"container_port": 9000, "protocol": "udp"},
        ], command=["sh", "-c", "exec httpd -f -p 8080 -h /www"],
    )
    result = await docker_provider.update(tenant, image_and_ports)
    assert result.changes == ["container command changed", "port mappings changed"]
    status = await docker_provider.get_status(tenant)
    assert status.state is ComputeState.RUNNING
    await docker_provider.destroy(tenant)


async def test_update_unknown_tenant(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider,
) -> None:
    """Updating a tenant that has no container is TenantNotFoundError."""
    tenant = new_tenant()
    with pytest.raises(TenantNotFoundError) as caught:
        await docker_provider.update(tenant, busybox_spec(docker_daemon, tenant))
    assert caught.value.tenant_id == tenant


async def test_destroy_is_idempotent(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """Destroy removes the tenant's containers (by name and by label); again is success."""
    tenant = new_tenant()
    await docker_provider.provision(busybox_spec(docker_daemon, tenant))
    stray = await docker_client.containers.create(
        {"Image": docker_daemon.image, "Labels": {
            "landlord.tenant_id": tenant, "landlord.owner": "landlord",
        }}, name=f"{tenant}-stray",
    )
    await docker_provider.destroy(tenant)
    assert await tenant_containers(docker_client, tenant) == []
    with pytest.raises(aiodocker.DockerError):
        await stray.show()
    await docker_provider.destroy(tenant)
    with pytest.raises(TenantNotFoundError):
        await docker_provider.get_status(tenant)


async def test_status_running_and_stopped(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """A running container is running and healthy; stopped, it is stopped with its exit
    code; provision starts it again."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant)
    made = await docker_provider.provision(spec)
    running = await docker_provider.get_status(tenant)
    assert (running.state, running.health) == (ComputeState.RUNNING, HealthStatus.HEALTHY)
    (container,) = running.containers
    assert (container.name, container.state, container.ready) == (
        f"landlord-tenant-{tenant}", "running", True,
    )
    assert running.metadata["container_id"] == made.resource_ids["container_id"]
    assert running.metadata["image"] == docker_daemon.image

    await docker_client.containers.container(made.resource_ids["container_id"]).stop(t=0)
    stopped = await docker_provider.get_status(tenant)
    assert (stopped.state, stopped.health) == (ComputeState.STOPPED, HealthStatus.UNKNOWN)
    (container,) = stopped.containers
    assert (container.state, container.ready) == ("stopped", False)
    assert container.message == "exited (exit code 137)"

    again = await docker_provider.provision(spec)
    assert again.resource_ids == made.resource_ids
    assert (await docker_provider.get_status(tenant)).state is ComputeState.RUNNING
    await docker_provider.destroy(tenant)


async def test_status_with_a_health_check(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """An exec health check becomes Docker's; while Docker has not judged it, health is
    unknown and the container not ready."""
    tenant = new_tenant()
    base = busybox_spec(docker_daemon, tenant)
    spec = TenantComputeSpec(
        tenant_id=tenant, provider_type="docker", provider_config=base.provider_config,
        containers=[ContainerSpec(name="app", health_check=HealthCheckConfig(
            type="exec", command=["true"], interval_seconds=30, timeout_seconds=5,
            unhealthy_threshold=2,
        ))],
    )
    await docker_provider.provision(spec)
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Config"]["Healthcheck"] == {
        "Test": ["CMD", "true"], "Interval": 30_000_000_000, "Timeout": 5_000_000_000,
        "Retries": 2,
    }
    status = await docker_provider.get_status(tenant)
    assert status.state is ComputeState.RUNNING
    assert status.health is HealthStatus.UNKNOWN
    assert status.metadata["docker_health"] == "starting"
    assert not status.containers[0].ready
    await docker_provider.destroy(tenant)


async def test_missing_image_is_pulled_once_and_refused(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """An image the host lacks is pulled; with no registry reachable the failure is
    Docker's own words, not retryable, and nothing is created."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant, image="landlord-test-absent:1")
    with pytest.raises(ProvisionFailedError) as caught:
        await docker_provider.provision(spec)
    assert not caught.value.retryable
    assert "landlord-test-absent:1" in str(caught.value)
    assert caught.value.backend_message in str(caught.value)
    assert await tenant_containers(docker_client, tenant) == []


async def test_refused_start_leaves_nothing(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """A command Docker cannot start is its refusal, and the container made is removed."""
    tenant = new_tenant()
    spec = busybox_spec(docker_daemon, tenant, command=["/no/such/binary"])
    with pytest.raises(ProvisionFailedError) as caught:
        await docker_provider.provision(spec)
    assert caught.value.status == 400
    assert "no/such/binary" in caught.value.backend_message
    assert await tenant_containers(docker_client, tenant) == []


async def test_a_foreign_container_under_the_name_is_left_alone(
    docker_daemon: DockerDaemon, docker_provider: DockerProvider, docker_client: aiodocker.Docker,
) -> None:
    """A container Landlord did not make holds the tenant's name: provision and update
    refuse and leave it; destroy (by name) removes it."""
    tenant = new_tenant()
    foreign = await docker_client.containers.create(
        {"Image": docker_daemon.image}, name=f"landlord-tenant-{tenant}",
    )
    spec = busybox_spec(docker_daemon, tenant)
    with pytest.raises(TenantAlreadyProvisionedError, match="Landlord did not make"):
        await docker_provider.provision(spec)
    with pytest.raises(ComputeError, match="not one Landlord made"):
        await docker_provider.update(tenant, spec)
    assert (await foreign.show())["Name"] == f"/landlord-tenant-{tenant}"
    await docker_provider.destroy(tenant)
    assert await tenant_containers(docker_client, tenant) == []
