"""One place where HTTP meets Restate's error shapes.

aiohttp's `raise_for_status()` drops the body; Restate puts the reason there
(`{"message", "restate_code"}` or `{"code", "message"}`), so read it first and raise our own
error with status, method, URL and an excerpt.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection
from typing import Any

import aiohttp
from loguru import logger

from landlord_restate.workflow.errors import RestateConnectionError, RestateServerError

_EXCERPT = 512
#: statuses that say "try again": overload, a proxy that lost the server, a restart
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: Restate 500s that mean "not ready yet" (partitions without a leader after a restart)
_TRANSIENT_BODIES = ("node lookup for partition", "not the leader", "Unavailable")
_BACKOFF_FIRST = 0.1
_BACKOFF_MAX = 2.0
_AUTH_HINT = " (authentication refused: check auth_type and api_key)"


class _Transient(Exception):
    """An answer worth retrying, carrying the error to raise if retries run out."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class RestateHttp:
    """Requests to one Restate base URL over a shared session.

    `retry_attempts` retries, with exponential backoff, transient failures of requests
    their caller declares idempotent; others are tried once.
    """

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, *, retry_attempts: int = 0
    ) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")
        self._retry_attempts = retry_attempts

    async def request(
        self,
        method: str,
        path: str,
        *,
        idempotent: bool,
        body: Any = None,
        ok: Collection[int] = (200,),
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> tuple[int, Any]:
        """Send JSON `body`; answer (status, decoded JSON or None) for a status in `ok`."""
        attempts = 1 + (self._retry_attempts if idempotent else 0)
        delay = _BACKOFF_FIRST
        for attempt in range(1, attempts + 1):
            try:
                return await self._once(method, path, body, ok, workflow_id, execution_id)
            except _Transient as transient:
                if attempt == attempts:
                    raise transient.error from None
                logger.bind(endpoint=self.base_url, method=method, path=path,
                            attempt=attempt).info("retrying in {:.1f}s: {}", delay, transient)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _BACKOFF_MAX)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _once(
        self,
        method: str,
        path: str,
        body: Any,
        ok: Collection[int],
        workflow_id: str | None,
        execution_id: str | None,
    ) -> tuple[int, Any]:
        url = self.base_url + path
        if body is None or isinstance(body, bytes):  # bytes: already encoded by the caller
            data: bytes | str | None = body
        else:
            data = json.dumps(body, separators=(",", ":"))
        headers = {"accept": "application/json"}
        if data is not None:
            headers["content-type"] = "application/json"
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                # aiohttp would label an empty POST octet-stream; Restate refuses that
                # for handlers without input
                skip_auto_headers=() if data is not None else ("Content-Type",),
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            logger.bind(endpoint=self.base_url, method=method, path=path).warning(
                "Restate unreachable: {}", reason
            )
            raise _Transient(RestateConnectionError(
                self.base_url, reason, workflow_id=workflow_id, execution_id=execution_id
            )) from exc
        text = raw.decode("utf-8", errors="replace")
        if status not in ok:
            logger.bind(
                endpoint=self.base_url, method=method, path=path, status=status
            ).warning("Restate error: {}", text[:_EXCERPT])
            error = RestateServerError(
                method=method,
                url=url,
                status=status,
                body=text[:_EXCERPT] + (_AUTH_HINT if status in (401, 403) else ""),
                workflow_id=workflow_id,
                execution_id=execution_id,
            )
            if status in _TRANSIENT_STATUSES or (
                status == 500 and any(marker in text for marker in _TRANSIENT_BODIES)
            ):
                raise _Transient(error)
            raise error
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            raise RestateServerError(
                method=method,
                url=url,
                status=status,
                body=f"response is not JSON: {text[:_EXCERPT]}",
                workflow_id=workflow_id,
                execution_id=execution_id,
            ) from exc
