"""Local HTTP stand-ins for what cannot run here: a cloud admin API, an auth proxy.

Both bind 127.0.0.1 on port 0 and record what they receive.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """Serve `app` on 127.0.0.1, a free port; yield its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class FakeRestateAdmin:
    """Answers what create_workflow asks, like restate-server would, and records requests.

    Serves admin and ingress paths on one port: registration, the service description,
    and the catalog's `put`.
    """

    def __init__(self, service: str, handlers: list[str]) -> None:
        self.service = service
        self.handlers = handlers
        self.requests: list[tuple[str, str, Any, dict[str, str]]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.requests.append((request.method, request.path, body, dict(request.headers)))
        described = {
            "name": self.service,
            "ty": "Workflow",
            "metadata": {"landlord.handlers": ",".join(self.handlers)},
            "handlers": [{"name": "run"}],
            "public": True,
        }
        if request.path == "/health":
            return web.json_response({})
        if request.path == "/deployments" and request.method == "GET":
            return web.json_response({"deployments": []})  # none registered yet
        if request.path == "/deployments" and request.method == "POST":
            return web.json_response({"id": "dp_fake", "services": [described]}, status=201)
        if request.path == f"/services/{self.service}":
            return web.json_response(described)
        if request.path.startswith("/LandlordCatalog/") and request.path.endswith("/put"):
            return web.json_response(body)
        return web.json_response({"message": "not found"}, status=404)

    def registrations(self) -> list[Any]:
        """Bodies of every POST /deployments received."""
        return [b for m, p, b, _ in self.requests if (m, p) == ("POST", "/deployments")]


class AuthProxy:
    """A reverse proxy that lets through only `Authorization: Bearer <key>`.

    Self-hosted Restate has no authentication of its own; this is what an operator puts
    in front of it. Records the Authorization header of every request.
    """

    def __init__(self, upstream: str, key: str) -> None:
        self.upstream = upstream.rstrip("/")
        #: where the proxy listens, once served
        self.url = ""
        self.expected = f"Bearer {key}"
        self.seen: list[str | None] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._handle)
        self.app.on_cleanup.append(self._close)
        self._session: aiohttp.ClientSession | None = None

    async def _close(self, _: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization")
        self.seen.append(header)
        if header != self.expected:
            return web.json_response({"message": "unauthorized"}, status=401)
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {
            k: v for k, v in request.headers.items()
            if k.lower() in ("content-type", "accept")
        }
        async with self._session.request(
            request.method, self.upstream + request.path_qs, data=await request.read(),
            headers=headers, skip_auto_headers=("Content-Type",),
        ) as upstream:
            return web.Response(
                status=upstream.status, body=await upstream.read(),
                content_type=upstream.content_type,
            )
