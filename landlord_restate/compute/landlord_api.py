"""Landlord's API as its worker asks it: which compute provider runs a tenant.

A mirror of Landlord's `HTTPLandlordClient` (`GET {base}/v1/tenants/{uuid}`, the base
normalized by `apiversion.NormalizeBaseURL`, ten seconds at most) and
`CachedComputeProviderResolver` (the provider from the tenant's
`desired_config.compute_provider`, `desired_config.compute_provider_type`,
`labels.compute_provider`, `annotations.compute_provider`; an answer kept for the cache
time, an empty one never kept). A failure is `LandlordAPIError`: Landlord's worker logs it
and goes on to its other sources, and so does this project's.

Imported on first use by the handler deployment (it needs aiohttp), only when
`worker_landlord_api_url` is set.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import aiohttp
from loguru import logger

from landlord_restate.compute.errors import ComputeError

#: Landlord's current API version (`apiversion.Current`)
API_VERSION = "v1"
_VERSION_SEGMENT = re.compile(r"^v[0-9]+$")
#: Landlord's client timeout
_TIMEOUT = aiohttp.ClientTimeout(total=10)
#: how much of an answer a message shows
_EXCERPT = 200


class LandlordAPIError(ComputeError):
    """Landlord's API did not answer which provider runs the tenant (unreachable, a status
    other than 200, or an answer that is no tenant). Retryable: the API may answer later."""

    def __init__(self, message: str, *, tenant_id: str, url: str) -> None:
        super().__init__(message, tenant_id=tenant_id, retryable=True)
        self.url = url


def normalize_base_url(base_url: str) -> str:
    """Landlord's `apiversion.NormalizeBaseURL`: the base with `/v1` appended when its last
    path segment is no version (`/api` becomes `/v1`)."""
    base_url = base_url.rstrip("/")
    if not base_url:
        return base_url
    parts = urlsplit(base_url)
    segments = [s for s in parts.path.split("/") if s]
    last = segments[-1] if segments else ""
    if _VERSION_SEGMENT.fullmatch(last):
        return base_url
    if last == "api":
        segments[-1] = API_VERSION
    else:
        segments.append(API_VERSION)
    return urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(segments), "", ""))


def provider_from_tenant(tenant: Mapping[str, Any]) -> str:
    """Landlord's `providerFromMaps`: the first string among `desired_config.compute_provider`,
    `desired_config.compute_provider_type`, `labels.compute_provider`,
    `annotations.compute_provider`; "" when none is."""
    config = tenant.get("desired_config")
    if isinstance(config, Mapping):
        for key in ("compute_provider", "compute_provider_type"):
            if isinstance(config.get(key), str):
                return str(config[key])
    for section in ("labels", "annotations"):
        values = tenant.get(section)
        if isinstance(values, Mapping) and isinstance(values.get("compute_provider"), str):
            return str(values["compute_provider"])
    return ""


class LandlordAPI:
    """Asks Landlord's API which compute provider a tenant uses; keeps each answer for
    `ttl`. Owns one aiohttp session, opened on first use in the running event loop (a new
    loop, as AWS Lambda gives each invocation, gets a session of its own)."""

    def __init__(self, base_url: str, ttl: timedelta) -> None:
        self.base_url = normalize_base_url(base_url)
        self.ttl = ttl.total_seconds()
        self._cache: dict[str, tuple[str, float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def compute_provider(self, tenant_uuid: str) -> str:
        """The provider Landlord's API names for the tenant ("" when it names none), from
        the cache while it is fresh; `LandlordAPIError` when the API does not answer it."""
        cached = self._cache.get(tenant_uuid)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        tenant = await self._tenant(tenant_uuid)
        provider = provider_from_tenant(tenant)
        if provider:
            self._cache[tenant_uuid] = (provider, time.monotonic() + self.ttl)
        return provider

    async def _tenant(self, tenant_uuid: str) -> Mapping[str, Any]:
        url = f"{self.base_url}/tenants/{quote(tenant_uuid, safe='')}"
        log = logger.bind(tenant_id=tenant_uuid, landlord_api=self.base_url)
        try:
            async with self._client().get(url) as response:
                text = await response.text(errors="replace")
                if response.status != 200:
                    raise LandlordAPIError(
                        f"Landlord's API answered {response.status} to GET {url}: "
                        f"{text[:_EXCERPT]}", tenant_id=tenant_uuid, url=url,
                    )
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise LandlordAPIError(
                f"Landlord's API at {self.base_url} does not answer GET {url}: "
                f"{type(exc).__name__}: {exc}", tenant_id=tenant_uuid, url=url,
            ) from exc
        if not isinstance(answer, Mapping):
            # not shown: a tenant's data may hold its desired config's secrets
            raise LandlordAPIError(
                f"Landlord's API answered GET {url} with what is no tenant (a JSON object "
                f"was expected, {len(text)} characters came)", tenant_id=tenant_uuid, url=url,
            )
        log.debug("tenant read from Landlord's API")
        return answer

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            # a session of a loop that is gone cannot be closed any more; it is dropped
            self._session = aiohttp.ClientSession(timeout=_TIMEOUT)
            self._loop = loop
        return self._session

    async def aclose(self) -> None:
        """Close the session (when it belongs to the running loop); safe to call twice."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._loop:
                await session.close()
