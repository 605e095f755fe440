"""TenantProvisioning on the docker provider, through Restate, as Landlord's worker runs it:
the whole lifecycle of a tenant, and bad input that fails naming its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiodocker
import pytest

from landlord_restate import (
    ExecutionState,
    ExecutionStatus,
    ProvisionRequest,
    RestateProvider,
)
from landlord_restate.testing import LocalRestate
from landlord_restate.testing._docker import DockerDaemon
from tests.compute.conftest import HTTPD, new_tenant, tenant_containers
from tests.compute.test_docker import fetch
from tests.waiting import wait_terminal


def desired(daemon: DockerDaemon, **extra: Any) -> dict[str, Any]:
    """A tenant's desired config: the test image serving on 8080, published on a port Docker
    picks; `extra` adds or overrides keys."""
    return {"image": daemon.image, "command": HTTPD, "ports": [{"container_port": 8080}],
            **extra}


async def run(
    provider: RestateProvider, tenant: str, operation: str, config: dict[str, Any] | None = None,
) -> ExecutionStatus:
    """One run of `tenant-provisioning` for the tenant, as Landlord's reconciler invokes it,
    to its end."""
    started = await provider.invoke("tenant-provisioning", ProvisionRequest(
        tenant_id=tenant, operation=operation, desired_config=config or {}))
    return await wait_terminal(provider, started.execution_id, within=60)


def steps(status: ExecutionStatus) -> list[str]:
    """The steps the run completed, in order."""
    return [e.details["step"] for e in status.history if e.type == "step_completed"]


async def test_the_whole_lifecycle(
    docker_daemon: DockerDaemon, docker_stack_provider: RestateProvider,
    docker_client: aiodocker.Docker,
) -> None:
    """provision (the container answers on its port), provision again (still one), update
    with a changed env (recreated, changes listed), update unchanged (no_changes), plan,
    delete, delete again: each output is what Docker really holds."""
    provider, tenant = docker_stack_provider, new_tenant()
    made = await run(provider, tenant, "provision", desired(docker_daemon, env={"MODE": "blue"}))
    assert made.state is ExecutionState.SUCCEEDED, made.error
    assert steps(made) == ["resolve-compute-provider", "provision-compute"]
    assert (made.output["status"], made.output["provider_type"]) == ("success", "docker")
    (endpoint,) = made.output["endpoints"]
    assert endpoint["address"] == "127.0.0.1"
    assert await fetch(endpoint["port"]) == docker_daemon.page
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["Id"] == made.output["resource_ids"]["container_id"]

    again = await run(provider, tenant, "provision", desired(docker_daemon, env={"MODE": "blue"}))
    assert again.state is ExecutionState.SUCCEEDED, again.error
    assert again.execution_id != made.execution_id
    assert again.output == made.output
    assert [c["Id"] for c in await tenant_containers(docker_client, tenant)] == [container["Id"]]

    changed = await run(provider, tenant, "update", desired(docker_daemon, env={"MODE": "green"}))
    assert changed.state is ExecutionState.SUCCEEDED, changed.error
    assert steps(changed) == ["resolve-compute-provider", "update-compute"]
    assert (changed.output["status"], changed.output["changes"]) == (
        "success", ["environment variables changed"])
    (recreated,) = await tenant_containers(docker_client, tenant)
    assert recreated["Id"] != container["Id"]
    assert "MODE=green" in recreated["Config"]["Env"]
    assert recreated["State"]["Running"]

    same = await run(provider, tenant, "update", desired(docker_daemon, env={"MODE": "green"}))
    assert (same.output["status"], same.output["changes"]) == ("no_changes", [])
    assert [c["Id"] for c in await tenant_containers(docker_client, tenant)] == [recreated["Id"]]

    planned = await run(provider, tenant, "plan")
    assert planned.output == {"status": "planned", "tenant_id": tenant}
    assert steps(planned) == []

    for _ in range(2):  # the second finds nothing: archived all the same
        deleted = await run(provider, tenant, "delete")
        assert deleted.state is ExecutionState.SUCCEEDED, deleted.error
        assert deleted.output == {"status": "archived", "tenant_id": tenant}
        assert await tenant_containers(docker_client, tenant) == []


@pytest.mark.parametrize(("config", "field", "says"), [
    ({"ports": [{"container_port": 70000}]}, "desired_config.ports[0].container_port",
     "between 1 and 65535"),
    ({"ports": [{"container_port": 8080, "host_port": -1}]}, "desired_config.ports[0].host_port",
     "between 1 and 65535"),
    ({"env": {"MODE": 1}}, "desired_config.env.MODE", "string"),
    ({"image": "Not A/Reference"}, "desired_config.image", "invalid reference format"),
    ({"volumes": ["/etc:/data"]}, "desired_config.volumes[0]", "outside the allowed volume roots"),
    ({"restart_policy": "sometimes"}, "desired_config.restart_policy", "must be one of"),
], ids=["container-port", "host-port", "env-not-string", "image", "volume", "restart-policy"])
async def test_malformed_desired_config_fails_naming_the_field(
    docker_daemon: DockerDaemon, docker_stack_provider: RestateProvider,
    docker_client: aiodocker.Docker, config: dict[str, Any], field: str, says: str,
) -> None:
    """A desired_config Docker cannot run fails at once (no retry), as
    `invalid_compute_config` naming the field; nothing is made, and another tenant's
    container is left as it was."""
    provider, other = docker_stack_provider, new_tenant()
    running = await run(provider, other, "provision", desired(docker_daemon))
    assert running.state is ExecutionState.SUCCEEDED, running.error
    (before,) = await tenant_containers(docker_client, other)

    tenant = new_tenant()
    failed = await run(provider, tenant, "provision", desired(docker_daemon, **config))
    assert failed.state is ExecutionState.FAILED
    assert failed.error is not None
    assert failed.error.code == "invalid_compute_config"
    assert failed.error.cause == field
    assert field in failed.error.message
    assert says in failed.error.message
    assert failed.metadata["retry_count"] == "0"
    assert await tenant_containers(docker_client, tenant) == []

    # the same bad config as an update of the running tenant: refused, nothing touched
    refused = await run(provider, other, "update", desired(docker_daemon, **config))
    assert refused.state is ExecutionState.FAILED
    assert refused.error is not None
    assert (refused.error.code, refused.error.cause) == ("invalid_compute_config", field)
    (after,) = await tenant_containers(docker_client, other)
    assert (after["Id"], after["State"]["Running"]) == (before["Id"], True)
    await run(provider, other, "delete")


async def test_a_volume_under_the_allowed_root_is_mounted(
    docker_daemon: DockerDaemon, docker_stack: LocalRestate,
    docker_stack_provider: RestateProvider, docker_client: aiodocker.Docker, tmp_path: Path,
) -> None:
    """A volume under `compute.docker.allowed_volume_roots` is accepted and mounted."""
    assert docker_stack.server.base_dir.parent.name.startswith("docker-stack")
    root = docker_stack.server.base_dir.parent / "volumes"
    tenant = new_tenant()
    made = await run(docker_stack_provider, tenant, "provision",
                     desired(docker_daemon, volumes=[f"{root}:/data:ro"]))
    assert made.state is ExecutionState.SUCCEEDED, made.error
    (container,) = await tenant_containers(docker_client, tenant)
    assert container["HostConfig"]["Binds"] == [f"{root}:/data:ro"]
    await run(docker_stack_provider, tenant, "delete")
