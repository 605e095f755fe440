"""Restate's ingress: start workflows, send to keyed handlers, attach, call the catalog.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp

from landlord_restate.restate.errors import RestateProtocolError, RestateServerError
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.transience import Backoff

#: what `/restate/output/{id}` and `/restate/attach/{id}` answer about an invocation (the
#: 1.7 forms; the `/restate/invocation/{id}/...` ones are deprecated and answer alike,
#: checked on 1.7.12): its result (200), "still running" (470, output only), "no such
#: invocation" (404). A failed invocation answers its own failure, marked
#: `"source": "invocation"` (a stopped one `409 cancelled` or `409 killed`); anything else
#: (401, 400, ...) is an error, never read as "it exists"
_OUTPUT_ANSWERS = frozenset({200, 404, 470})


def door_closed(error: RestateServerError) -> bool:
    """Whether Restate's ingress refused a call because the service is not there to call:
    unknown (404) or made private (400 "not public"), as the ingress itself says."""
    if error.source != "ingress":
        return False
    return error.status == 404 or (error.status == 400 and "not public" in error.body)


class IngressClient:
    """The calls the provider makes to `{endpoint}`.

    `waits` carries the long waits (attach) on a connection pool of their own, so any
    number of them never takes a connection a start, stop or callback needs.
    """

    def __init__(self, http: RestateHttp, waits: RestateHttp | None = None) -> None:
        self._http = http
        self._waits = waits or http

    def troubled(self, within: float) -> bool:
        """Whether a node of this API answered "not ready" in the last `within` seconds."""
        return self._http.troubled(within)

    @property
    def endpoint(self) -> str:
        """The ingress base URL."""
        return self._http.base_url

    async def health(self) -> None:
        """Raise unless the ingress answers its health check."""
        await self._http.request("GET", "/restate/health", idempotent=True)

    async def send_workflow(
        self, service: str, key: str, body: Any, *, workflow_id: str | None = None
    ) -> tuple[str, bool]:
        """Start `run` of workflow `service`/`key`; answer (invocation id, newly accepted).

        The key is the idempotency: a second send with the same key answers the first
        invocation, `PreviouslyAccepted`, and starts nothing.
        """
        path = f"/{quote(service, safe='')}/{quote(key, safe='')}/run/send"
        _, answer = await self._http.request(
            "POST", path, body=body, ok=(200, 202), workflow_id=workflow_id,
            idempotent=True,  # the workflow key: a resend answers PreviouslyAccepted
        )
        if not isinstance(answer, dict) or not isinstance(answer.get("invocationId"), str):
            raise RestateProtocolError(
                method="POST", url=self.endpoint + path, expected='{"invocationId": "inv_..."}',
                got=str(answer), workflow_id=workflow_id,
            )
        return answer["invocationId"], answer.get("status") != "PreviouslyAccepted"

    async def send(
        self,
        service: str,
        key: str,
        handler: str,
        body: Any,
        *,
        idempotency_key: str,
        execution_id: str | None = None,
        backoff: Backoff | None = None,
    ) -> bool:
        """One-way call of a keyed handler: Restate keeps it durably and invokes the handler
        when it can (also while the deployment is down). Answers whether it is new (False:
        the same idempotency key was sent before, `PreviouslyAccepted`)."""
        path = (f"/{quote(service, safe='')}/{quote(key, safe='')}/"
                f"{quote(handler, safe='')}/send")
        _, answer = await self._http.request(
            "POST", path, body=body, ok=(200, 202), execution_id=execution_id,
            headers={"idempotency-key": idempotency_key},
            idempotent=True,  # the idempotency key: a resend answers PreviouslyAccepted
            backoff=backoff,
        )
        return not (isinstance(answer, dict) and answer.get("status") == "PreviouslyAccepted")

    async def call(
        self,
        service: str,
        key: str,
        handler: str,
        body: Any = None,
        *,
        idempotent: bool,
        ok: tuple[int, ...] = (200,),
        workflow_id: str | None = None,
        execution_id: str | None = None,
        backoff: Backoff | None = None,
    ) -> tuple[int, Any]:
        """Call a keyed handler and wait for its answer."""
        path = f"/{quote(service, safe='')}/{quote(key, safe='')}/{quote(handler, safe='')}"
        return await self._http.request(
            "POST", path, body=body, ok=ok, workflow_id=workflow_id, execution_id=execution_id,
            idempotent=idempotent, backoff=backoff,
        )

    async def lookup_workflow(self, service: str, key: str) -> str:
        """The invocation id of workflow `service`/`key`'s `run`, as the partition that owns
        the key computes it (`POST /restate/lookup`, Restate 1.7). Whether that invocation
        exists is another question (`invocation_exists`): the id is answered either way."""
        path = "/restate/lookup"
        _, answer = await self._http.request(
            "POST", path, body={"target": "workflow", "workflowName": service,
                                "workflowKey": key},
            idempotent=True,  # a read
        )
        found = answer.get("invocationId") if isinstance(answer, dict) else None
        if not isinstance(found, str):
            raise RestateProtocolError(
                method="POST", url=self.endpoint + path, expected='{"invocationId": "inv_..."}',
                got=str(answer),
            )
        return found

    async def invocation_exists(
        self, invocation_id: str, *, backoff: Backoff | None = None
    ) -> bool:
        """Whether Restate knows the invocation, asked of the partition that owns it.

        SQL introspection fans out to every partition and, while one moves to another node,
        can answer without its rows; the ingress asks the partition leader itself, and
        answers 404 only for an invocation that does not exist (470 while it runs, its
        result or its failure once it ended).
        """
        path = f"/restate/output/{quote(invocation_id, safe='')}"
        try:
            status, _ = await self._http.request(
                "GET", path, ok=_OUTPUT_ANSWERS, execution_id=invocation_id,
                idempotent=True, backoff=backoff,  # a read
            )
        except RestateServerError as exc:
            # a failed invocation answers its own failure, marked as coming from it
            if exc.source == "invocation":
                return True
            raise
        return status != 404

    async def attach(self, invocation_id: str) -> None:
        """Wait, without polling, until the invocation ends (Restate answers its result or
        its failure then). A restart or failover while waiting attaches again (idempotent)."""
        path = f"/restate/attach/{quote(invocation_id, safe='')}"
        try:
            await self._waits.request(
                "GET", path, ok=_OUTPUT_ANSWERS, execution_id=invocation_id,
                idempotent=True,  # attaching changes nothing
                client_timeout=_NO_READ_TIMEOUT,
            )
        except RestateServerError as exc:
            if exc.source != "invocation":
                raise  # the invocation's own failure is an ending like any other


#: an attach lasts as long as the execution: only connecting is bounded
_NO_READ_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=30)
