"""A Docker daemon of the test's own: `dockerd` with its own folders, socket and bridge.

    async with DockerDaemon() as daemon:
        provider = create({"host": daemon.host, "host_ip": "127.0.0.1"})
        ... daemon.image ...   # a busybox image with httpd, built here (no registry)

Runs as root (dockerd needs it) with Debian's `docker.io` and `busybox-static`. Everything
lives in a temporary folder (data root, exec root, pidfile, unix socket), so it never
meets the machine's own daemon or another test's:

- `--storage-driver vfs`: works on any file system, also inside a container (overlayfs
  on overlayfs does not); images here are 2 MB, so copying them per container is cheap.
- `--iptables=false --ip6tables=false --ip-forward=false`: no firewall rules or sysctls of
  the host are touched; published ports work through Docker's userland proxy, which is
  all a test on the same host needs.
- `--bridge=<own bridge>`: the default bridge network (containers get an address and
  published ports) on a bridge created here (`lrd-<hex>`, a free /24 of 10.213.0.0/16),
  since `docker0`, the default, would be shared with any other daemon on the machine
  (`--bridge=none` would leave containers without a network to publish from).
- `--ip=127.0.0.1`: ports published without an address bind to loopback only.

`dockerd` ends with the test process however that ends (`PR_SET_PDEATHSIG`, and dockerd
takes its containerd with it); a folder left by a killed test (its container processes,
mounts and bridge) is swept by the next `DockerDaemon` to start. On exit every container is
removed, dockerd is stopped (SIGTERM, then SIGKILL), and the folder and bridge are gone.

This module runs the daemon; the folder, bridge and sweep are `_docker_sandbox`, the image's
files `_docker_image`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ipaddress
import json
import os
import shutil
import time
from pathlib import Path
from typing import IO

import aiohttp

from landlord_restate.testing._docker_image import (
    DEFAULT_IMAGE,
    DEFAULT_PAGE,
    _rootfs_tar,
    _static_busybox,
)
from landlord_restate.testing._docker_sandbox import (
    _clean_dir,
    _make_bridge,
    _make_dir,
    _sweep_stale,
)
from landlord_restate.testing._processes import _Process, _tail

__all__ = ["DockerDaemon"]


class DockerDaemon(_Process):
    """`dockerd` for one test session, an async context manager.

    `host` is its `unix://` address, `image` a busybox image (`/bin/busybox` and the
    `_docker_image.APPLETS` links: `sh`, `httpd`, ...) whose default command,
    `httpd -f -p 8080 -h /www`, serves `/www/index.html` (holding `page`).
    """

    def __init__(
        self,
        *,
        image: str = DEFAULT_IMAGE,
        page: str = DEFAULT_PAGE,
        startup_timeout: float = 30.0,
    ) -> None:
        self.image = image
        self.page = page
        self.startup_timeout = startup_timeout
        self.dir: Path | None = None
        #: the daemon's own bridge and its subnet, while it runs
        self.bridge: str | None = None
        self.subnet: ipaddress.IPv4Network | None = None
        self._owner_lock: IO[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        """The daemon's API socket."""
        if self.dir is None:
            raise RuntimeError("DockerDaemon is not started")
        return self.dir / "docker.sock"

    @property
    def host(self) -> str:
        """The daemon's address for a Docker client: `unix://<dir>/docker.sock`."""
        return f"unix://{self.socket_path}"

    async def start(self) -> None:
        """Start dockerd, wait until it answers `/_ping`, and build the image."""
        dockerd, busybox = _requirements()
        await asyncio.to_thread(_sweep_stale)
        folder, self._owner_lock = await asyncio.to_thread(_make_dir)
        self.dir = folder
        self.bridge, self.subnet = await asyncio.to_thread(_make_bridge, folder)
        (folder / "daemon.json").write_text("{}")
        argv = [
            dockerd,
            f"--data-root={folder / 'data'}",
            f"--exec-root={folder / 'x'}",
            f"--pidfile={folder / 'docker.pid'}",
            f"--host={self.host}",
            f"--config-file={folder / 'daemon.json'}",
            "--storage-driver=vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-forward=false",
            f"--bridge={self.bridge}",
            "--ip=127.0.0.1",
        ]
        env = {"PATH": os.environ.get("PATH", "") + ":/usr/sbin:/usr/bin:/sbin:/bin"}
        self._spawn(argv, env, folder / "dockerd.log")
        await self._wait_ready()
        await self._build_image(busybox)

    async def aclose(self) -> None:
        """Remove every container, stop dockerd, and remove its folder and bridge; safe to
        call twice."""
        if self.dir is not None and self.pid is not None:
            with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                await self.remove_containers()
        await asyncio.to_thread(self.stop)
        if self.dir is not None:
            await asyncio.to_thread(_clean_dir, self.dir)
            self.dir = None
        self.bridge = self.subnet = None
        if self._owner_lock is not None:
            self._owner_lock.close()
            self._owner_lock = None

    async def remove_containers(self) -> list[str]:
        """Remove every container of this daemon (killing those that run); their ids."""
        async with self._session() as session:
            async with session.get("http://docker/containers/json", params={"all": "1"}) as r:
                r.raise_for_status()
                ids = [c["Id"] for c in await r.json()]
            for container_id in ids:
                async with session.delete(
                    f"http://docker/containers/{container_id}", params={"force": "1"}
                ) as r:
                    if r.status not in (204, 404):
                        r.raise_for_status()
        return ids

    def _session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.UnixConnector(path=str(self.socket_path)),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def _wait_ready(self) -> None:
        assert self.dir is not None
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        log = self.dir / "dockerd.log"
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {self._process.returncode}: {_tail(log)}"
                )
            if self.socket_path.exists():
                try:
                    async with self._session() as session, session.get(
                        "http://docker/_ping", timeout=aiohttp.ClientTimeout(total=2)
                    ) as r:
                        if r.status == 200:
                            return
                except (aiohttp.ClientError, OSError, TimeoutError):
                    pass
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"dockerd did not answer /_ping within {self.startup_timeout}s: {_tail(log)}"
                )
            await asyncio.sleep(0.05)

    async def _build_image(self, busybox: str) -> None:
        """`docker import` of a rootfs holding the static busybox and its applet links."""
        rootfs = await asyncio.to_thread(_rootfs_tar, busybox, self.page)
        repo, _, tag = self.image.rpartition(":")
        params = [
            ("fromSrc", "-"), ("repo", repo), ("tag", tag),
            ("changes", 'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]'),
        ]
        async with self._session() as session, session.post(
            "http://docker/images/create", params=params, data=io.BytesIO(rootfs),
            headers={"Content-Type": "application/x-tar"},
        ) as r:
            body = await r.text()
        errors = [
            line for line in body.splitlines() if line.strip() and "error" in json.loads(line)
        ]
        if r.status != 200 or errors:
            raise RuntimeError(f"importing {self.image} failed ({r.status}): {body}")


def _requirements() -> tuple[str, str]:
    """dockerd and a static busybox, as root; a clear error otherwise."""
    if os.geteuid() != 0:
        raise RuntimeError("DockerDaemon runs dockerd, which needs root")
    dockerd = shutil.which("dockerd") or (
        "/usr/sbin/dockerd" if Path("/usr/sbin/dockerd").exists() else None
    )
    if dockerd is None:
        raise RuntimeError("dockerd not found: install Debian's docker.io")
    return dockerd, _static_busybox()
