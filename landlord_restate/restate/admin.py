"""Restate's admin API: deployments, services, state, SQL introspection, and the
invocation actions (cancel, kill, pause, resume, purge).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import aiohttp

from landlord_restate.restate.errors import RestateProtocolError
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.transience import Backoff


class AdminClient:
    """The calls the provider makes to `{admin_endpoint}`."""

    def __init__(self, http: RestateHttp) -> None:
        self._http = http

    def troubled(self, within: float) -> bool:
        """Whether a node of this API answered "not ready" in the last `within` seconds."""
        return self._http.troubled(within)

    @property
    def endpoint(self) -> str:
        """The admin base URL."""
        return self._http.base_url

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every admin node this client may use."""
        return self._http.nodes

    async def health(self, *, backoff: Backoff | None = None) -> None:
        """Raise unless the admin API answers its health check."""
        await self._http.request("GET", "/health", idempotent=True, backoff=backoff)

    async def version(self) -> str:
        """The server's version, as `GET /version` reports it."""
        _, answer = await self._http.request("GET", "/version", idempotent=True)
        return str(_object(answer, "GET /version").get("version", "?"))

    async def metadata_members(self, *, backoff: Backoff | None = None) -> int | None:
        """How many nodes hold the cluster's metadata (`GET /cluster-health`): 1 on a
        single node; None when the server does not say (an older one, or a proxy)."""
        status, answer = await self._http.request(
            "GET", "/cluster-health", ok=(200, 403, 404), idempotent=True, backoff=backoff)
        if status != 200 or not isinstance(answer, dict):
            return None
        health = answer.get("metadata_cluster_health")
        members = health.get("members") if isinstance(health, dict) else None
        return len(members) if isinstance(members, list) else None

    async def deployments(self) -> list[dict[str, Any]]:
        """Every registered deployment (`GET /deployments`)."""
        _, answer = await self._http.request("GET", "/deployments", idempotent=True)
        found = _object(answer, "GET /deployments").get("deployments")
        return [d for d in found if isinstance(d, dict)] if isinstance(found, list) else []

    async def deployment(self, deployment_id: str) -> dict[str, Any] | None:
        """One deployment with its services in full (handlers, metadata); None if unknown."""
        status, answer = await self._http.request(
            "GET", f"/deployments/{quote(deployment_id, safe='')}", ok=(200, 400, 404),
            idempotent=True,  # a read; 400 is Restate's answer to an id it cannot decode
        )
        return _object(answer, "GET /deployments/{id}") if status == 200 else None

    async def register_deployment(
        self, registration: dict[str, Any], *, refresh: bool = False
    ) -> dict[str, Any]:
        """Register (or find again) the deployment `registration` names (URI or Lambda ARN).

        Without `refresh` (`force: false`) an existing registration of the same URI is
        answered as it is, never overwritten, since overwriting can strand in-flight
        invocations. `refresh` re-runs discovery and replaces it: for when the process
        serving `uri` already runs different code than was registered.
        """
        _, answer = await self._http.request(
            "POST", "/deployments", body={**registration, "force": refresh}, ok=(200, 201),
            idempotent=True,
        )
        return _object(answer, "POST /deployments")

    async def discover(
        self, registration: dict[str, Any], *, window: timedelta = timedelta(seconds=30)
    ) -> list[dict[str, Any]]:
        """The services the deployment serves now; registers nothing (dry run).

        Restate's discovery of a deployment that accepts and never answers did not end in
        200 s (1.7.12), so one attempt lasts at most `window`, and a timeout is not retried.
        """
        seconds = window.total_seconds() or None
        _, answer = await self._http.request(
            "POST", "/deployments", body={**registration, "force": True, "dry_run": True},
            ok=(200, 201), idempotent=True,  # a dry run changes nothing
            backoff=Backoff(window=seconds or 0, min_retries=0, max_delay=2.0),
            client_timeout=aiohttp.ClientTimeout(total=seconds),
        )
        services = _object(answer, "POST /deployments").get("services")
        return [s for s in services if isinstance(s, dict)] if isinstance(services, list) else []

    async def get_service(self, name: str) -> dict[str, Any] | None:
        """The service as registered, or None when Restate does not know it."""
        status, answer = await self._http.request(
            "GET", f"/services/{quote(name, safe='')}", ok=(200, 404), idempotent=True
        )
        return None if status == 404 else _object(answer, "GET /services")

    async def query(self, sql: str, *, backoff: Backoff | None = None) -> list[dict[str, Any]]:
        """Rows of one SQL query over Restate's introspection tables.

        Callers embed only validated ids in `sql`; nothing unchecked is ever interpolated.
        """
        _, answer = await self._http.request(
            "POST", "/query", body={"query": sql}, idempotent=True,  # a read
            settled=True,  # a node coming up can answer with rows missing
            backoff=backoff,
        )
        rows = _object(answer, "POST /query").get("rows")
        if not isinstance(rows, list):
            raise RestateProtocolError(
                method="POST", url=self.endpoint + "/query", expected='{"rows": [...]}',
                got=str(answer),
            )
        return rows

    async def set_state(
        self, service: str, key: str, state: dict[str, Any], *, scope: str | None = None,
        if_unchanged: Mapping[str, bytes] | None = None,
    ) -> None:
        """Replace the whole state of `service`/`key` with `state` (name -> JSON value).

        Restate applies it without invoking the deployment (202, visible in SQL at once).
        `scope` (Restate 1.7) names a scoped instance of the object instead: its own state,
        kept in the partition of the scope, so all instances of one scope are read together.
        `if_unchanged` (the state as the caller read it, name -> raw value) makes it a
        compare-and-set: Restate applies it only while the state is still that, and drops
        it silently otherwise (it answers 202 either way: read back to know).
        """
        new_state = {
            name: list(json.dumps(value, separators=(",", ":")).encode())
            for name, value in state.items()
        }
        body: dict[str, Any] = {"object_key": key, "new_state": new_state}
        if scope is not None:
            body["scope"] = scope
        if if_unchanged is not None:
            body["version"] = state_version(if_unchanged)
        await self._http.request(
            "POST", f"/services/{quote(service, safe='')}/state", body=body, ok=(200, 202),
            idempotent=True,  # writing the same whole state twice is writing it once
        )

    async def set_public(self, service: str, public: bool) -> None:
        """Open (`public`) or close a service to ingress calls; calls from other services
        and delayed calls still reach a private one."""
        await self._http.request(
            "PATCH", f"/services/{quote(service, safe='')}", body={"public": public},
            idempotent=True,  # setting a flag twice
        )

    async def delete_deployment(self, deployment_id: str, *, force: bool) -> bool:
        """Remove a deployment; False when Restate does not know it (404)."""
        status, _ = await self._http.request(
            "DELETE", f"/deployments/{quote(deployment_id, safe='')}?force={str(force).lower()}",
            ok=(200, 202, 204, 404), idempotent=True,  # a second delete answers 404
        )
        return status != 404

    async def invocation_action(self, invocation_id: str, action: str) -> int:
        """`PATCH /invocations/{id}/{action}` (kill, pause, resume, purge); answers the
        status: 200/202 done, 409 not in a state for it (finished, not paused, running),
        404 unknown."""
        status, _ = await self._http.request(
            "PATCH", f"/invocations/{quote(invocation_id, safe='')}/{action}",
            ok=(200, 202, 404, 409), execution_id=invocation_id,
            idempotent=True,  # each action repeated changes nothing more (409 or 404)
        )
        return status

    async def cancel_invocation(self, invocation_id: str) -> bool:
        """Ask Restate to cancel; False when the invocation had already finished (409)."""
        status, _ = await self._http.request(
            "PATCH",
            f"/invocations/{invocation_id}/cancel",
            ok=(200, 202, 409),
            execution_id=invocation_id,
            idempotent=True,  # a second cancel answers 409, which is success
        )
        return status != 409


def state_version(state: Mapping[str, bytes]) -> str:
    """Restate's version of an object's state, as its admin API compares it: SHA-256 over
    the entries sorted by name (index as 8 big-endian bytes, 0x01, name, 0x02, value, 0x03),
    URL-safe base64 without padding (restate-types `StateMutationVersion`; the `restate kv`
    CLI computes it the same way)."""
    digest = hashlib.sha256()
    for index, (name, value) in enumerate(sorted((k.encode(), v) for k, v in state.items())):
        digest.update(index.to_bytes(8, "big") + b"\x01" + name + b"\x02" + value + b"\x03")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _object(answer: Any, what: str) -> dict[str, Any]:
    if not isinstance(answer, dict):
        raise RestateProtocolError(
            method=what.split()[0], url=what.split()[1], expected="a JSON object", got=str(answer)
        )
    return answer
