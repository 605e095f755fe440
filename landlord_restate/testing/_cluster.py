"""A local restate-server cluster: nodes of every role on loopback, provisioned with restatectl.

For the cluster demo (`make cluster`) and the tests of what survives losing a node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path

from loguru import logger

from landlord_restate.testing._binaries import find_restatectl
from landlord_restate.testing._processes import StartStop
from landlord_restate.testing._server import ServerProcess

CLUSTER_NAME = "landlord-cluster"
#: what restatectl 1.7.12 prints when the cluster is provisioned (by it, or before)
_PROVISIONED = ("has been successfully provisioned", "provisioned by somebody else",
                "already provisioned")


def _node_config(name: str, node: ServerProcess, peers: list[str], replication: int,
                 partitions: int) -> str:
    """The TOML of one cluster node: its own dir and ports, replicated log and metadata."""
    addresses = ", ".join(f'"{peer}"' for peer in peers)
    return f"""\
node-name = "{name}"
cluster-name = "{CLUSTER_NAME}"
base-dir = "{node.base_dir}"
auto-provision = false
default-replication = {replication}
default-num-partitions = {partitions}
listen-mode = "tcp"
bind-ip = "127.0.0.1"
bind-port = {node.node_port}
advertised-address = "http://127.0.0.1:{node.node_port}/"
log-filter = "warn,octocrab=off"
disable-telemetry = true
rocksdb-total-memory-size = "256 MiB"
default-journal-retention = "1d"
default-workflow-completion-retention = "1d"

[metadata-client]
type = "replicated"
addresses = [{addresses}]

[admin]
bind-port = {node.admin_port}

[ingress]
bind-port = {node.ingress_port}
"""


class LocalCluster(StartStop):
    """A restate-server cluster of `size` nodes on 127.0.0.1, provisioned with restatectl.

    Each node has every role, its own data dir and three ports; the log, the metadata and
    the partitions are replicated on `replication` nodes, so losing one of three loses
    nothing. `nodes[i].kill()` / `await nodes[i].start()` crash and restart one node.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        size: int = 3,
        replication: int = 2,
        partitions: int = 4,
        startup_timeout: float = 90.0,
        env: Mapping[str, str] | None = None,
        first_ports: tuple[int, int, int] | None = None,
    ) -> None:
        """`first_ports` (ingress, admin, node-to-node) numbers the nodes' ports from there
        (node i adds i); by default every port is a free one."""
        self.base_dir = base_dir
        self.replication = replication
        self.startup_timeout = startup_timeout
        self.restatectl = find_restatectl()
        ports = [
            (None, None, None) if first_ports is None else tuple(p + i for p in first_ports)
            for i in range(size)
        ]
        self.nodes = [
            ServerProcess(
                base_dir / f"n{i + 1}", startup_timeout=startup_timeout, env=env,
                ingress_port=ports[i][0], admin_port=ports[i][1], node_port=ports[i][2],
            )
            for i in range(size)
        ]
        peers = [f"http://127.0.0.1:{node.node_port}/" for node in self.nodes]
        for i, node in enumerate(self.nodes):
            node.base_dir.mkdir(parents=True, exist_ok=True)
            node.config_file = node.base_dir.parent / f"n{i + 1}.toml"
            node.config_file.write_text(
                _node_config(f"n{i + 1}", node, peers, replication, partitions)
            )

    @property
    def ingress_urls(self) -> list[str]:
        """Every node's ingress."""
        return [node.ingress_url for node in self.nodes]

    @property
    def admin_urls(self) -> list[str]:
        """Every node's admin API."""
        return [node.admin_url for node in self.nodes]

    @property
    def fabric_urls(self) -> list[str]:
        """Every node's node-to-node address (what restatectl talks to)."""
        return [f"http://127.0.0.1:{node.node_port}/" for node in self.nodes]

    async def start(self) -> None:
        """Start every node, provision the cluster once, wait until all partitions lead."""
        started = time.monotonic()
        for node in self.nodes:
            node.spawn()
        await self._provision(started + self.startup_timeout)
        for node in self.nodes:
            await node.wait_ready(wait_for_partitions=False)
        await self.nodes[0].wait_ready(wait_for_partitions=True)
        logger.bind(nodes=self.admin_urls).debug(
            "cluster of {} healthy in {:.2f}s", len(self.nodes), time.monotonic() - started
        )

    async def _provision(self, deadline: float) -> None:
        """`restatectl provision` until the cluster says it is (or already was) provisioned."""
        argv = [str(self.restatectl), "provision", "--address", self.fabric_urls[0], "--yes"]
        while True:
            process = await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL,
            )
            output, _ = await process.communicate()
            text = output.decode(errors="replace").lower()
            # restatectl exits 0 also when it could not connect: read what it says
            if any(done in text for done in _PROVISIONED):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"restatectl provision failed: {text[-2000:]}")
            await asyncio.sleep(0.3)

    async def restatectl_output(self, *args: str) -> str:
        """What `restatectl <args>` prints against the first live node (for status checks)."""
        node = next((i for i, n in enumerate(self.nodes) if n.pid is not None), 0)
        process = await asyncio.create_subprocess_exec(
            str(self.restatectl), *args, "--address", self.fabric_urls[node],
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            stdin=asyncio.subprocess.DEVNULL,
        )
        output, _ = await process.communicate()
        return output.decode(errors="replace")

    async def partition_leaders(self) -> dict[int, int]:
        """How many partitions each node (by index) leads, as `restatectl status` shows."""
        text = await self.restatectl_output("status")
        lines = text.splitlines()
        header = next((line for line in lines if "LEADER" in line and "NAME" in line), None)
        if header is None:
            return {}
        names, leaders = header.index("NAME"), header.index("LEADER")
        counts: dict[int, int] = {}
        for line in lines[lines.index(header) + 1:]:
            name = line[names:].split()[0] if len(line) > names else ""
            led = line[leaders:].split()[0] if len(line) > leaders else ""
            if name.startswith("n") and name[1:].isdigit() and led.isdigit():
                counts[int(name[1:]) - 1] = int(led)
        return counts

    async def restart(self) -> None:
        """Stop every node gracefully (SIGTERM), then start them all on the same data."""
        await self.aclose()
        started = time.monotonic()
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            await node.wait_ready(wait_for_partitions=False)
        await self.nodes[0].wait_ready(wait_for_partitions=True)
        logger.bind(nodes=self.admin_urls).debug(
            "cluster restarted in {:.2f}s", time.monotonic() - started
        )

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL after a grace period); safe twice."""
        for node in self.nodes:
            node.stop()

    async def aclose(self) -> None:
        """Stop every node from a worker thread: never blocking the event loop."""
        await asyncio.to_thread(self.stop)
