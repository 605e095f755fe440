"""AWS Signature Version 4, both ways: sign a request, and check the signature on one.

The local Lambda (`_lambda_host`) checks every request restate-server's AWS SDK sends it,
so a test can tell which key signed an invoke; tests sign their own requests with `sign`.
Only what AWS's SDKs send is covered: the `Authorization` header form (no presigned URLs),
the payload hashed whole, and non-S3 path canonicalisation (each segment encoded again).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from attrs import frozen

ALGORITHM = "AWS4-HMAC-SHA256"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<key>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/"
    r"(?P<service>[^/,\s]+)/aws4_request,\s*SignedHeaders=(?P<headers>[a-z0-9;-]+),\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@frozen(kw_only=True)
class Authorization:
    """What an `Authorization` header says: who signed, for which scope, over which headers."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str

    @classmethod
    def parse(cls, header: str) -> Authorization | None:
        """The parts of a SigV4 `Authorization` header; None when it is not one."""
        match = _AUTHORIZATION.match(header.strip())
        if match is None:
            return None
        return cls(
            access_key_id=match["key"], date=match["date"], region=match["region"],
            service=match["service"], signed_headers=tuple(match["headers"].split(";")),
            signature=match["signature"],
        )


def _canonical_uri(raw_path: str) -> str:
    """The path as sent, each segment URI-encoded once more (AWS's rule for every service
    but S3): `arn%3Aaws` is signed as `arn%253Aaws`."""
    return quote(raw_path or "/", safe="/-_.~")


def _canonical_query(query: str) -> str:
    pairs = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(query, keep_blank_values=True)
    )
    return "&".join(f"{name}={value}" for name, value in pairs)


def _canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    return "".join(
        f"{name}:{' '.join(lowered.get(name, '').split())}\n" for name in signed
    )


def canonical_request(
    method: str, raw_path: str, query: str, headers: Mapping[str, str],
    signed_headers: tuple[str, ...], body: bytes,
) -> str:
    """SigV4's canonical request of an HTTP request."""
    return "\n".join([
        method.upper(), _canonical_uri(raw_path), _canonical_query(query),
        _canonical_headers(headers, signed_headers), ";".join(signed_headers),
        hashlib.sha256(body).hexdigest(),
    ])


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _signature(secret: str, amz_date: str, region: str, service: str, request: str) -> str:
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([
        ALGORITHM, amz_date, scope, hashlib.sha256(request.encode()).hexdigest(),
    ])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret}".encode(), date), region), service),
                "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def verify(
    authorization: Authorization, secret: str, *, method: str, raw_path: str, query: str,
    headers: Mapping[str, str], body: bytes,
) -> bool:
    """Whether `authorization`'s signature is the one `secret` makes over this request (the
    `x-amz-date` header must be signed, as AWS requires)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    amz_date = lowered.get("x-amz-date", "")
    if "x-amz-date" not in authorization.signed_headers or "host" not in (
        authorization.signed_headers
    ) or amz_date[:8] != authorization.date:
        return False
    request = canonical_request(method, raw_path, query, lowered, authorization.signed_headers,
                                body)
    expected = _signature(secret, amz_date, authorization.region, authorization.service,
                          request)
    return hmac.compare_digest(expected, authorization.signature)


def sign(
    *, method: str, url_host: str, raw_path: str, query: str = "", body: bytes,
    access_key_id: str, secret: str, region: str, service: str,
    session_token: str | None = None, headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign this request (`host`, `x-amz-date`, the optional
    `x-amz-security-token` and `Authorization`), to send with `headers`."""
    amz_date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    signed = {name.lower(): value for name, value in (headers or {}).items()}
    signed |= {"host": url_host, "x-amz-date": amz_date}
    if session_token is not None:
        signed["x-amz-security-token"] = session_token
    names = tuple(sorted(signed))
    request = canonical_request(method, raw_path, query, signed, names, body)
    signature = _signature(secret, amz_date, region, service, request)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    return signed | {"authorization": (
        f"{ALGORITHM} Credential={access_key_id}/{scope}, SignedHeaders={';'.join(names)}, "
        f"Signature={signature}"
    )}
