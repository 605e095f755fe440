"""The HTTP side of one open provider: its two sessions, the clients on them, and the parts
every room shares.

One `aiohttp.ClientSession` carries every call to Restate; a second pool carries only long
waits (attach), so any number of them never takes a connection a start, stop or callback
needs. Both belong to the event loop that opened them.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from attrs import define

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.catalog import CatalogClient
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.introspection import Introspection
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.validation import ResolvedSpec
from landlord_restate.workflow.errors import ProviderStateError, WorkflowError
from landlord_restate.workflow.types import WorkflowSpec

if TYPE_CHECKING:
    from loguru import Logger


@define
class Connection:
    """Two sessions on one event loop, and the parts built on them."""

    _session: aiohttp.ClientSession
    _waits: aiohttp.ClientSession
    _loop: asyncio.AbstractEventLoop
    parts: Parts

    @classmethod
    def open(
        cls, config: RestateConfig, log: Logger, resolve: Callable[[WorkflowSpec], ResolvedSpec]
    ) -> Connection:
        """Sessions and clients for `config` on the running loop (nothing is sent yet)."""
        timeout = aiohttp.ClientTimeout(total=config.request_timeout.total_seconds())
        session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=256),
            headers=config.auth_headers(),
        )
        waits = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
            headers=config.auth_headers(),
        )
        backoff = config.backoff()
        admin = AdminClient(RestateHttp(session, config.admin_endpoints, backoff=backoff))
        ingress = IngressClient(
            RestateHttp(session, config.endpoints, backoff=backoff),
            waits=RestateHttp(waits, config.endpoints, backoff=backoff),
        )
        sql = Introspection(admin, ingress, backoff)
        specs = CatalogClient(ingress, admin, sql, resolve)
        return cls(session, waits, asyncio.get_running_loop(),
                   Parts(config, admin, ingress, sql, specs, log))

    async def first_health_check(self) -> None:
        """Try the admin API once per node; unreachable is only a warning, so a provider
        opened while Restate is down does not wait. A key no longer used is warned of."""
        admin, log = self.parts.admin, self.parts.log
        if self.parts.config.spec_cache_ttl:
            log.warning(
                "spec_cache_ttl is no longer used: starts read no spec (docs/operations.md)"
            )
        try:
            await admin.health(backoff=Backoff(window=0, min_retries=len(admin.nodes) - 1))
        except WorkflowError as exc:
            log.bind(endpoint=admin.endpoint).warning(
                "Restate admin API at {} not reachable at start: {}", admin.endpoint, exc
            )
        else:
            log.debug("Restate admin API healthy")

    def check_loop(self) -> None:
        """ProviderStateError unless called from the event loop that opened the sessions
        (an aiohttp session belongs to one loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self._loop:
            raise ProviderStateError(
                "RestateProvider was opened in another event loop; open one provider per loop"
            )

    def node_clients(self) -> tuple[list[AdminClient], list[IngressClient]]:
        """One client per configured node, each trying its node once."""
        config = self.parts.config
        return (
            [AdminClient(RestateHttp(self._session, node)) for node in config.admin_endpoints],
            [IngressClient(RestateHttp(self._session, node)) for node in config.endpoints],
        )

    async def aclose(self) -> None:
        """Close both sessions."""
        for session in (self._session, self._waits):
            await session.close()
