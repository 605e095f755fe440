"""Tenants provisioned through the workflow on the docker compute provider, against the same
containers made with raw aiodocker calls (line 14), on a Docker daemon and a restate-server
of the line's own: its worker hosts the provider's services too, and registered on the
shared server it would stay their newest revision after it stops.

Both sides make the same container per tenant (the test busybox serving on 8080, published
on a free 127.0.0.1 port) at the same concurrency, in alternating rounds, in one run. The
workflow side is what Landlord's reconciler does: `invoke` a provision and wait for its end;
its overhead is the journaling (the run, its check of its workflow, its two steps) and what the
provider checks (does the container exist, is the image there, what runs now).
"""

from __future__ import annotations

import statistics
import uuid
from pathlib import Path
from typing import Any

import aiodocker
import attrs
import yaml

from landlord_restate import ProvisionRequest, RestateProvider, WorkflowSpec
from landlord_restate.testing import DeploymentProcess, ServerProcess
from landlord_restate.testing._docker import DockerDaemon
from tests.bench import ROOT, Bench, Run, gated, line

#: tenants per round, and how many are provisioned at once
TENANTS = 24
CONCURRENCY = 8
ROUNDS = 6
SERVICE = "BenchCompute"
HTTPD = ["httpd", "-f", "-p", "8080", "-h", "/www"]


def raw_config(image: str, tenant: str) -> dict[str, Any]:
    """The body the docker provider sends for the same tenant, less its plan labels."""
    return {
        "Image": image, "Cmd": HTTPD, "Env": [],
        "Labels": {"landlord.owner": "landlord", "landlord.tenant_id": tenant},
        "ExposedPorts": {"8080/tcp": {}},
        "HostConfig": {
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "0"}]},
            "RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "NetworkMode": "bridge",
        },
    }


async def clear(client: aiodocker.Docker) -> None:
    """Remove every container, so each round starts on an empty daemon."""
    for container in await client.containers.list(all=True):
        await container.delete(force=True)


async def compute_line(bench: Bench, base: Path) -> None:
    """Line 14: tenants/s provisioned through the workflow vs raw create+start."""
    server = ServerProcess(base / "compute-data", config_file=ROOT / "restate.toml")
    async with server, DockerDaemon() as daemon, aiodocker.Docker(url=daemon.host) as client:
        config_file = base / "compute-bench.yaml"
        config_file.write_text(yaml.safe_dump({"compute": {"docker": {
            "host": daemon.host, "host_ip": "127.0.0.1", "stop_timeout": 0}}}))
        worker = DeploymentProcess(base / "hypercorn-compute.log", env={
            "PYTHONPATH": str(ROOT), "LANDLORD_CONFIG": str(config_file),
            "WORKFLOW_RESTATE_SERVICE_NAME": SERVICE,
            "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "docker",
        })
        config = attrs.evolve(bench.provider.config, endpoint=server.ingress_url,
                              admin_endpoint=server.admin_url, deployment_url=worker.url,
                              service_name=SERVICE)
        async with worker, RestateProvider(config) as provider:
            workflow_id = f"bench-compute-{uuid.uuid4().hex[:8]}"
            await provider.create_workflow(WorkflowSpec(
                workflow_id=workflow_id, provider_type="restate",
                definition={"handler": "TenantProvisioning"}))
            ours: list[float] = []
            raw: list[float] = []
            for round_number in range(ROUNDS):
                run = uuid.uuid4().hex[:6]

                async def through_workflow(i: int, r: str = run) -> None:
                    started = await provider.invoke(workflow_id, ProvisionRequest(
                        tenant_id=f"w{r}-{i}", desired_config={
                            "image": daemon.image, "command": HTTPD,
                            "ports": [{"container_port": 8080}]}))
                    status = await provider.wait_execution(started.execution_id, timeout=120)
                    assert status.output["status"] == "success", status.error

                async def with_aiodocker(i: int, r: str = run) -> None:
                    tenant = f"r{r}-{i}"
                    container = await client.containers.create(
                        raw_config(daemon.image, tenant), name=f"landlord-tenant-{tenant}")
                    await container.start()

                # sides take turns going first: a daemon that slows down (or a neighbour
                # that gets busy) over a round weighs on both
                sides = [(ours, through_workflow), (raw, with_aiodocker)]
                for rates, side in sides if round_number % 2 == 0 else sides[::-1]:
                    rates.append(TENANTS / await gated(TENANTS, side, CONCURRENCY))
                    await clear(client)
    p, r = statistics.median(ours), statistics.median(raw)
    bench.add(f"14. tenants provisioned/s through docker, {TENANTS} at concurrency "
              f"{CONCURRENCY}", f"{p:.1f}/s", f"{r:.1f}/s (aiodocker)",
              f"{p / r:.2f}x (goal >= 0.8x)")


@line("14", order=950)  # a stack of its own, after the shared one's lines
async def _line_14(run: Run) -> None:
    await compute_line(run.bench, run.base)
