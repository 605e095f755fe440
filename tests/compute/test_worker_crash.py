"""`kill -9` of the worker while several tenants provision through Docker: after a restart
every tenant has one container, no completed step ran again, and each step is journaled
once."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import aiodocker

from landlord_restate import ExecutionState, ProvisionRequest, RestateProvider
from landlord_restate.testing import LocalRestate
from landlord_restate.testing._docker import DockerDaemon
from tests.compute.conftest import (
    HTTPD,
    docker_worker_env,
    new_tenant,
    provider_config,
    tenant_containers,
    worker_config_file,
)
from tests.conftest import ROOT
from tests.waiting import wait_terminal

#: how long a slow tenant's provision waits after Docker made its container, unless
#: released (the test kills the worker well within it)
DELAY = 60.0


def marks(path: Path) -> list[list[str]]:
    """The lines the slow-docker provider wrote, split."""
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


async def run_steps(
    provider: RestateProvider, execution_ids: list[str]
) -> Counter[tuple[str, str]]:
    """(execution id, step name) -> how many `Command: Run` entries its journal holds."""
    ids = ", ".join(f"'{i}'" for i in execution_ids)
    rows = await provider.admin.query(
        "SELECT id, name FROM sys_journal WHERE entry_type = 'Command: Run' "
        f"AND id IN ({ids})"
    )
    return Counter((str(row["id"]), str(row["name"])) for row in rows)


async def test_kill_9_of_the_worker_mid_provisioning(
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker, tmp_path: Path,
) -> None:
    """Six tenants provision; three finish, three are in their provision step (their
    containers made, the step not yet journaled) when the worker is killed. After the
    restart: each tenant has one container (the one made before the kill), the finished
    provisions did not run again, the cut ones ran again and found their container, and
    every step is journaled once per run."""
    mark_file = tmp_path / "marks"
    config_file = worker_config_file(tmp_path / "worker", {
        "slow-docker": provider_config(docker_daemon, marks=str(mark_file),
                                       release=str(tmp_path / "release")),
    })
    env = docker_worker_env(config_file, WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER="slow-docker")
    async with LocalRestate(base_dir=tmp_path / "stack", config_file=ROOT / "restate.toml",
                            env=env) as local, RestateProvider(local.config()) as provider:
        await provider.register_deployment()
        tenants = [new_tenant() for _ in range(6)]
        slow = set(tenants[3:])
        started = {}
        for tenant in tenants:
            config = {"image": docker_daemon.image, "command": HTTPD,
                      "ports": [{"container_port": 8080}],
                      "delay_seconds": DELAY if tenant in slow else 0}
            result = await provider.invoke("tenant-provisioning", ProvisionRequest(
                tenant_id=tenant, desired_config=config))
            started[tenant] = result.execution_id
        for tenant in tenants[:3]:
            done = await wait_terminal(provider, started[tenant], within=60)
            assert done.state is ExecutionState.SUCCEEDED, done.error
        deadline = asyncio.get_running_loop().time() + 60
        while {m[1] for m in marks(mark_file) if m[0] == "provisioned"} != set(tenants):
            assert asyncio.get_running_loop().time() < deadline, marks(mark_file)
            await asyncio.sleep(0.1)
        before = {m[1]: m[2] for m in marks(mark_file) if m[0] == "provisioned"}
        for tenant in slow:
            status = await provider.get_execution_status(started[tenant])
            assert status.state is ExecutionState.RUNNING
            assert ("step_completed", "provision-compute") not in [
                (e.type, e.details.get("step")) for e in status.history]

        await local.kill_deployment()
        (tmp_path / "release").touch()  # the provisions run again after the restart: at once
        await local.restart_deployment()

        finals = {t: await wait_terminal(provider, started[t], within=60) for t in tenants}
        for tenant, final in finals.items():
            assert final.state is ExecutionState.SUCCEEDED, (tenant, final.error)
            containers = await tenant_containers(docker_client, tenant)
            assert [c["Id"] for c in containers] == [before[tenant]], tenant
            assert final.output["resource_ids"] == {"container_id": before[tenant]}
        calls = Counter(m[1] for m in marks(mark_file) if m[0] == "provision")
        assert {t: calls[t] for t in tenants} == {t: 2 if t in slow else 1 for t in tenants}
        journal = await run_steps(provider, list(started.values()))
        assert journal == Counter({
            (execution_id, step): 1 for execution_id in started.values()
            for step in ("resolve-compute-provider", "provision-compute")
        })
        for tenant in tenants:
            removed = await provider.invoke("tenant-provisioning", ProvisionRequest(
                tenant_id=tenant, operation="delete"))
            await wait_terminal(provider, removed.execution_id, within=60)
            assert await tenant_containers(docker_client, tenant) == []
