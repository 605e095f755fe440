"""`python -m services` (console script `landlord-restate-worker`): the handler deployment,
Landlord's worker, taking Landlord's flags.

    python -m services [--workflow.restate.<key>=<value> ...] [hypercorn options]

Serves `services.app:app` with hypercorn in this process (its own CLI would refuse the
flags). The `--workflow.restate.*` flags (also `--workflow.restate.<key> <value>`) come
over the config file (`$LANDLORD_CONFIG`) and the `WORKFLOW_RESTATE_*` environment, as in
Landlord; they are checked here first (with the `compute:` section), so a wrong one stops
the start naming it, then handed to the app in `LANDLORD_RESTATE_FLAGS` (hypercorn may start
the app in a worker process of its own). Every other argument is hypercorn's (`--bind`,
`--workers`, ...); without `--bind` it serves on 127.0.0.1:9080, where `make run` and the
provider's `local` mechanism expect it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence

from landlord_restate.restate.settings import FLAG_PREFIX, split_flags
from landlord_restate.workflow.errors import ConfigError
from services.settings import HYPERCORN_CONFIG

APP = "services.app:app"
DEFAULT_BIND = "127.0.0.1:9080"
_BIND_OPTIONS = ("-b", "--bind", "--insecure-bind", "--quic-bind")
USAGE = (
    "usage: python -m services [--workflow.restate.<key>=<value> ...] [hypercorn options]\n"
    "  serves services.app:app (Landlord's worker: TenantProvisioning and the handlers in\n"
    "  LANDLORD_RESTATE_HANDLERS); flags over $LANDLORD_CONFIG and WORKFLOW_RESTATE_*.\n"
    f"  Without --bind: {DEFAULT_BIND}. hypercorn's options follow.\n"
)


def hypercorn_args(rest: Sequence[str]) -> list[str]:
    """hypercorn's arguments: the app, then the caller's, with the default bind and the
    Restate settings (`services.hypercorn_config`) when the caller gave none."""
    def given(options: Sequence[str]) -> bool:
        return any(arg == option or arg.startswith(f"{option}=")
                   for arg in rest for option in options)

    return [APP, *([] if given(_BIND_OPTIONS) else ["--bind", DEFAULT_BIND]),
            *([] if given(("--config",)) else ["--config", HYPERCORN_CONFIG]), *rest]


def main(argv: Sequence[str] | None = None) -> int:
    """Check the flags, then serve until hypercorn stops; 2 when a setting is wrong."""
    from services.assembly import import_handler_modules
    from services.compute import WorkerCompute
    from services.settings import FLAGS_ENV, DeploymentSettings

    args = list(sys.argv[1:] if argv is None else argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(USAGE, file=sys.stderr)
    try:
        flags, rest = split_flags(args)
        passed = tuple(f"{FLAG_PREFIX}{key}={value}" for key, value in flags.items())
        settings = DeploymentSettings.load(os.environ, passed)
        # the handler modules may add compute providers (register_factory)
        import_handler_modules(settings.handler_modules)
        WorkerCompute.load(settings.worker, settings.compute)
    except ConfigError as exc:
        print(f"landlord-restate-worker: {exc.message}", file=sys.stderr)
        return 2
    os.environ[FLAGS_ENV] = json.dumps(list(passed))
    from hypercorn.__main__ import main as hypercorn_main

    return hypercorn_main(hypercorn_args(rest))


if __name__ == "__main__":
    sys.exit(main())
