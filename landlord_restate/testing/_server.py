"""restate-server as a child process: its own loopback ports and data dir, ready when it serves.

Ready means admin and ingress answer and, by default, a query reaches every partition:
`/health` answers before the partitions have leaders again after a restart.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

from loguru import logger

from landlord_restate.restate.introspection import ALL_PARTITIONS_SQL
from landlord_restate.testing._binaries import find_server_binary
from landlord_restate.testing._ports import free_port
from landlord_restate.testing._processes import _Probe, _Process, _wait_healthy


class ServerProcess(_Process):
    """restate-server on 127.0.0.1, with its own ports and data dir.

    Its environment is the caller's plus `env`; an `env` that points its Lambda client at a
    local Lambda (`AWS_ENDPOINT_URL_LAMBDA`, see `LambdaProcess.server_env`) replaces the
    caller's AWS settings as a whole, so no key, profile or endpoint of the caller's reaches
    the server.
    """

    def __init__(
        self,
        base_dir: Path,
        *,
        ingress_port: int | None = None,
        admin_port: int | None = None,
        node_port: int | None = None,
        config_file: Path | None = None,
        binary: Path | None = None,
        startup_timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.base_dir = base_dir
        self.env = dict(env or {})
        self.ingress_port = ingress_port or free_port()
        self.admin_port = admin_port or free_port()
        self.node_port = node_port or free_port()
        self.config_file = config_file
        self.binary = binary or find_server_binary()
        self.startup_timeout = startup_timeout
        self.log_file = base_dir / "restate-server.log"

    @property
    def ingress_url(self) -> str:
        """Where the ingress listens."""
        return f"http://127.0.0.1:{self.ingress_port}"

    @property
    def admin_url(self) -> str:
        """Where the admin API (and the Restate UI) listens."""
        return f"http://127.0.0.1:{self.admin_port}"

    async def start(self, *, wait_for_partitions: bool = True) -> None:
        """Start (or restart on the same data dir) and wait until admin and ingress answer.

        With `wait_for_partitions` (the default) it also waits until a query reaches every
        partition; without it, it returns as soon as `/health` answers, as an operator's
        health check would.
        """
        if self.pid is not None:
            return
        started = time.monotonic()
        self.spawn()
        await self.wait_ready(wait_for_partitions=wait_for_partitions)
        logger.bind(admin=self.admin_url, ingress=self.ingress_url).debug(
            "restate-server healthy in {:.2f}s", time.monotonic() - started
        )

    def spawn(self) -> None:
        """Start the process without waiting for it (a cluster node waits for provisioning)."""
        if self.pid is not None:
            return
        local_lambda = "AWS_ENDPOINT_URL_LAMBDA" in self.env
        inherited = {k: v for k, v in os.environ.items()
                     if not (local_lambda and k.startswith("AWS_"))}
        env = {
            **inherited,
            **self.env,
            "RESTATE_BASE_DIR": str(self.base_dir),
            "RESTATE_BIND_IP": "127.0.0.1",
            "RESTATE_LISTEN_MODE": "tcp",
            "RESTATE_INGRESS__BIND_PORT": str(self.ingress_port),
            "RESTATE_ADMIN__BIND_PORT": str(self.admin_port),
            "RESTATE_BIND_PORT": str(self.node_port),
            "RESTATE_DISABLE_TELEMETRY": "true",
        }
        env.setdefault("RESTATE_LOG_FILTER", "warn,octocrab=off")
        if self.config_file is None:  # a laptop, not a cluster: start fast, stay small
            env.setdefault("RESTATE_DEFAULT_NUM_PARTITIONS", "4")
            env.setdefault("RESTATE_ROCKSDB_TOTAL_MEMORY_SIZE", "512 MiB")
        argv = [str(self.binary), "--no-logo"]
        if self.config_file is not None:
            argv += ["--config-file", str(self.config_file)]
        self._spawn(argv, env, self.log_file)

    async def wait_ready(self, *, wait_for_partitions: bool = True) -> None:
        """Wait until admin and ingress answer (and, by default, every partition does)."""
        assert self._process is not None, "spawn() first"
        probes: list[_Probe] = [
            ("GET", f"{self.admin_url}/health", None),
            ("GET", f"{self.ingress_url}/restate/health", None),
        ]
        if wait_for_partitions:
            # /health answers before the partitions have leaders again after a restart; a
            # query over every partition answers only once they do
            probes.append(("POST", f"{self.admin_url}/query", {"query": ALL_PARTITIONS_SQL}))
        await _wait_healthy(
            probes, self._process, self.startup_timeout, "restate-server", self.log_file
        )
