"""The worker's compute: which provider runs a tenant, and the providers themselves.

Landlord's worker order, resolving a request's compute provider (`WorkerCompute.resolve`):

1. the request's `compute_provider`;
2. Landlord's API (`worker_landlord_api_url`, asked for tenants with a `tenant_uuid`), its
   answer kept for `worker_compute_cache_ttl`; a failure is logged and the next source
   answers, as in Landlord;
3. `worker_compute_provider`;
4. the config's `compute.default_provider` (or its only provider);
5. none: "compute provider not specified".

Providers (`WorkerCompute.provider`) are made once per process, through their entry points
(`landlord_restate.compute_providers`) or `register_factory`, each with its section of the
Landlord config's `compute:`; an installed provider the section does not configure is made
with its defaults. Every configured section is checked when the app starts (a factory
does no I/O), so a malformed one stops the start naming its key.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import frozen
from loguru import logger

from landlord_restate.compute.errors import ComputeProviderNotFoundError
from landlord_restate.compute.provider import ComputeProvider
from landlord_restate.compute.registry import (
    configured_providers,
    create_provider,
    default_provider,
    installed_providers,
    provider_names,
)
from landlord_restate.restate.config import WorkerConfig
from landlord_restate.workflow.errors import ConfigError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

    from landlord_restate.compute.landlord_api import LandlordAPI

#: where a resolved provider came from, in Landlord's order
SOURCES = ("request", "landlord_api", "worker_compute_provider", "compute.default_provider")


@frozen
class Resolution:
    """The compute provider of one request, and which source named it (`SOURCES`)."""

    provider: str
    source: str


class WorkerCompute:
    """The worker's compute settings, providers and Landlord API client, for one process."""

    def __init__(self, worker: WorkerConfig, compute_config: Mapping[str, Any]) -> None:
        self.worker = worker
        self._sections = configured_providers(compute_config)
        #: `compute.default_provider`, else the only configured provider
        self.default = default_provider(compute_config)
        self._installed: dict[str, EntryPoint] | None = None
        self._providers: dict[str, ComputeProvider] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api: LandlordAPI | None = None

    @classmethod
    def load(cls, worker: WorkerConfig, compute_config: Mapping[str, Any]) -> WorkerCompute:
        """Read and check the settings: every configured provider is made once and dropped
        (factories do no I/O), and `worker_compute_provider` must name an installed one;
        ConfigError naming the key otherwise."""
        made = cls(worker, compute_config)
        for name, section in made._sections.items():
            create_provider(name, section, installed=made.installed())
        chosen = worker.worker_compute_provider
        if chosen and chosen not in made.known():
            known = ", ".join(made.known()) or "none"
            raise ConfigError(
                f"worker_compute_provider {chosen!r} is no installed compute provider "
                f"(installed: {known})", key="worker_compute_provider",
            )
        return made

    def installed(self) -> dict[str, EntryPoint]:
        """The entry points of compute providers, read once."""
        if self._installed is None:
            self._installed = installed_providers()
        return self._installed

    def known(self) -> list[str]:
        """Every provider name a request may use: installed (entry points) or registered
        (`register_factory`)."""
        return provider_names(self.installed())

    async def resolve(
        self, requested: str, tenant_id: str, tenant_uuid: str
    ) -> Resolution | None:
        """The tenant's compute provider in Landlord's order (see the module docstring);
        None when no source names one."""
        if requested:
            return Resolution(requested, "request")
        if self.worker.worker_landlord_api_url and tenant_uuid:
            from landlord_restate.compute.landlord_api import LandlordAPIError

            try:
                named = await self._landlord_api().compute_provider(tenant_uuid)
            except LandlordAPIError as exc:
                logger.bind(tenant_id=tenant_id, tenant_uuid=tenant_uuid).warning(
                    "failed to resolve compute provider from Landlord's API: {}", exc.message,
                )
                named = ""
            if named:
                return Resolution(named, "landlord_api")
        if self.worker.worker_compute_provider:
            return Resolution(self.worker.worker_compute_provider, "worker_compute_provider")
        if self.default:
            return Resolution(self.default, "compute.default_provider")
        return None

    def provider(self, name: str) -> ComputeProvider:
        """The provider called `name`, made on first use with its `compute.<name>` section
        (or its defaults); `ComputeProviderNotFoundError` naming the known ones when no
        installed provider has that name."""
        self._same_loop()
        made = self._providers.get(name)
        if made is not None:
            return made
        if name not in self.known():
            raise ComputeProviderNotFoundError(name, self.known())
        made = create_provider(name, self._sections.get(name, {}), installed=self.installed())
        self._providers[name] = made
        logger.bind(provider=name).info(
            "compute provider {} ready ({})", name,
            f"compute.{name}" if name in self._sections else "its defaults",
        )
        return made

    def _same_loop(self) -> None:
        """Providers hold client sessions of the event loop they were first used in; in a
        new loop (AWS Lambda gives each invocation one) they are made again."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._providers.clear()
            self._loop = loop

    def _landlord_api(self) -> LandlordAPI:
        from landlord_restate.compute.landlord_api import LandlordAPI

        if self._api is None:
            assert self.worker.worker_landlord_api_url
            self._api = LandlordAPI(self.worker.worker_landlord_api_url, self.worker.cache_ttl)
        return self._api

    async def aclose(self) -> None:
        """Close every provider made and the API client; safe to call twice. A failure is
        logged, the rest still closed."""
        providers = list(self._providers.values())
        self._providers.clear()
        for provider in reversed(providers):
            try:
                await provider.aclose()
            except Exception as exc:
                logger.bind(provider=provider.name).opt(exception=exc).warning(
                    "closing compute provider {} failed", provider.name,
                )
        api, self._api = self._api, None
        if api is not None:
            await api.aclose()


_CURRENT: list[WorkerCompute] = []


def configure(compute: WorkerCompute) -> None:
    """Make `compute` what TenantProvisioning uses in this process (the app does, at start)."""
    _CURRENT[:] = [compute]


def current() -> WorkerCompute:
    """What `configure` set; without it (a handler module used alone), the worker keys'
    defaults and no `compute:` section."""
    if not _CURRENT:
        _CURRENT.append(WorkerCompute(WorkerConfig(), {}))
    return _CURRENT[0]
