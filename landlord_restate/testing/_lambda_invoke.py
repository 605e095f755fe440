"""Lambda's `Invoke` API as the local Lambda answers it: checks first, then the function.

`POST /2015-03-31/functions/{arn}/invocations` (RequestResponse) must be signed by a key
`Sts` accepts, name the ARN served, come from the trusted role when one is configured, and
stay within Invoke's limits; the event then goes through the function (`Runner`), whose
return value is the answer. Refusals and function errors are shaped as AWS shapes them,
so restate-server's answer is the one it gives against AWS.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from landlord_restate.testing._lambda_runner import Runner
from landlord_restate.testing._lambda_sts import Sts, _aws_error

#: Invoke's limit on the request payload (synchronous invocation), bytes
REQUEST_LIMIT = 6_291_456
#: the response payload size AWS reports as the limit in its error, bytes
RESPONSE_LIMIT = 6_291_556


class InvokeApi:
    """Invoke of one Lambda function version (its ARN)."""

    def __init__(
        self, config: dict[str, Any], sts: Sts, runner: Runner, record: Callable[..., None]
    ) -> None:
        """`record`: appends a request to the calls file (`_lambda_host.CallLog.record`)."""
        self.arn: str = config["arn"]
        self.role: str | None = config.get("assume_role_arn")
        self._sts = sts
        self._runner = runner
        self._record = record

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
        who = self._sts.authenticate(request, body, "lambda")
        if isinstance(who, web.Response):
            self._record(**seen, status=who.status, error=who.headers["x-amzn-ErrorType"])
            return who
        principal, key_id, with_token = who
        seen |= {"access_key_id": key_id, "session_token": with_token}
        if arn != self.arn:
            self._record(**seen, status=404, error="ResourceNotFoundException")
            return _aws_error(404, "ResourceNotFoundException", f"Function not found: {arn}")
        if self.role is not None and principal != self.role:
            self._record(**seen, status=403, error="AccessDeniedException")
            return _aws_error(
                403, "AccessDeniedException",
                f"User: {principal} is not authorized to perform: lambda:InvokeFunction on "
                f"resource: {arn} because no resource-based policy allows the "
                "lambda:InvokeFunction action")
        if len(body) > REQUEST_LIMIT:
            self._record(**seen, status=413, error="RequestEntityTooLargeException")
            return _aws_error(
                413, "RequestEntityTooLargeException",
                f"Request must be smaller than {REQUEST_LIMIT} bytes for the InvokeFunction "
                "operation")
        if event is None:
            self._record(**seen, status=400, error="InvalidRequestContentException")
            return _aws_error(400, "InvalidRequestContentException",
                              "Could not parse request body into json")
        request_id = str(uuid.uuid4())
        began = time.monotonic()
        payload, function_error, leftover = await self._runner.run(event, request_id)
        if function_error is None and len(payload) > RESPONSE_LIMIT:
            function_error = "Function.ResponseSizeTooLarge"
            payload = json.dumps({
                "errorMessage": f"Response payload size ({len(payload)} bytes) exceeded "
                                f"maximum allowed payload size ({RESPONSE_LIMIT} bytes).",
                "errorType": "Function.ResponseSizeTooLarge"}).encode()
        self._record(**seen, status=200, error=function_error or "",
                     response_bytes=len(payload), seconds=round(time.monotonic() - began, 4),
                     leftover_tasks=leftover)
        headers = {"X-Amz-Executed-Version": self.arn.rsplit(":", 1)[-1],
                   "x-amzn-RequestId": request_id}
        if function_error is not None:
            headers["X-Amz-Function-Error"] = "Unhandled"
        return web.Response(body=payload, headers=headers, content_type="application/json")
