"""Child processes that end with their owner, and the start/stop shape every local object has.

Each object owns one process, starts it with `async with` (or `start()`), and stops it on
exit, also when a later start-up step fails; stopping waits in a thread, never blocking the
event loop. `kill()` is a real SIGKILL, for durability tests; `start()` again restarts on the
same data dir (server) or the same listening socket (deployment).

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
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import aiohttp

_STOP_GRACE = 10.0

#: a probe is (method, url, JSON body or None); ready when it answers 200
_Probe = tuple[str, str, object]


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


def startup_failure(
    what: str, app: str, log: Path, offset: int, env: Mapping[str, str], returncode: int
) -> str:
    """Why a process serving `app` ended before serving: the handler module that did not
    import and its exception, read from the traceback in its log (from `offset`); then the
    log's tail."""
    output = _tail(log, lines=400, offset=offset)
    tail = "\n".join(output.splitlines()[-20:])
    modules = [m.strip() for m in env.get("LANDLORD_RESTATE_HANDLERS", "").split(",")
               if m.strip()]
    found = import_failure(output, modules)
    if found is None:
        why = ""
    elif found[0] is None:
        why = f" {app} failed to load: {found[1]};"
    else:
        why = (f" handler module {found[0]!r} (LANDLORD_RESTATE_HANDLERS) failed to "
               f"import: {found[1]};")
    return f"{what} exited with {returncode} before serving:{why} output ({log}):\n{tail}"


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
