"""Finding restate-server and restatectl: an env variable, PATH, or a checkout's `make setup`.

restate-server is resolved to the binary itself, past npm's node wrapper: killing the
wrapper would leave its child serving, so a process that must end with its owner has to be
the binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SERVER_BINARY_ENV = "RESTATE_SERVER_BIN"
_NPM_GLOB = ".restate/npm/node_modules/@restatedev/restate-server-*/bin/restate-server"
RESTATECTL_BINARY_ENV = "RESTATECTL_BIN"
_CTL_GLOB = ".restate/npm/node_modules/@restatedev/restatectl-*/bin/restatectl"


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


def describe_machine(root: Path | None = None) -> str:
    """Cores, Python and restate-server version: what every benchmark figure is reported with."""
    import platform

    version = subprocess.run(
        [str(find_server_binary(root)), "--version"], capture_output=True, text=True,
        check=False,
    ).stdout.strip()
    return f"{os.cpu_count()} cores, Python {platform.python_version()}, {version}"


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

