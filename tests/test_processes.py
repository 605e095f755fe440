"""No process started by the harness outlives a test or its owner, whatever the misuse or the
signal; and what goes wrong while starting is said plainly.

Processes are counted by walking /proc below their owner; every wait polls for a condition
with a deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from landlord_restate.demo import PORTS_ENV
from landlord_restate.testing import DeploymentProcess, LocalRestate
from landlord_restate.testing._ports import free_port
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)

#: what a local stack runs: the server binary and the handler deployment
STACK_COMMANDS = ("restate-server", "hypercorn")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[1])


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    stat = _stat(pid)
    return stat is not None and stat[0] != "Z"


def stack_processes(owner: int) -> set[int]:
    """The live restate-server and hypercorn processes anywhere below `owner`."""
    children: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        stat = _stat(int(entry))
        if stat is not None and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry))
    found, pending = set(), list(children.get(owner, []))
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, []))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if any(name in command for name in STACK_COMMANDS):
            found.add(pid)
    return found


async def wait_for(condition: Callable[[], bool], what: str, within: float = 15.0) -> None:
    """Poll until `condition()` holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not so after {within}s"
        await asyncio.sleep(0.05)


async def answers(url: str) -> bool:
    """`url` answers 200."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session, \
            session.get(url) as response:
        return response.status == 200


@pytest.fixture
async def own_stack() -> AsyncIterator[set[int]]:
    """The stack processes of this test process before the test; none new may remain."""
    before = stack_processes(os.getpid())
    yield before
    assert stack_processes(os.getpid()) - before == set()


async def test_a_second_start_is_refused_and_leaves_one_stack(own_stack: set[int]) -> None:
    """Entering a LocalRestate twice, or start() again: a clear error; one server and one
    deployment run on, in their temporary dir, and none is left after the exit."""
    local = LocalRestate()
    async with local:
        started = stack_processes(os.getpid()) - own_stack
        assert started == {local.server.pid, local.deployment.pid}
        base = local.server.base_dir
        with pytest.raises(RuntimeError, match="already started"):
            async with local:
                pass
        with pytest.raises(RuntimeError, match="already started"):
            await local.start()
        assert stack_processes(os.getpid()) - own_stack == started
        assert base.is_dir()
        assert await answers(f"{local.deployment.url}/health")
        assert await answers(f"{local.server.admin_url}/health")
    assert stack_processes(os.getpid()) - own_stack == set()
    assert not base.exists()


async def test_the_process_controls_are_all_coroutines(own_stack: set[int]) -> None:
    """`await local.kill_deployment()` (and the other three controls) work."""
    controls = ("kill_server", "restart_server", "kill_deployment", "restart_deployment")
    assert all(inspect.iscoroutinefunction(getattr(LocalRestate, c)) for c in controls)
    async with LocalRestate() as local:
        await local.kill_deployment()
        assert local.deployment.pid is None
        await local.restart_deployment()
        assert await answers(f"{local.deployment.url}/health")
        await local.kill_server()
        assert local.server.pid is None
        await local.restart_server()
        assert await answers(f"{local.server.admin_url}/health")


async def test_a_handler_module_that_does_not_import_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, own_stack: set[int]
) -> None:
    """The harness names the handler module that raised at import, and its exception."""
    (tmp_path / "needs_libfoo.py").write_text(
        'raise ImportError("libfoo.so.1: cannot open shared object file")\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError) as caught:
        async with LocalRestate(handlers=["needs_libfoo"], base_dir=tmp_path / "stack"):
            pass
    message = str(caught.value)
    assert "handler module 'needs_libfoo'" in message
    assert "ImportError: libfoo.so.1: cannot open shared object file" in message


@pytest.mark.parametrize(
    ("files", "module", "exception"),
    [
        ({"typo_handlers.py": "def broken(:\n    pass\n"}, "typo_handlers", "SyntaxError: "),
        ({"outer_handlers.py": "import inner_helper\n",
          "inner_helper.py": "raise ValueError('no config for region eu-9')\n"},
         "outer_handlers", "ValueError: no config for region eu-9"),
        ({"pkg_handlers/__init__.py": "from pkg_handlers import missing_part\n"},
         "pkg_handlers", "ImportError: cannot import name 'missing_part'"),
    ],
)
async def test_a_deployment_that_cannot_import_says_which_module_and_why(
    tmp_path: Path, files: dict[str, str], module: str, exception: str
) -> None:
    """A syntax error, an error in a module it imports, a package: module and exception."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
           "LANDLORD_RESTATE_HANDLERS": f"tests.handlers,{module}"}
    deployment = DeploymentProcess(tmp_path / "hypercorn.log", env=env, startup_timeout=30)
    with pytest.raises(RuntimeError) as caught:
        async with deployment:
            pass
    assert f"handler module {module!r}" in str(caught.value)
    assert exception in str(caught.value)


#: a separate owner of a stack: starts it, says its pids, then waits to be killed
OWNER = """
import asyncio, json, sys
from pathlib import Path
from landlord_restate.testing import LocalRestate

async def main() -> None:
    async with LocalRestate(base_dir=Path(sys.argv[1])) as local:
        pids = {"server": local.server.pid, "deployment": local.deployment.pid}
        print(json.dumps(pids), flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGHUP, signal.SIGTERM])
async def test_the_stack_ends_with_its_owner_however_it_ends(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """kill -9, a closed terminal or a plain kill of a process holding a LocalRestate: its
    restate-server and hypercorn end with it."""
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", OWNER, str(tmp_path), cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    stack: set[int] = set()
    try:
        assert owner.stdout is not None
        line = await asyncio.wait_for(owner.stdout.readline(), 60)
        pids = json.loads(line)
        stack = stack_processes(owner.pid)
        assert stack == {pids["server"], pids["deployment"]}
        os.kill(owner.pid, sig)
        await asyncio.wait_for(owner.wait(), 15)
        await wait_for(lambda: not any(alive(pid) for pid in stack), "the stack ended")
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        for pid in filter(alive, stack):  # only if the test failed: leave nothing behind
            os.kill(pid, signal.SIGKILL)


async def test_a_stack_outlives_the_thread_that_started_it(own_stack: set[int]) -> None:
    """Started from an event loop in a thread that then ends, the stack serves on (the
    parent-death signal follows the forking thread, so children fork from a lasting one)."""
    local = LocalRestate()
    thread = threading.Thread(target=lambda: asyncio.run(local.start()))
    thread.start()
    await asyncio.to_thread(thread.join, 60)
    try:
        await wait_for(lambda: not Path(f"/proc/self/task/{thread.native_id}").exists(),
                       "the starting thread is gone")
        assert all(pid is not None and alive(pid)
                   for pid in (local.server.pid, local.deployment.pid))
        assert await answers(f"{local.deployment.url}/health")
        assert await answers(f"{local.server.admin_url}/health")
    finally:
        await local.aclose()


def demo_env(ports: str) -> dict[str, str]:
    """The environment `make run` gets, on the given ports, logging kept quiet."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKFLOW_RESTATE_",
                                                                      "OTEL_"))}
    return env | {PORTS_ENV: ports, "PYTHONPATH": str(ROOT), "LANDLORD_CONFIG": ""}


async def test_sighup_stops_make_run_cleanly(tmp_path: Path) -> None:
    """`make run` in a terminal that closes (SIGHUP): it stops the stack and says so."""
    shutil.copy(ROOT / "restate.toml", tmp_path / "restate.toml")  # its data goes here
    ports = ",".join(str(free_port()) for _ in range(4))
    demo = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "landlord_restate.demo", cwd=tmp_path, env=demo_env(ports),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL,
    )
    stack: set[int] = set()
    try:
        assert demo.stdout is not None
        output = b""
        while b"serving;" not in output:
            line = await asyncio.wait_for(demo.stdout.readline(), 90)
            assert line, output.decode(errors="replace")
            output += line
        stack = stack_processes(demo.pid)
        assert len(stack) == 2, output.decode(errors="replace")
        demo.send_signal(signal.SIGHUP)
        rest, _ = await asyncio.wait_for(demo.communicate(), 30)
        assert demo.returncode == 0, (output + rest).decode(errors="replace")
        assert b"stopped" in rest
        assert not any(alive(pid) for pid in stack)  # stopped before the demo exited
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
        for pid in filter(alive, stack):
            os.kill(pid, signal.SIGKILL)


async def test_make_run_names_the_port_that_is_taken(tmp_path: Path) -> None:
    """A port `make run` needs is taken: which, by which process, and what to do; no
    traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = f"{free_port()},{port},{free_port()},{free_port()}"
        demo = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "landlord_restate.demo", cwd=tmp_path, env=demo_env(ports),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        _, err = await asyncio.wait_for(demo.communicate(), 60)
    said = err.decode()
    assert demo.returncode == 1, said
    assert f"port {port} (restate-server admin) is already in use by pid {os.getpid()}" in said
    assert f"kill {os.getpid()}" in said
    assert PORTS_ENV in said
    assert "Traceback" not in said
