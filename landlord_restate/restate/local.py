"""Local Restate processes: restate-server, a cluster of them, and the handler deployment.

Internal: the public harness is `landlord_restate.testing` (which builds on these), used by
`make run`, `make cluster` and the tests. Each object owns one process, starts it with
`async with` (or `start()`), and stops it on exit, also when a later start-up step fails;
stopping waits in a thread, never blocking the event loop. `kill()` is a real SIGKILL,
for durability tests; `start()` again restarts on the same data dir (server) or the same
listening socket (deployment).

Every process started here ends with its owner, however the owner ends (`kill -9`, a closed
terminal): on Linux each child asks the kernel for SIGKILL when its parent dies
(`PR_SET_PDEATHSIG`). The kernel sends it when the *thread* that forked the child ends, so
children are forked from one thread that lives as long as the process, never from the
caller's (possibly short-lived) thread. restate-server is started as the binary itself (not
npm's node wrapper, whose child would outlive it) and hypercorn without worker processes,
so the signal reaches every process that serves.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ctypes
import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import aiohttp
from loguru import logger

from landlord_restate.restate.introspection import ALL_PARTITIONS_SQL

SERVER_BINARY_ENV = "RESTATE_SERVER_BIN"
_NPM_GLOB = ".restate/npm/node_modules/@restatedev/restate-server-*/bin/restate-server"
_STOP_GRACE = 10.0


def free_port() -> int:
    """A port free on 127.0.0.1 right now (for processes that cannot take a socket)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PortInUseError(OSError):
    """A fixed port another process already listens on; `pid` and `command` name that
    process when /proc shows it."""

    def __init__(self, port: int, what: str, holder: tuple[int, str] | None) -> None:
        self.port = port
        self.what = what
        self.pid: int | None = holder[0] if holder else None
        self.command: str | None = holder[1] if holder else None
        by = (f" by pid {self.pid} ({self.command})" if holder
              else " (by a process this user cannot see)")
        super().__init__(errno.EADDRINUSE, f"port {port} ({what}) is already in use{by}")

    def __str__(self) -> str:
        return str(self.strerror)


def port_holder(port: int) -> tuple[int, str] | None:
    """(pid, command line) of the process listening on TCP `port`, from /proc; None when no
    listener is found or its process is not readable."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                # local address hex "IP:PORT", state 0A is LISTEN, field 9 the inode
                if len(fields) > 9 and fields[3] == "0A" and \
                        int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    if not inodes:
        return None
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(os.readlink(fds / fd) in inodes for fd in os.listdir(fds)):
                raw = Path(f"/proc/{pid}/cmdline").read_bytes()
                command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
                return int(pid), command[:200]
    return None


def check_ports_free(ports: Mapping[int, str]) -> None:
    """Raise `PortInUseError` for the first of `ports` (port: what it is for) that another
    process listens on."""
    for port, what in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as error:
                if error.errno != errno.EADDRINUSE:
                    raise
                raise PortInUseError(port, what, port_holder(port)) from None


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above `start` (default: cwd) holding restate.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "restate.toml").is_file():
            return folder
    return here


def find_server_binary(root: Path | None = None) -> Path:
    """restate-server: $RESTATE_SERVER_BIN, else `restate-server` on PATH, else the binary a
    checkout of this project installs with `make setup` (found from `root`, the working
    directory, or this package's own location)."""
    explicit = os.environ.get(SERVER_BINARY_ENV)
    if explicit:
        return _past_node_wrapper(Path(explicit))
    on_path = shutil.which("restate-server")
    if on_path:
        return _past_node_wrapper(Path(on_path))
    checkouts = {project_root(root), project_root(Path(__file__).parent)}
    for checkout in sorted(checkouts):
        found = sorted(checkout.glob(_NPM_GLOB))
        if found:
            return found[0]
    raise FileNotFoundError(
        f"restate-server not found: set {SERVER_BINARY_ENV} to the binary, put "
        f"`restate-server` on PATH (npm install -g @restatedev/restate-server), or run "
        f"`make setup` in a checkout of landlord-restate (looked in "
        f"{', '.join(str(c / '.restate/npm') for c in sorted(checkouts))})"
    )


def _past_node_wrapper(binary: Path) -> Path:
    """The real restate-server behind npm's node wrapper (`npm install -g` puts the wrapper
    on PATH): killing the wrapper would leave its child serving. Anything else as it is."""
    try:
        with binary.open("rb") as head:
            if head.read(2) != b"#!":
                return binary
    except OSError:
        return binary
    package = binary.resolve().parent.parent  # .../@restatedev/restate-server/lib/index.js
    for pattern in ("node_modules/@restatedev/restate-server-*/bin/restate-server",
                    "../restate-server-*/bin/restate-server"):
        found = sorted(package.glob(pattern))
        if found:
            return found[0].resolve()
    return binary


#: a probe is (method, url, JSON body or None); ready when it answers 200
_Probe = tuple[str, str, object]


def describe_machine(root: Path | None = None) -> str:
    """Cores, Python and restate-server version: what every benchmark figure is reported with."""
    import platform

    version = subprocess.run(
        [str(find_server_binary(root)), "--version"], capture_output=True, text=True,
        check=False,
    ).stdout.strip()
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {version}"


async def _wait_healthy(
    probes: list[_Probe], process: subprocess.Popen[bytes], within: float, what: str, log: Path,
    exited: Callable[[int], str] | None = None,
) -> None:
    """Probe until each answers 200; `exited(returncode)` says why the process ended early."""
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        pending = list(probes)
        while pending:
            if process.poll() is not None:
                if exited is not None:
                    raise RuntimeError(exited(process.returncode))
                raise RuntimeError(f"{what} exited with {process.returncode}: {_tail(log)}")
            method, url, body = pending[0]
            try:
                async with session.request(method, url, json=body) as resp:
                    if resp.status == 200:
                        pending.pop(0)
                        continue
            except (aiohttp.ClientError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what} not healthy after {within}s: {_tail(log)}")
            await asyncio.sleep(0.05)


def _tail(path: Path, lines: int = 20, offset: int = 0) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def import_failure(output: str, modules: Sequence[str]) -> tuple[str | None, str] | None:
    """(the named module that failed, the exception line) from the last Python traceback in
    `output`; the module is None when the traceback runs through none of `modules`."""
    start = output.rfind("Traceback (most recent call last):")
    if start < 0:
        return None
    lines = output[start:].splitlines()[1:]
    exception = next((line for line in lines if line and not line[0].isspace()), None)
    if exception is None:
        return None
    files = [match.group(1) for line in lines
             if (match := re.match(r'\s+File "([^"]+)"', line))]
    for file in files:  # outermost first: the module named, not one that it imports
        for module in modules:
            path = module.replace(".", "/")
            if file.endswith((f"/{path}.py", f"/{path}/__init__.py")):
                return module, exception
    missing = re.search(r"No module named '([^']+)'", exception)
    if missing:
        for module in modules:
            if module == missing.group(1) or module.startswith(f"{missing.group(1)}."):
                return module, exception
    return None, exception


#: PR_SET_PDEATHSIG from <linux/prctl.h>
_PR_SET_PDEATHSIG = 1
#: the one thread every child is forked from, per process (a forked copy of this process
#: has no thread behind an inherited executor): it lives as long as the process, so the
#: parent-death signal fires when the process ends, not when a caller's thread does
_SPAWNERS: dict[int, ThreadPoolExecutor] = {}


def _spawner() -> ThreadPoolExecutor:
    pid = os.getpid()
    if pid not in _SPAWNERS:
        _SPAWNERS.clear()
        _SPAWNERS[pid] = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="landlord-restate-spawner"
        )
    return _SPAWNERS[pid]


def _die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` asking the kernel to SIGKILL the child when this process ends (Linux;
    None elsewhere). Everything it calls is resolved before the fork."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent, kill = os.getpid(), int(signal.SIGKILL)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, kill)
        if os.getppid() != parent:  # the owner died before the request took effect
            os.kill(os.getpid(), kill)

    return preexec


def _popen(
    argv: list[str], env: dict[str, str], log: IO[bytes], pass_fds: tuple[int, ...]
) -> subprocess.Popen[bytes]:
    """Start a child on the spawner thread, tied to this process's life; in a session of its
    own, so kill() and stop() reach its whole process group."""
    def fork() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, pass_fds=pass_fds, preexec_fn=_die_with_parent(),
        )

    return _spawner().submit(fork).result()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the child and everything it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def _terminate(
    process: subprocess.Popen[bytes] | None, signals: tuple[signal.Signals, ...]
) -> None:
    if process is None:
        return
    if process.poll() is None:
        for sig in signals:
            _signal_group(process, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_STOP_GRACE)
    _signal_group(process, signal.SIGKILL)  # whatever of the group is left
    process.wait()


class StartStop(abc.ABC):
    """An async context manager that starts in `start()` and cleans up in `aclose()`,
    also when `start()` fails half way (whatever it had started is stopped again)."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start and wait until ready."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Stop what was started; safe to call twice."""

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _Process(StartStop):
    """One child process with a log file; async context manager."""

    _process: subprocess.Popen[bytes] | None = None
    _log_handle: IO[bytes] | None = None
    #: where this run's output starts in the log (earlier runs append to the same file)
    _log_offset: int = 0
    #: what asks the process to shut down cleanly (SIGKILL follows after a grace period)
    _stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)

    async def aclose(self) -> None:
        """`stop()` in a worker thread: the grace period never blocks the event loop."""
        await asyncio.to_thread(self.stop)

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._process.pid if self._process and self._process.poll() is None else None

    def _spawn(
        self, argv: list[str], env: Mapping[str, str], log: Path, pass_fds: tuple[int, ...] = ()
    ) -> None:
        log.parent.mkdir(parents=True, exist_ok=True)
        if self._log_handle is not None:  # a restart after kill()
            self._log_handle.close()
        self._log_handle = log.open("ab")
        self._log_offset = self._log_handle.tell()
        self._process = _popen(argv, dict(env), self._log_handle, pass_fds)

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a crash would: no shutdown, nothing flushed."""
        if self._process is not None:
            _signal_group(self._process, signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; safe to call twice."""
        _terminate(self._process, self._stop_signals)
        self._process = None
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None


class ServerProcess(_Process):
    """restate-server on 127.0.0.1, with its own ports and data dir."""

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
        env = {
            **os.environ,
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


class DeploymentProcess(_Process):
    """`hypercorn services.app:app` on a socket this object holds open.

    Binding port 0 here and handing the socket to hypercorn (`fd://`) avoids guessing a
    free port, and a restart after `kill()` serves the very same address.
    """

    #: SIGTERM lets the Restate SDK tell in-flight invocations to wrap up; SIGINT stops
    #: hypercorn, since the SDK takes SIGTERM over from it at the app's first request
    _stop_signals = (signal.SIGTERM, signal.SIGINT)

    def __init__(
        self,
        log_file: Path,
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        app: str = "services.app:app",
        startup_timeout: float = 30.0,
    ) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", port))
        self._socket.listen(128)
        self._socket.set_inheritable(True)
        self.port: int = self._socket.getsockname()[1]
        self.log_file = log_file
        self.env = dict(env or {})
        self.app = app
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        """The deployment URL to register with Restate."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start (or restart) hypercorn on the held socket; wait until it answers /health."""
        if self.pid is not None:
            return
        fd = self._socket.fileno()
        # --workers 0: serve in hypercorn's own process; a worker process would outlive a
        # hypercorn killed by its parent's death (and hide an import error behind exit 0)
        argv = [sys.executable, "-m", "hypercorn", self.app, "--bind", f"fd://{fd}",
                "--workers", "0"]
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._spawn(argv, env, self.log_file, pass_fds=(fd,))
        assert self._process is not None
        await _wait_healthy(
            [("GET", f"{self.url}/health", None)], self._process, self.startup_timeout,
            "hypercorn", self.log_file, exited=self._exited,
        )

    def _exited(self, returncode: int) -> str:
        """Why hypercorn ended before serving: the handler module that did not import and
        its exception, read from the traceback in its output; then the output's tail."""
        output = _tail(self.log_file, lines=400, offset=self._log_offset)
        tail = "\n".join(output.splitlines()[-20:])
        modules = [m.strip() for m in {**os.environ, **self.env}.get(
            "LANDLORD_RESTATE_HANDLERS", "").split(",") if m.strip()]
        found = import_failure(output, modules)
        if found is None:
            why = ""
        elif found[0] is None:
            why = f" {self.app} failed to load: {found[1]};"
        else:
            why = (f" handler module {found[0]!r} (LANDLORD_RESTATE_HANDLERS) failed to "
                   f"import: {found[1]};")
        return (f"hypercorn exited with {returncode} before serving:{why} "
                f"output ({self.log_file}):\n{tail}")

    def close(self) -> None:
        """Stop hypercorn and release the socket."""
        self.stop()
        with contextlib.suppress(OSError):
            self._socket.close()

    async def aclose(self) -> None:
        """`close()` in a worker thread: the grace period never blocks the event loop."""
        await asyncio.to_thread(self.close)


RESTATECTL_BINARY_ENV = "RESTATECTL_BIN"
_CTL_GLOB = ".restate/npm/node_modules/@restatedev/restatectl-*/bin/restatectl"
CLUSTER_NAME = "landlord-cluster"
#: what restatectl 1.7.12 prints when the cluster is provisioned (by it, or before)
_PROVISIONED = ("has been successfully provisioned", "provisioned by somebody else",
                "already provisioned")


def find_restatectl(root: Path | None = None) -> Path:
    """restatectl: $RESTATECTL_BIN, else the one `make setup` installed."""
    explicit = os.environ.get(RESTATECTL_BINARY_ENV)
    if explicit:
        return Path(explicit)
    found = sorted(project_root(root).glob(_CTL_GLOB))
    if not found:
        raise FileNotFoundError(
            f"restatectl not found under {project_root(root)}/.restate: run `make setup` "
            f"or set {RESTATECTL_BINARY_ENV}"
        )
    return found[0]


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
