"""Test your handlers against a real Restate: a server and your handler deployment, local.

    from landlord_restate.testing import LocalRestate

    async with LocalRestate(handlers=["my_handlers"]) as local:
        async with RestateProvider(local.config()) as provider:
            ...

`LocalRestate` starts `restate-server` on free loopback ports with a temporary data dir,
and `hypercorn services.app:app` hosting the handler modules you name, waits until both
serve, and stops both on exit, also when start-up fails half way. The server binary is
`$RESTATE_SERVER_BIN`, else `restate-server` on PATH, else the one a checkout of this
project installs with `make setup` (`.restate/npm`). `kill_*` and `restart_*` (all
coroutines) crash and bring back either process, for durability tests; `LocalCluster` is a
3-node cluster. A `LocalRestate` starts once: a second start while it runs is an error, and
both processes end with the process that started them, however it ends.

`LocalRestate(execution_mechanism="lambda")` runs the handlers as an AWS Lambda function
instead: a local Invoke API + STS endpoint (`LambdaProcess`) hosting the same
`services.app:app` as Lambda's handler, which restate-server invokes through its own Lambda
client, SigV4-signed, in request/response mode; `config()` registers the function's ARN.
What the function was invoked with is `local.function.calls()` (`LambdaCall`).

`ServerProcess`, `DeploymentProcess` and `LambdaProcess` are the types of `local.server`
and `local.deployment`; each also runs alone, as a second deployment beside a stack (the
next version of your handlers, for an upgrade test), a server with settings of its own, or
a Lambda beside a `LocalCluster` (`LocalCluster(..., env=function.server_env())`).
"""

from __future__ import annotations

from landlord_restate.restate.waiting import poll_until_terminal
from landlord_restate.testing._binaries import find_server_binary
from landlord_restate.testing._cluster import LocalCluster
from landlord_restate.testing._deployment import DeploymentProcess
from landlord_restate.testing._lambda import LambdaCall, LambdaProcess
from landlord_restate.testing._local import LocalRestate
from landlord_restate.testing._server import ServerProcess

__all__ = [
    "DeploymentProcess",
    "LambdaCall",
    "LambdaProcess",
    "LocalCluster",
    "LocalRestate",
    "ServerProcess",
    "find_server_binary",
    "poll_until_terminal",
]
