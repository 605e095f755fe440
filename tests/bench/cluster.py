"""The provider against raw Restate on a local 3-node cluster (line 12)."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from landlord_restate import RestateConfig, RestateProvider
from landlord_restate.testing import DeploymentProcess, LocalCluster
from tests.bench import ROOT, SERVICE, Bench, Run, line
from tests.bench.core import start_throughput, status_latency


async def on_the_cluster(base: Path, n: int = 1000) -> list[tuple[str, str, str, str]]:
    """Line 12: strict starts and status against a local 3-node cluster (replication 2),
    through a provider that knows all three nodes, against raw sends and queries."""
    lines: list[tuple[str, str, str, str]] = []
    env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": SERVICE}
    cluster = LocalCluster(base / "cluster")
    deployment = DeploymentProcess(base / "hypercorn-cluster.log", env=env,
                                   app="tests.bench_app:app")
    async with cluster, deployment:
        config = RestateConfig(endpoint=",".join(cluster.ingress_urls),
                               admin_endpoint=",".join(cluster.admin_urls),
                               deployment_url=deployment.url, service_name=SERVICE)
        async with RestateProvider(config) as provider, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256)
        ) as raw:
            bench = Bench(cluster.nodes[0], provider, raw, echo=False)
            await start_throughput(bench, provider, " (3-node cluster)", n=n, rounds=2)
            await status_latency(bench, n=30, rounds=3)
            for name, ours, theirs, ratio in bench.lines:
                label = name.split(". ", 1)[1].replace(" (3-node cluster)", "")
                lines.append((f"12. {label} (3-node cluster)", ours, theirs, ratio))
    return lines


@line("12", order=2000)  # a stack of its own, after the shared one's lines
async def _line_12(run: Run) -> None:
    for row in await on_the_cluster(run.base):
        run.bench.add(*row)
