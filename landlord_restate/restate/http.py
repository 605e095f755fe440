"""One place where HTTP meets Restate's error shapes.

aiohttp's `raise_for_status()` drops the body; Restate puts the reason there
(`{"message", "restate_code"}` or `{"code", "message"}`), so read it first and raise our own
error with status, method, URL and an excerpt.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

import aiohttp
from loguru import logger

from landlord_restate.workflow.errors import RestateConnectionError, RestateServerError

_EXCERPT = 512


class RestateHttp:
    """Requests to one Restate base URL over a shared session."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self.base_url = base_url.rstrip("/")

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        ok: Collection[int] = (200,),
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> tuple[int, Any]:
        """Send JSON `body`; answer (status, decoded JSON or None) for a status in `ok`."""
        url = self.base_url + path
        data = None if body is None else json.dumps(body, separators=(",", ":"))
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
            raise RestateConnectionError(
                self.base_url, reason, workflow_id=workflow_id, execution_id=execution_id
            ) from exc
        text = raw.decode("utf-8", errors="replace")
        if status not in ok:
            logger.bind(
                endpoint=self.base_url, method=method, path=path, status=status
            ).warning("Restate error: {}", text[:_EXCERPT])
            raise RestateServerError(
                method=method,
                url=url,
                status=status,
                body=text[:_EXCERPT],
                workflow_id=workflow_id,
                execution_id=execution_id,
            )
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
