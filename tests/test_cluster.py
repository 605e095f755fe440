"""The provider on a real 3-node restate-server cluster (replication 2) that loses a node.

The provider knows all three nodes; the contract's core runs on the cluster, then a node
is killed with executions in flight. The long fault runs are in `make soak`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionState,
    RestateConfig,
    RestateProvider,
)
from landlord_restate.testing import DeploymentProcess, LocalCluster
from tests.conftest import ROOT, cli, deployment_env, spec_for, unique_id
from tests.faults import FaultReport, assert_clean, crash_scenario
from tests.waiting import read_marks, wait_status, wait_terminal

pytestmark = pytest.mark.timeout(600)

SERVICE = "ClusterTests"


@pytest.fixture(scope="module")
async def cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalCluster]:
    """Three restate-server nodes on loopback, provisioned, every partition led."""
    async with LocalCluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
async def cluster_deployment(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[DeploymentProcess]:
    """The handler deployment every node invokes."""
    log = tmp_path_factory.mktemp("cluster-hypercorn") / "hypercorn.log"
    env = deployment_env(WORKFLOW_RESTATE_SERVICE_NAME=SERVICE)
    async with DeploymentProcess(log, env=env) as served:
        yield served


def cluster_config(cluster: LocalCluster, deployment: DeploymentProcess) -> RestateConfig:
    """A provider configuration naming every node, as a user of a cluster writes it."""
    return RestateConfig(
        endpoint=",".join(cluster.ingress_urls),
        admin_endpoint=",".join(cluster.admin_urls),
        deployment_url=deployment.url,
        service_name=SERVICE,
    )


@pytest.fixture
async def on_cluster(
    cluster: LocalCluster, cluster_deployment: DeploymentProcess
) -> AsyncIterator[RestateProvider]:
    """An open provider that knows all three nodes."""
    async with RestateProvider(cluster_config(cluster, cluster_deployment)) as provider:
        yield provider


async def test_status_reads_in_turn_on_a_cluster_behind_one_address(
    cluster: LocalCluster, cluster_deployment: DeploymentProcess
) -> None:
    """A provider that knows one node of the cluster still learns it is a cluster (the
    server says its metadata lives on three nodes), so its status reads ask their two
    lookups in turn; at once they stall ~40 ms there. The status is right either way."""
    config = cluster_config(cluster, cluster_deployment)
    one = attrs.evolve(config, endpoint=cluster.ingress_urls[0],
                       admin_endpoint=cluster.admin_urls[0])
    async with RestateProvider(one) as provider:
        spec = spec_for("FiveSteps", unique_id("c-one"))
        await provider.create_workflow(spec)
        started = await provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
        status = await wait_terminal(provider, started.execution_id)
        assert status.state is ExecutionState.SUCCEEDED
        assert provider._room.parts.sql.single_node is False


async def test_the_contract_on_a_cluster(on_cluster: RestateProvider, tmp_path: Path) -> None:
    """Create, start, status with history, stop, timeout, callback and list on 3 nodes."""
    provider = on_cluster
    steps = spec_for("FiveSteps", unique_id("c-steps"))
    slow = spec_for("SlowSteps", unique_id("c-slow"))
    timed = spec_for("SlowSteps", unique_id("c-timeout"), timeout=timedelta(seconds=1))
    callback = spec_for("SleepThenCallback", unique_id("c-callback"))
    for spec in (steps, slow, timed, callback):
        await provider.create_workflow(spec)
    marks = tmp_path / "marks"
    ran = await provider.start_execution(
        steps.workflow_id, ExecutionInput(input={"marks": str(marks)})
    )
    stopped = await provider.start_execution(
        slow.workflow_id, ExecutionInput(input={"step_seconds": 30})
    )
    expired = await provider.start_execution(
        timed.workflow_id, ExecutionInput(input={"step_seconds": 30})
    )
    waiting = await provider.start_execution(callback.workflow_id, ExecutionInput(input={}))

    status = await wait_terminal(provider, ran.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert read_marks(marks) == [f"step-{i}" for i in range(1, 6)]
    completed = [e.details["step"] for e in status.history if e.type == "step_completed"]
    assert completed == [f"step-{i}" for i in range(1, 6)]

    await wait_status(provider, stopped.execution_id, lambda s: s.state is ExecutionState.RUNNING)
    await provider.stop_execution(stopped.execution_id, "cluster test")
    status = await wait_terminal(provider, stopped.execution_id)
    assert status.state is ExecutionState.STOPPED
    assert status.error is not None
    assert "cluster test" in status.error.message

    ended = await wait_terminal(provider, expired.execution_id)
    assert ended.state is ExecutionState.TIMEOUT, (ended.error, ended.history)

    await wait_status(provider, waiting.execution_id,
                      lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    await provider.post_compute_callback(
        waiting.execution_id,
        ComputeCallbackPayload(execution_id="c-1", tenant_id="t", status="succeeded"),
    )
    assert (await wait_terminal(provider, waiting.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )

    listed = await provider.list_executions(steps.workflow_id)
    assert [s.execution_id for s in listed] == [ran.execution_id]
    assert listed[0].state is ExecutionState.SUCCEEDED


async def test_doctor_reports_every_node(
    cluster: LocalCluster, cluster_deployment: DeploymentProcess, on_cluster: RestateProvider
) -> None:
    """`doctor` with the cluster's nodes checks each one; a node down is a FAIL by name."""
    await on_cluster.create_workflow(spec_for("GoPair", unique_id("c-doctor")))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_RESTATE_")},
        "WORKFLOW_RESTATE_ENDPOINT": ",".join(cluster.ingress_urls),
        "WORKFLOW_RESTATE_ADMIN_ENDPOINT": ",".join(cluster.admin_urls),
        "WORKFLOW_RESTATE_DEPLOYMENT_URL": cluster_deployment.url,
        "WORKFLOW_RESTATE_SERVICE_NAME": SERVICE,
        "LANDLORD_CONFIG": "",
        "PYTHONPATH": str(ROOT),
    }
    done = cli(env, "doctor")
    assert done.returncode == 0, done.stdout + done.stderr
    for node in cluster.nodes:
        assert f"ok   admin health: admin API answers at {node.admin_url}" in done.stdout
        assert f"ok   ingress: ingress answers at {node.ingress_url}" in done.stdout
    assert "ok   deployment" in done.stdout

    last = cluster.nodes[-1]
    last.kill()
    try:
        done = cli(env, "doctor")
    finally:
        await last.start(wait_for_partitions=False)
    assert done.returncode == 1
    assert f"FAIL admin health: cannot reach Restate at {last.admin_url}" in done.stdout
    assert f"FAIL ingress: cannot reach Restate at {last.ingress_url}" in done.stdout
    assert f"ok   admin health: admin API answers at {cluster.nodes[0].admin_url}" in done.stdout
    assert "ok   deployment" in done.stdout  # the survivors still answer for the cluster


async def kill_node(
    cluster: LocalCluster, provider: RestateProvider, which: int, fault: str, n: int,
    marks: Path,
) -> FaultReport:
    """kill -9 node `which` with n executions in flight; restart it once the rest carried on."""
    node = cluster.nodes[which]

    async def recover() -> None:
        await asyncio.sleep(3.0)  # the survivors take over the killed node's partitions
        await node.start(wait_for_partitions=False)

    return await crash_scenario(fault, provider, n, marks, node.kill, recover)


def node_of(provider: RestateProvider, cluster: LocalCluster) -> int:
    """Which node the provider's admin client is talking to now."""
    return cluster.admin_urls.index(provider.admin.endpoint)


async def test_losing_the_providers_node_mid_run(
    cluster: LocalCluster, on_cluster: RestateProvider, tmp_path: Path
) -> None:
    """kill -9 of the node the provider talks to: everything completes once, calls go on."""
    which = node_of(on_cluster, cluster)
    report = await kill_node(
        cluster, on_cluster, which, "cluster: kill -9 the provider's node", 6, tmp_path / "m"
    )
    assert_clean(report)
    # the killed node rejoined: it answers, and sees the cluster's rows
    rejoined = cluster.nodes[which]
    rows = await on_cluster.admin.query("SELECT count(*) AS n FROM sys_invocation")
    assert rows[0]["n"] > 0
    assert rejoined.pid is not None


async def answers_alone(url: str, within: float = 60.0) -> None:
    """Wait until this one node's admin API answers a query over every partition."""
    import aiohttp

    deadline = asyncio.get_running_loop().time() + within
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.post(
                f"{url}/query", json={"query": "SELECT count(*) AS n FROM sys_invocation"},
                headers={"accept": "application/json"},
            ) as resp:
                if resp.status == 200:
                    return
            assert asyncio.get_running_loop().time() < deadline, f"{url} did not rejoin"
            await asyncio.sleep(0.2)


async def test_losing_a_node_that_is_not_the_providers(
    cluster: LocalCluster, on_cluster: RestateProvider, tmp_path: Path
) -> None:
    """kill -9 of another node: the provider never notices; the node rejoins after."""
    which = (node_of(on_cluster, cluster) + 1) % len(cluster.nodes)
    report = await kill_node(
        cluster, on_cluster, which, "cluster: kill -9 another node", 6, tmp_path / "m"
    )
    assert_clean(report)
    await answers_alone(cluster.admin_urls[which])


@pytest.mark.soak
@pytest.mark.parametrize("target", ["other", "leader", "provider"])
async def test_soak_losing_a_node(
    cluster: LocalCluster, on_cluster: RestateProvider, tmp_path: Path, target: str
) -> None:
    """30 executions in flight; kill -9 another node, the partition leader, or ours."""
    ours = node_of(on_cluster, cluster)
    if target == "leader":
        leaders = await cluster.partition_leaders()
        which = max(leaders, key=lambda i: leaders[i]) if leaders else 0
        fault = f"cluster: kill -9 the leader of most partitions (n{which + 1})"
    elif target == "provider":
        which, fault = ours, "cluster: kill -9 the provider's node"
    else:
        which, fault = (ours + 1) % len(cluster.nodes), "cluster: kill -9 another node"
    assert_clean(await kill_node(cluster, on_cluster, which, fault, 30, tmp_path / "m"))
    await answers_alone(cluster.admin_urls[which])


@pytest.mark.soak
async def test_soak_full_cluster_restart_keeps_everything(
    cluster: LocalCluster, on_cluster: RestateProvider, tmp_path: Path
) -> None:
    """SIGTERM every node, start them all: every execution completes once, every spec stays."""
    report = await crash_scenario(
        "cluster: SIGTERM all 3 nodes, start all", on_cluster, 30, tmp_path / "m",
        lambda: None, cluster.restart,
    )
    assert_clean(report)
    spec = spec_for("GoPair", unique_id("c-after"))
    await on_cluster.create_workflow(spec)
    await cluster.restart()
    # the spec written before the restart is still there: a start finds it
    result = await on_cluster.start_execution(spec.workflow_id, ExecutionInput(input={}))
    assert (await wait_terminal(on_cluster, result.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )
