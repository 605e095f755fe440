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
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import io
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Literal

import aiohttp

from landlord_restate.testing._processes import _Process, _tail

__all__ = ["DockerDaemon"]

#: the image built from the static busybox: `httpd -f -p 8080 -h /www` unless told otherwise
DEFAULT_IMAGE = "landlord-test-busybox:1"
DEFAULT_PAGE = "hello from landlord\n"
#: the applets linked in /bin (`busybox <applet>` runs any other): a few dozen, since the
#: vfs driver copies every file of the image for each container (all 400 cost ~0.4 s each)
APPLETS = (
    "sh", "httpd", "nc", "wget", "sleep", "true", "false", "echo", "printf", "cat", "ls",
    "env", "id", "ps", "kill", "test", "[", "mkdir", "rm", "touch", "grep", "sed", "head",
    "tail", "date", "hostname", "pwd", "sync",
)
_TMP = Path(tempfile.gettempdir())
_DIR_PREFIX = "landlord-dockerd-"
#: held while a folder is made or swept, so a sweep never takes a starting daemon's folder
_GLOBAL_LOCK = _TMP / "landlord-dockerd.lock"
_SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
_MNT_DETACH = 2


class DockerDaemon(_Process):
    """`dockerd` for one test session, an async context manager.

    `host` is its `unix://` address, `image` a busybox image (`/bin/busybox` and the
    `APPLETS` links: `sh`, `httpd`, ...) whose default command, `httpd -f -p 8080 -h /www`,
    serves `/www/index.html` (holding `page`).
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
    for candidate in ("/bin/busybox", shutil.which("busybox")):
        if candidate and Path(candidate).exists() and _is_static(Path(candidate)):
            return dockerd, candidate
    raise RuntimeError("a static busybox was not found: install Debian's busybox-static")


def _is_static(binary: Path) -> bool:
    """An ELF executable without a program interpreter (PT_INTERP) runs in an empty rootfs."""
    with binary.open("rb") as f:
        header = f.read(64)
        if header[:4] != b"\x7fELF" or header[4] != 2:  # 64-bit ELF only
            return False
        order: Literal["little", "big"] = "little" if header[5] == 1 else "big"
        phoff = int.from_bytes(header[32:40], order)
        phentsize = int.from_bytes(header[54:56], order)
        phnum = int.from_bytes(header[56:58], order)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(
        int.from_bytes(table[i * phentsize:i * phentsize + 4], order) != 3  # PT_INTERP
        for i in range(phnum)
    )


def _rootfs_tar(busybox: str, page: str) -> bytes:
    """/bin/busybox, a link per applet of `APPLETS`, /www/index.html, /tmp, as a tar."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for folder in ("bin", "www", "tmp", "etc"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o1777 if folder == "tmp" else 0o755
            tar.addfile(info)
        tar.add(busybox, arcname="bin/busybox")
        for applet in APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        for name, text in (
            ("www/index.html", page),
            ("etc/passwd", "root:x:0:0:root:/:/bin/sh\n"),
            ("etc/group", "root:x:0:\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@contextlib.contextmanager
def _global_lock() -> Iterator[IO[bytes]]:
    with _GLOBAL_LOCK.open("ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield lock


def _make_dir() -> tuple[Path, IO[bytes]]:
    """A fresh folder, locked for as long as this process lives (the sweep's sign of life)."""
    with _global_lock():
        path = Path(tempfile.mkdtemp(prefix=_DIR_PREFIX, dir=_TMP))
        owner = (path / "owner.lock").open("ab")
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return path, owner


def _ip(*args: str, check: bool = True) -> str:
    """Run iproute2's `ip` (fixed arguments built here) and answer its output."""
    ip = shutil.which("ip") or "/usr/sbin/ip"
    done = subprocess.run(  # noqa: S603 - a resolved binary, arguments built here
        [ip, *args], capture_output=True, text=True, check=False,
    )
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _make_bridge(folder: Path) -> tuple[str, ipaddress.IPv4Network]:
    """A bridge of this daemon's own, with a free /24 of 10.213.0.0/16 and the first address
    as its gateway; recorded in the folder so a sweep can remove it."""
    with _global_lock():
        taken = []
        for line in _ip("-o", "-4", "route", "show", "table", "all").splitlines():
            with contextlib.suppress(ValueError):
                taken.append(ipaddress.ip_network(line.split()[0], strict=False))
        for line in _ip("-o", "-4", "addr").splitlines():
            with contextlib.suppress(ValueError, IndexError):
                taken.append(ipaddress.ip_network(line.split()[3], strict=False))
        candidates = [
            net for net in _SUBNETS.subnets(new_prefix=24)
            if not any(net.overlaps(other) for other in taken if other.prefixlen > 0)
        ]
        if not candidates:
            raise RuntimeError("no free /24 left in 10.213.0.0/16 for a test bridge")
        subnet = random.choice(candidates)  # noqa: S311 - spreading, not security
        name = f"lrd-{os.urandom(4).hex()}"
        (folder / "bridge").write_text(name)
        _ip("link", "add", "name", name, "type", "bridge")
        _ip("addr", "add", f"{subnet.network_address + 1}/{subnet.prefixlen}", "dev", name)
        _ip("link", "set", name, "up")
    return name, subnet


def _clean_dir(folder: Path) -> None:
    """What a daemon leaves: processes still using the folder (container shims), mounts
    under it, its bridge, the folder itself."""
    marker = str(folder)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marker.encode() in (proc / "cmdline").read_bytes():
                os.kill(int(proc.name), signal.SIGKILL)
    with contextlib.suppress(OSError):
        mounts = [
            line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
        ]
        umount2 = ctypes.CDLL(None, use_errno=True).umount2
        for mount in sorted((m for m in mounts if m.startswith(marker)), reverse=True):
            umount2(mount.encode(), _MNT_DETACH)
    with contextlib.suppress(OSError):
        bridge = (folder / "bridge").read_text().strip()
        if bridge.startswith("lrd-"):
            _ip("link", "del", bridge, check=False)
    shutil.rmtree(folder, ignore_errors=True)


def _sweep_stale() -> None:
    """Clean the folders of daemons whose test process is gone (nobody holds their lock)."""
    with _global_lock():
        for folder in _TMP.glob(f"{_DIR_PREFIX}*"):
            lock_path = folder / "owner.lock"
            try:
                with lock_path.open("ab") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except FileNotFoundError:
                continue  # not one of ours, or being removed
            except BlockingIOError:
                continue  # its owner is alive
            # dockerd died with its owner (PR_SET_PDEATHSIG); container processes did not
            _clean_dir(folder)
