"""Who may call the local Lambda: the keys it accepts, and the STS `AssumeRole` that issues
the temporary ones.

A request is accepted when it is SigV4-signed by the base test key, or by a key this STS
issued together with its session token. Issued keys are derived from the function's seed,
not stored, so they stay valid across a restart of the host process (restate-server keeps
using them until they expire). A refusal is answered as AWS answers it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import string
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from aiohttp import web

from landlord_restate.testing._sigv4 import Authorization, verify

_STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


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


class Sts:
    """The keys of one function (its ARN's account, the role it trusts) and its STS."""

    def __init__(self, config: dict[str, Any], record: Callable[..., None]) -> None:
        """`record`: appends a request to the calls file (`_lambda_host.CallLog.record`)."""
        self.role: str | None = config.get("assume_role_arn")
        self.access_key_id: str = config["access_key_id"]
        self.secret_access_key: str = config["secret_access_key"]
        self.account: str = config["arn"].split(":")[4]
        self._seed = config["seed"].encode()
        self._record = record

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

    async def assume_role(self, request: web.Request) -> web.Response:
        """STS `AssumeRole`: test credentials for the role this function trusts."""
        body = await request.read()
        form = dict(parse_qsl(body.decode(errors="replace")))
        role = form.get("RoleArn", "")
        who = self.authenticate(request, body, "sts")
        if isinstance(who, web.Response):
            self._record(kind="assume_role", target=role, status=who.status,
                         error=who.headers.get("x-amzn-ErrorType", ""))
            return _sts_error(who.status, who.headers.get("x-amzn-ErrorType", "AccessDenied"),
                              "the request is not signed by a known key")
        principal, key_id, _ = who
        if form.get("Action") != "AssumeRole":
            return _sts_error(400, "InvalidAction", f"{form.get('Action')!r} is not served here")
        if role != self.role:
            self._record(kind="assume_role", target=role, access_key_id=key_id, status=403,
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
        self._record(kind="assume_role", target=role, access_key_id=key_id, status=200,
                     error="", issued_key=key)
        return web.Response(text=xml, content_type="text/xml")
