"""`make run` with `LANDLORD_RESTATE_DEMO_COMPUTE=docker`: a real container, its endpoint
printed, destroyed on Ctrl-C; and a clear word when no Docker answers."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import aiodocker

from landlord_restate.demo import COMPUTE_ENV, IMAGE_ENV, PORTS_ENV
from landlord_restate.testing._docker import DockerDaemon
from landlord_restate.testing._ports import free_port
from tests.compute.conftest import tenant_containers
from tests.compute.test_docker import fetch
from tests.conftest import ROOT


def demo_env(**extra: str) -> dict[str, str]:
    """The environment `make run` gets, on free ports."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WORKFLOW_RESTATE_", "OTEL_", "LANDLORD_", "DOCKER_"))}
    ports = ",".join(str(free_port()) for _ in range(4))
    return env | {PORTS_ENV: ports, "PYTHONPATH": str(ROOT), "LANDLORD_CONFIG": ""} | extra


async def test_make_run_on_docker_serves_a_tenant_and_destroys_it_on_ctrl_c(
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker, tmp_path: Path,
) -> None:
    """The demo provisions a container through the workflow, prints the compute result and
    the endpoint, which answers; Ctrl-C runs a delete: the container is gone."""
    shutil.copy(ROOT / "restate.toml", tmp_path / "restate.toml")  # its data goes here
    env = demo_env(**{COMPUTE_ENV: "docker", IMAGE_ENV: docker_daemon.image,
                      "DOCKER_HOST": docker_daemon.host})
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "landlord_restate.demo", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    try:
        assert demo.stdout is not None
        output = b""
        while b"serving;" not in output:
            line = await asyncio.wait_for(demo.stdout.readline(), 120)
            assert line, output.decode(errors="replace")
            output += line
        text = output.decode(errors="replace")
        assert "compute result (docker):" in text
        assert '"provider_type": "docker"' in text
        found = re.search(r"tenant acme answers at http://127\.0\.0\.1:(\d+)/", text)
        assert found, text
        assert await fetch(int(found.group(1))) == "hello from tenant acme\n"
        (container,) = await tenant_containers(docker_client, "acme")
        assert container["State"]["Running"]
        demo.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(demo.communicate(), 120)
        said = rest.decode(errors="replace")
        assert demo.returncode == 0, text + said
        assert 'tenant acme destroyed: {"status": "archived", "tenant_id": "acme"}' in said
        assert await tenant_containers(docker_client, "acme") == []
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()


async def test_make_run_on_docker_without_a_daemon_says_so(tmp_path: Path) -> None:
    """No Docker answers: the demo says where it looked and what to do, and starts nothing."""
    socket = tmp_path / "no-docker.sock"
    env = demo_env(**{COMPUTE_ENV: "docker", "DOCKER_HOST": f"unix://{socket}"})
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "landlord_restate.demo", cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(demo.communicate(), 60)
    said = err.decode()
    assert demo.returncode == 1, said
    assert f"Docker daemon at unix://{socket} (from DOCKER_HOST) does not answer" in said
    assert f"run without {COMPUTE_ENV}" in said
    assert "Traceback" not in said
    assert b"restate-server" not in out
