"""The local AWS Lambda's own process: `python -m landlord_restate.testing._lambda_host CONFIG`.

It answers the two AWS APIs restate-server's Lambda client calls, on a socket its owner
holds (`LambdaProcess`):

- Lambda `Invoke` (`POST /2015-03-31/functions/{arn}/invocations`): the event is handed to
  the app's Lambda handler (`services.app:app`, imported with `AWS_LAMBDA_FUNCTION_NAME`
  set, so the Restate SDK builds its Lambda handler) in a worker thread with an event loop
  of its own, made for this invocation and closed after it, as Lambda runs one invocation
  at a time per instance; the handler's return value is the answer.
- STS `AssumeRole` (a form `POST` under `/sts`): test credentials for the one role the
  function trusts, derived from a secret of this function, so they stay valid across a
  restart of this process (restate-server keeps using them until they expire).

Every request must carry a valid SigV4 signature: by the base test key, or by a key this
STS issued together with its session token. With a role configured, only that role may
invoke. Answers are shaped as AWS shapes them (`ResourceNotFoundException` for an ARN it
does not serve, `RequestEntityTooLargeException` over Invoke's 6 MB request limit, a
`Function.ResponseSizeTooLarge` function error over its response limit, `Unhandled` for a
handler that raised), so restate-server's answer is the one it gives against AWS. Each
request is appended to a JSON-lines file the owner reads (`LambdaProcess.calls()`).

This module is the process (its socket, the calls file, start and stop); Invoke is
`_lambda_invoke`, STS and the keys `_lambda_sts`, the function's runs `_lambda_runner`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from landlord_restate.testing._lambda_invoke import InvokeApi
from landlord_restate.testing._lambda_runner import Runner, load_handler
from landlord_restate.testing._lambda_sts import Sts

#: where STS is served on this process's address (the owner sets AWS_ENDPOINT_URL_STS)
STS_PREFIX = "/sts"
HEALTH_PATH = "/_local/health"


class CallLog:
    """The calls file: what Invoke and STS answered, for the owner (`LambdaProcess.calls()`)."""

    def __init__(self, calls: IO[str]) -> None:
        self._calls = calls

    def record(self, **fields: Any) -> None:
        """Append one request to the calls file (a line each, flushed: a kill loses none)."""
        self._calls.write(json.dumps({"at": time.time(), **fields}) + "\n")
        self._calls.flush()


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve(invoke: InvokeApi, sts: Sts, listener: socket.socket) -> None:
    """Serve Invoke, STS and the health probe on `listener` until SIGTERM or SIGINT."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # the limits: `_lambda_invoke`
    app.router.add_post("/2015-03-31/functions/{function}/invocations", invoke.invoke)
    app.router.add_post(STS_PREFIX, sts.assume_role)
    app.router.add_post(f"{STS_PREFIX}/", sts.assume_role)
    app.router.add_get(HEALTH_PATH, _health)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    print(f"local Lambda serving {invoke.arn} on fd {listener.fileno()}", flush=True)
    await stopped.wait()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    """`_lambda_host CONFIG FD`: import the app, then serve on the inherited socket."""
    config = json.loads(Path(argv[1]).read_text())
    listener = socket.socket(fileno=int(argv[2]))
    handler = load_handler(config["app"])
    with Path(config["calls_file"]).open("a", encoding="utf-8") as calls:
        record = CallLog(calls).record
        runner = Runner(config, handler)
        sts = Sts(config, record)
        try:
            asyncio.run(serve(InvokeApi(config, sts, runner, record), sts, listener))
        finally:
            runner.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # a worker thread may still run a handler's step: end without joining it, as the end
    # of a Lambda instance does
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
