"""The test Docker daemon cleans up after itself, and after a test process that was killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiodocker

from landlord_restate.testing._docker import DockerDaemon
from landlord_restate.testing._docker_sandbox import _sweep_stale

#: a test process: starts a daemon and a container, says where, and waits to be killed
CHILD = """
import asyncio
import aiodocker
from landlord_restate.testing._docker import DockerDaemon

async def main():
    daemon = DockerDaemon()
    await daemon.start()
    async with aiodocker.Docker(url=daemon.host) as client:
        container = await client.containers.create({"Image": daemon.image})
        await container.start()
    print(daemon.pid, daemon.dir, daemon.bridge, flush=True)
    await asyncio.sleep(600)

asyncio.run(main())
"""


def processes_using(folder: Path) -> list[int]:
    """Pids whose command line mentions `folder` (dockerd, containerd, container shims)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if str(folder).encode() in cmdline:
                pids.append(int(proc.name))
    return pids


def bridge_exists(name: str) -> bool:
    """Whether the network interface `name` exists."""
    return Path(f"/sys/class/net/{name}").exists()


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


async def test_close_removes_everything() -> None:
    """On exit: every container removed, dockerd stopped, folder and bridge gone."""
    async with DockerDaemon() as daemon:
        folder, bridge = daemon.dir, daemon.bridge
        assert folder is not None
        assert bridge is not None
        assert bridge_exists(bridge)
        async with aiodocker.Docker(url=daemon.host) as client:
            container = await client.containers.create({"Image": daemon.image})
            await container.start()
        pid = daemon.pid
        assert pid is not None
    assert not alive(pid)
    assert not folder.exists()
    assert not bridge_exists(bridge)
    assert processes_using(folder) == []


def test_dockerd_dies_with_the_test_process() -> None:
    """A test process killed outright takes dockerd with it; the next daemon's start
    sweeps what the container processes, mounts and bridge left."""
    with subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    ) as child:
        try:
            assert child.stdout is not None
            pid_text, folder_text, bridge = child.stdout.readline().split()
            folder = Path(folder_text)
            assert alive(int(pid_text))
        finally:
            child.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive(int(pid_text)):
        assert time.monotonic() < deadline, "dockerd outlived its test process"
        time.sleep(0.05)
    assert folder.exists()
    started = time.monotonic()
    _sweep_stale()
    assert time.monotonic() - started < 10
    assert not folder.exists()
    assert not bridge_exists(bridge)
    assert processes_using(folder) == []
