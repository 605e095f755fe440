"""Where a test `DockerDaemon` lives on the host: a folder and a bridge of its own, and the
sweep of those a killed test left behind.

The folder (in the temporary directory, `landlord-dockerd-*`) holds the daemon's data root,
exec root, pidfile and socket, so it never meets the machine's own daemon or another
test's; the bridge (`lrd-<hex>`, a free /24 of 10.213.0.0/16) is its default network,
since `docker0` would be shared with any other daemon on the machine. A folder stays locked
(`owner.lock`) while its test process lives; one nobody holds is stale, and its container
processes, mounts, bridge and files are removed by the next daemon to start.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

_TMP = Path(tempfile.gettempdir())
_DIR_PREFIX = "landlord-dockerd-"
#: held while a folder is made or swept, so a sweep never takes a starting daemon's folder
_GLOBAL_LOCK = _TMP / "landlord-dockerd.lock"
_SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")
_MNT_DETACH = 2


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
