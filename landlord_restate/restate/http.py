"""One place where HTTP meets Restate: its error shapes, its transient states, its nodes.

aiohttp's `raise_for_status()` drops the body; Restate puts the reason there
(`{"message", "restate_code"}` or `{"code", "message"}`), so read it first and raise our own
error with status, method, URL and an excerpt.

Restate has moments where a correct request cannot be answered yet: right after a restart
(partitions without a leader or a store), during a leadership change in a cluster, or while a
node is down. `transient_reason` is the one classification of those answers; idempotent
requests retry them with backoff over a time window, moving to the next node of a cluster,
and raise `RestateUnavailableError` when the window runs out.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import socket
import time
from collections.abc import Collection, Sequence
from typing import Any

import aiohttp
from loguru import logger

from landlord_restate.restate.errors import (
    RestateConnectionError,
    RestateProtocolError,
    RestateServerError,
    RestateUnavailableError,
)
from landlord_restate.restate.tracing import inject
from landlord_restate.restate.transience import NO_RETRY, Backoff, transient_reason
from landlord_restate.workflow.errors import (
    ProviderStateError,
)

_EXCERPT = 512
#: bodies larger than this are handed to aiohttp as a stream
_LARGE_BODY = 1024 * 1024
#: how long a node that answered "not ready" is left to settle before it is queried again.
#: Seen with restate-server 1.7.12 under load: between "expecting a partition store" and
#: "node N1:<old generation> was shut down", a restarted node answered one SQL query 200
#: with no rows for about 50 ms. An SQL answer less than this after the node's last
#: transient answer is asked for again once this has passed, so that window is never read
#: as "nothing there".
SETTLE_SECONDS = 1.0
_AUTH_HINT = "authentication refused: check auth_type and api_key"


class _Transient(Exception):
    """An answer worth retrying, carrying the error to raise if it is not retried."""

    def __init__(self, error: Exception, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason
        self.status = status


def _closed() -> ProviderStateError:
    return ProviderStateError(
        "RestateProvider is closed: a call was made, or still in flight, after aclose()"
    )


class RestateHttp:
    """Requests to one Restate API (admin or ingress), on one node of several.

    Requests go to the current node; a transient answer moves to the next node. Requests
    their caller declares idempotent retry by `backoff`; others are tried once.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_urls: str | Sequence[str],
        *,
        backoff: Backoff = NO_RETRY,
    ) -> None:
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("RestateHttp needs at least one base URL")
        self._session = session
        self.nodes: tuple[str, ...] = tuple(url.rstrip("/") for url in urls)
        self._current = 0
        self.backoff = backoff
        #: node -> monotonic time before which its SQL answers are not trusted
        self._settling: dict[str, float] = {}
        #: when any node last answered "not ready" (monotonic), or None
        self.last_transient: float | None = None

    def troubled(self, within: float) -> bool:
        """Whether a node answered "not ready" in the last `within` seconds: a restart or
        failover is in progress, so a "not found" may be one of its moments."""
        return self.last_transient is not None and time.monotonic() - self.last_transient < within

    @property
    def base_url(self) -> str:
        """The node requests go to now."""
        return self.nodes[self._current]

    def _move_on(self, failed: str) -> bool:
        """Switch to the next node after `failed` answered transiently; True if we moved."""
        if len(self.nodes) == 1 or self.base_url != failed:
            return len(self.nodes) > 1  # another request already moved us on
        self._current = (self._current + 1) % len(self.nodes)
        logger.bind(endpoint=failed, next=self.base_url).info(
            "Restate node {} not answering; moving to {}", failed, self.base_url
        )
        return True

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
        backoff: Backoff | None = None,
        settled: bool = False,
        client_timeout: aiohttp.ClientTimeout | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        """Send JSON `body`; answer (status, decoded JSON or None) for a status in `ok`.

        `settled` (for SQL reads): an answer from a node that said "not ready" less than
        SETTLE_SECONDS ago is asked for again once that time has passed, since a node coming
        up can answer a query with rows missing.
        """
        policy = (backoff or self.backoff) if idempotent else NO_RETRY
        began = time.monotonic()
        retries = 0
        while True:
            node = self.base_url
            try:
                answer = await self._once(
                    node, method, path, body, ok, workflow_id, execution_id, client_timeout,
                    headers,
                )
            except _Transient as transient:
                if self._session.closed:  # aclose() while this call was in flight
                    raise _closed() from transient.__cause__
                self.last_transient = time.monotonic()
                self._settling[node] = self.last_transient + SETTLE_SECONDS
                moved = self._move_on(node)
                if not idempotent:
                    raise transient.error from transient.__cause__
                elapsed = time.monotonic() - began
                if policy.gives_up(retries, elapsed):
                    raise RestateUnavailableError(
                        node, transient.reason, nodes=self.nodes, waited=elapsed,
                        status=transient.status, workflow_id=workflow_id,
                        execution_id=execution_id,
                    ) from transient.error
                retries += 1
                # a fresh node is tried at once; a full round of nodes waits first
                pause = 0.0 if moved and retries % len(self.nodes) else policy.delay(retries)
                logger.bind(
                    endpoint=node, method=method, path=path, attempt=retries,
                    workflow_id=workflow_id, execution_id=execution_id,
                ).info("Restate not ready ({}); retry {} in {:.2f}s", transient.reason,
                       retries, pause)
                await asyncio.sleep(pause)
                continue
            if settled and await self._unsettled(node):
                continue  # answered while settling: ask again, now that it has settled
            return answer

    async def _unsettled(self, node: str) -> bool:
        """Whether `node` answered "not ready" less than SETTLE_SECONDS ago; if so, wait
        until that has passed (the caller then asks again)."""
        until = self._settling.get(node)
        if until is None:
            return False
        pause = until - time.monotonic()
        if pause <= 0:
            self._settling.pop(node, None)
            return False
        logger.bind(endpoint=node).debug(
            "node answered while settling after a restart; asking again in {:.2f}s", pause
        )
        await asyncio.sleep(pause)
        return True

    async def _once(
        self,
        node: str,
        method: str,
        path: str,
        body: Any,
        ok: Collection[int],
        workflow_id: str | None,
        execution_id: str | None,
        client_timeout: aiohttp.ClientTimeout | None = None,
        extra_headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        url = node + path
        if body is None or isinstance(body, bytes):  # bytes: already encoded by the caller
            data: bytes | str | io.BytesIO | None = body
        else:
            data = json.dumps(body, separators=(",", ":"))
        if isinstance(data, bytes | str) and len(data) > _LARGE_BODY:
            # aiohttp warns (ResourceWarning) when it must copy a large bytes body itself
            data = io.BytesIO(data.encode() if isinstance(data, str) else data)
        headers = {"accept": "application/json", **(extra_headers or {})}
        if data is not None:
            headers["content-type"] = "application/json"
        inject(headers)  # the caller's trace continues in restate-server (when tracing)
        if self._session.closed:
            raise _closed()
        try:
            async with self._session.request(
                method,
                url,
                data=data,
                headers=headers,
                # aiohttp would label an empty POST octet-stream; Restate refuses that
                # for handlers without input
                skip_auto_headers=() if data is not None else ("Content-Type",),
                timeout=client_timeout or self._session.timeout,
            ) as resp:
                ack_now(resp)
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            reason = str(exc) or type(exc).__name__
            logger.bind(endpoint=node, method=method, path=path).debug(
                "Restate unreachable: {}", reason
            )
            raise _Transient(RestateConnectionError(
                node, reason, workflow_id=workflow_id, execution_id=execution_id
            ), reason) from exc
        text = raw.decode("utf-8", errors="replace")
        if status not in ok:
            logger.bind(endpoint=node, method=method, path=path, status=status).debug(
                "Restate error: {} {}", status, text[:_EXCERPT]
            )
            error = RestateServerError(
                method=method,
                url=url,
                status=status,
                body=text[:_EXCERPT],
                answer=text,
                hint=_AUTH_HINT if status in (401, 403) else "",
                workflow_id=workflow_id,
                execution_id=execution_id,
            )
            transient = transient_reason(status, text)
            if transient is not None:
                raise _Transient(error, transient, status)
            raise error
        if not raw:
            return status, None
        try:
            return status, json.loads(raw)
        except ValueError as exc:
            raise RestateProtocolError(
                method=method, url=url, status=status, expected="a JSON answer", got=text,
                workflow_id=workflow_id, execution_id=execution_id,
            ) from exc


def ack_now(resp: aiohttp.ClientResponse) -> None:
    """Acknowledge what has arrived of the answer at once, rather than after Linux's
    delayed-ACK timer. Restate streams an answer it builds in several parts (an SQL result
    over partitions, `sys_invocation` above all) in several writes; on a kept-alive
    connection the server holds each next part until the last is acknowledged, which the
    client delays by up to 40 ms: the tail of every status read (p99 ~50 ms against a p50
    of ~7 ms, measured). TCP_QUICKACK sends the pending acknowledgement now; Linux only,
    and nothing to do where the option is missing."""
    connection = resp.connection
    transport = connection.transport if connection is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or _QUICKACK is None:
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


#: Linux's TCP_QUICKACK (absent on other systems)
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

