"""The handler deployment as a child process: `hypercorn services.app:app` on a held socket.

When it ends before serving, the error names the handler module that failed to import,
read from the traceback in its output, not only the output's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
from collections.abc import Mapping
from pathlib import Path

from landlord_restate.testing._processes import _Process, _wait_healthy, startup_failure
from services.settings import HYPERCORN_CONFIG


class DeploymentProcess(_Process):
    """`hypercorn services.app:app` on a socket this object holds open.

    Binding port 0 here and handing the socket to hypercorn (`fd://`) avoids guessing a
    free port, and a restart after `kill()` serves the very same address.
    """

    #: SIGTERM lets the Restate SDK tell in-flight invocations to wrap up; SIGINT stops
    #: hypercorn, since the SDK takes SIGTERM over from it at the app's first request
    _stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

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
                "--workers", "0", "--config", HYPERCORN_CONFIG]
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        self._spawn(argv, env, self.log_file, pass_fds=(fd,))
        assert self._process is not None
        await _wait_healthy(
            [("GET", f"{self.url}/health", None)], self._process, self.startup_timeout,
            "hypercorn", self.log_file, exited=self._exited,
        )

    def _exited(self, returncode: int) -> str:
        """Why hypercorn ended before serving (see `startup_failure`)."""
        return startup_failure("hypercorn", self.app, self.log_file, self._log_offset,
                               {**os.environ, **self.env}, returncode)

    def close(self) -> None:
        """Stop hypercorn and release the socket."""
        self.stop()
        with contextlib.suppress(OSError):
            self._socket.close()

    async def aclose(self) -> None:
        """`close()` in a worker thread: the grace period never blocks the event loop."""
        await asyncio.to_thread(self.close)
