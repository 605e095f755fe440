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

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import importlib
import inspect
import json
import os
import secrets
import signal
import socket
import string
import sys
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from aiohttp import web

from landlord_restate.testing._sigv4 import Authorization, verify

#: Invoke's limit on the request payload (synchronous invocation), bytes
REQUEST_LIMIT = 6_291_456
#: the response payload size AWS reports as the limit in its error, bytes
RESPONSE_LIMIT = 6_291_556
#: where STS is served on this process's address (the owner sets AWS_ENDPOINT_URL_STS)
STS_PREFIX = "/sts"
HEALTH_PATH = "/_local/health"
_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"

LambdaHandler = Callable[[dict[str, Any], Any], Any]


class _Context:
    """The `context` Lambda passes a handler: what the Restate SDK may read of it."""

    def __init__(self, arn: str, request_id: str, deadline: float) -> None:
        self.invoked_function_arn = arn
        self.function_name = arn.split(":")[6]
        self.function_version = arn.split(":")[7]
        self.aws_request_id = request_id
        self.memory_limit_in_mb = "1024"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda would end this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(target: str) -> LambdaHandler:
    """`module:attribute`, imported now (Lambda's init phase): an import error ends this
    process with its traceback, which the owner reads to name the module."""
    module, _, attribute = target.partition(":")
    handler = getattr(importlib.import_module(module), attribute or "app")
    if not callable(handler) or len(inspect.signature(handler).parameters) != 2 or (
        inspect.iscoroutinefunction(handler)
    ):
        raise TypeError(
            f"{target} is not a Lambda handler (event, context): an ASGI app? The Restate "
            "SDK builds its Lambda handler only when AWS_LAMBDA_FUNCTION_NAME is set at import"
        )
    return handler  # type: ignore[no-any-return]


def _aws_error(status: int, kind: str, message: str) -> web.Response:
    """An error as Lambda's REST API answers it."""
    return web.json_response({"Type": "User", "message": message}, status=status,
                             headers={"x-amzn-ErrorType": kind,
                                      "x-amzn-RequestId": str(uuid.uuid4())})


def _sts_error(status: int, code: str, message: str) -> web.Response:
    """An error as STS's query API answers it (XML)."""
    body = (f'<ErrorResponse xmlns="{_STS_NS}"><Error><Type>Sender</Type><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return web.Response(status=status, text=body, content_type="text/xml")


class Function:
    """One Lambda function version (its ARN), its STS, and the record of what they saw."""

    def __init__(self, config: dict[str, Any], handler: LambdaHandler, calls: IO[str]) -> None:
        self.arn: str = config["arn"]
        self.role: str | None = config.get("assume_role_arn")
        self.access_key_id: str = config["access_key_id"]
        self.secret_access_key: str = config["secret_access_key"]
        self.account: str = self.arn.split(":")[4]
        self._seed = config["seed"].encode()
        self._handler = handler
        self._calls = calls
        self._pool = ThreadPoolExecutor(max_workers=int(config.get("concurrency", 64)),
                                        thread_name_prefix="lambda-invocation")

    # -- credentials ------------------------------------------------------------------

    def _derived_secret(self, key: str) -> str:
        digest = hmac.new(self._seed, f"secret:{key}".encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()[:40]

    def _token(self, key: str, role: str, expires: float) -> str:
        claims = base64.urlsafe_b64encode(json.dumps(
            {"key": key, "role": role, "exp": expires}).encode()).decode()
        mac = hmac.new(self._seed, f"token:{claims}".encode(), hashlib.sha256).hexdigest()
        return f"{claims}.{mac}"

    def _token_role(self, key: str, token: str) -> str | None:
        """The role a session token was issued for, if this STS issued it with `key` and it
        has not expired."""
        claims, _, mac = token.partition(".")
        expected = hmac.new(self._seed, f"token:{claims}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(mac, expected):
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(claims))
        except (ValueError, binascii.Error):
            return None
        if data.get("key") != key or float(data.get("exp", 0)) < time.time():
            return None
        return str(data["role"])

    def authenticate(
        self, request: web.Request, body: bytes, service: str
    ) -> tuple[str, str, bool] | web.Response:
        """(principal, access key id, with a session token) of a correctly signed request;
        else the answer AWS gives."""
        parsed = Authorization.parse(request.headers.get("Authorization", ""))
        if parsed is None or parsed.service != service:
            return _aws_error(403, "MissingAuthenticationTokenException",
                              "Missing Authentication Token")
        token = request.headers.get("X-Amz-Security-Token")
        if parsed.access_key_id == self.access_key_id and token is None:
            secret, principal = self.secret_access_key, f"arn:aws:iam::{self.account}:user/test"
        elif parsed.access_key_id.startswith("ASIA") and token is not None and (
            role := self._token_role(parsed.access_key_id, token)
        ) is not None:
            secret, principal = self._derived_secret(parsed.access_key_id), role
        else:
            return _aws_error(403, "UnrecognizedClientException",
                              "The security token included in the request is invalid.")
        if not verify(parsed, secret, method=request.method, raw_path=request.raw_path.split(
                "?", 1)[0], query=request.query_string, headers=dict(request.headers),
                body=body):
            return _aws_error(403, "InvalidSignatureException",
                              "The request signature we calculated does not match the "
                              "signature you provided.")
        return principal, parsed.access_key_id, token is not None

    # -- the record -------------------------------------------------------------------

    def record(self, **fields: Any) -> None:
        """Append one request to the calls file (a line each, flushed: a kill loses none)."""
        self._calls.write(json.dumps({"at": time.time(), **fields}) + "\n")
        self._calls.flush()

    # -- STS --------------------------------------------------------------------------

    async def sts(self, request: web.Request) -> web.Response:
        """STS `AssumeRole`: test credentials for the role this function trusts."""
        body = await request.read()
        form = dict(parse_qsl(body.decode(errors="replace")))
        role = form.get("RoleArn", "")
        who = self.authenticate(request, body, "sts")
        if isinstance(who, web.Response):
            self.record(kind="assume_role", target=role, status=who.status,
                        error=who.headers.get("x-amzn-ErrorType", ""))
            return _sts_error(who.status, who.headers.get("x-amzn-ErrorType", "AccessDenied"),
                              "the request is not signed by a known key")
        principal, key_id, _ = who
        if form.get("Action") != "AssumeRole":
            return _sts_error(400, "InvalidAction", f"{form.get('Action')!r} is not served here")
        if role != self.role:
            self.record(kind="assume_role", target=role, access_key_id=key_id, status=403,
                        error="AccessDenied")
            return _sts_error(403, "AccessDenied", f"User: {principal} is not authorized to "
                              f"perform: sts:AssumeRole on resource: {role}")
        seconds = int(form.get("DurationSeconds", "3600"))
        expires = time.time() + seconds
        key = "ASIA" + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                               for _ in range(16))
        session = form.get("RoleSessionName", "session")
        expiration = (datetime.now(UTC) + timedelta(seconds=seconds)).strftime(
            "%Y-%m-%dT%H:%M:%SZ")
        role_name = role.rsplit("/", 1)[-1]
        xml = (
            f'<AssumeRoleResponse xmlns="{_STS_NS}"><AssumeRoleResult><Credentials>'
            f"<AccessKeyId>{key}</AccessKeyId>"
            f"<SecretAccessKey>{escape(self._derived_secret(key))}</SecretAccessKey>"
            f"<SessionToken>{escape(self._token(key, role, expires))}</SessionToken>"
            f"<Expiration>{expiration}</Expiration></Credentials><AssumedRoleUser>"
            f"<Arn>arn:aws:sts::{self.account}:assumed-role/{escape(role_name)}/"
            f"{escape(session)}</Arn>"
            f"<AssumedRoleId>AROATESTROLE:{escape(session)}</AssumedRoleId></AssumedRoleUser>"
            f"</AssumeRoleResult><ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId>"
            "</ResponseMetadata></AssumeRoleResponse>"
        )
        self.record(kind="assume_role", target=role, access_key_id=key_id, status=200,
                    error="", issued_key=key)
        return web.Response(text=xml, content_type="text/xml")

    # -- Invoke -----------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.Response:
        """Lambda `Invoke` (RequestResponse): the event through the app's Lambda handler."""
        body = await request.read()
        arn = request.match_info["function"]
        if "Qualifier" in request.query:
            arn = f"{arn}:{request.query['Qualifier']}"
        seen: dict[str, Any] = {"kind": "invoke", "target": arn, "request_bytes": len(body)}
        event: Any = None
        with contextlib.suppress(ValueError):
            event = json.loads(body)
        if isinstance(event, dict):
            seen["path"] = str(event.get("path", ""))
        who = self.authenticate(request, body, "lambda")
        if isinstance(who, web.Response):
            self.record(**seen, status=who.status, error=who.headers["x-amzn-ErrorType"])
            return who
        principal, key_id, with_token = who
        seen |= {"access_key_id": key_id, "session_token": with_token}
        if arn != self.arn:
            self.record(**seen, status=404, error="ResourceNotFoundException")
            return _aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        if self.role is not None and principal != self.role:
            self.record(**seen, status=403, error="AccessDeniedException")
            return _aws_error(
                403, "AccessDeniedException",
                f"User: {principal} is not authorized to perform: lambda:InvokeFunction on "
                f"resource: {arn} because no resource-based policy allows the "
                "lambda:InvokeFunction action")
        if len(body) > REQUEST_LIMIT:
            self.record(**seen, status=413, error="RequestEntityTooLargeException")
            return _aws_error(
                413, "RequestEntityTooLargeException",
                f"Request must be smaller than {REQUEST_LIMIT} bytes for the InvokeFunction "
                "operation")
        if event is None:
            self.record(**seen, status=400, error="InvalidRequestContentException")
            return _aws_error(400, "InvalidRequestContentException",
                              "Could not parse request body into json")
        request_id = str(uuid.uuid4())
        began = time.monotonic()
        payload, function_error, leftover = await asyncio.get_running_loop().run_in_executor(
            self._pool, self._run, event, request_id)
        if function_error is None and len(payload) > RESPONSE_LIMIT:
            function_error = "Function.ResponseSizeTooLarge"
            payload = json.dumps({
                "errorMessage": f"Response payload size ({len(payload)} bytes) exceeded "
                                f"maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                "errorType": "Function.ResponseSizeTooLarge"}).encode()
        self.record(**seen, status=200, error=function_error or "", response_bytes=len(payload),
                    seconds=round(time.monotonic() - began, 4), leftover_tasks=leftover)
        headers = {"X-Amz-Executed-Version": self.arn.rsplit(":", 1)[-1],
                   "x-amzn-RequestId": request_id}
        if function_error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return web.Response(body=payload, headers=headers, content_type="application/json")

    def _run(self, event: Any, request_id: str) -> tuple[bytes, str | None, int]:
        """One invocation in this worker thread, on an event loop made for it and closed
        after (the SDK's handler runs on the thread's current loop): (the JSON answer, the
        function error if it raised, how many tasks it left running)."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        error: str | None = None
        try:
            answer = self._handler(event, _Context(self.arn, request_id, time.monotonic() + 900))
            payload = json.dumps(answer, separators=(",", ":")).encode()
        except BaseException as exc:  # Lambda reports any failure, even SystemExit
            error = "Unhandled"
            payload = json.dumps({
                "errorMessage": str(exc), "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__)}).encode()
            traceback.print_exc()
        finally:
            leftover = _close(loop)
        return payload, error, leftover

    def shutdown(self) -> None:
        """Drop what is queued; invocations in flight end with the process."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _close(loop: asyncio.AbstractEventLoop) -> int:
    """Cancel what the invocation left running (a frozen Lambda instance would never run
    it either), close the loop; answer how many tasks were left."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        return len(pending)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


async def _health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def serve(function: Function, listener: socket.socket) -> None:
    """Serve Invoke, STS and the health probe on `listener` until SIGTERM or SIGINT."""
    app = web.Application(client_max_size=64 * 1024 * 1024)  # the limits are AWS's, above
    app.router.add_post("/2015-03-31/functions/{function}/invocations", function.invoke)
    app.router.add_post(STS_PREFIX, function.sts)
    app.router.add_post(f"{STS_PREFIX}/", function.sts)
    app.router.add_get(HEALTH_PATH, _health)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.SockSite(runner, listener).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    print(f"local Lambda serving {function.arn} on fd {listener.fileno()}", flush=True)
    await stopped.wait()
    await runner.cleanup()


def main(argv: list[str]) -> int:
    """`_lambda_host CONFIG FD`: import the app, then serve on the inherited socket."""
    config = json.loads(Path(argv[1]).read_text())
    listener = socket.socket(fileno=int(argv[2]))
    handler = load_handler(config["app"])
    with Path(config["calls_file"]).open("a", encoding="utf-8") as calls:
        function = Function(config, handler, calls)
        try:
            asyncio.run(serve(function, listener))
        finally:
            function.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # a worker thread may still run a handler's step: end without joining it, as the end
    # of a Lambda instance does
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
