"""Loopback ports: a free one for a process that cannot take a socket, and who holds a taken one.

`make run` serves on fixed ports; when one is taken it names the process that listens there
(read from /proc), so the message says what to stop rather than only that a bind failed.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
from collections.abc import Mapping
from pathlib import Path


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
