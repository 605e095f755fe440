"""Compute providers by name (Landlord's Go `compute.Registry`), and building them from
Landlord's `compute:` config section through Python entry points.

A provider package declares its factory in the `landlord_restate.compute_providers` entry
point group; the factory takes the provider's `compute.<name>` section and answers a
`ComputeProvider`:

    [project.entry-points."landlord_restate.compute_providers"]
    ecs = "acme_landlord_ecs:create"

`load_registry(config["compute"])` creates every configured provider through its entry
point; `async with` the registry closes them again. A module that is no package of its own
(one the handler deployment imports, named in `LANDLORD_RESTATE_HANDLERS`) adds its factory
with `register_factory(name, factory)` instead; it is found like an entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from loguru import logger

from landlord_restate.compute.errors import (
    ComputeProviderConflictError,
    ComputeProviderNotFoundError,
)
from landlord_restate.compute.provider import ComputeProvider
from landlord_restate.workflow.errors import ConfigError

if TYPE_CHECKING:  # importlib.metadata is imported when entry points are read: the handler
    # deployment imports this package on every cold start (Lambda) and never reads them
    from importlib.metadata import EntryPoint

#: the entry point group compute provider factories are declared in
ENTRY_POINT_GROUP = "landlord_restate.compute_providers"
#: the key of `compute:` that names the default provider rather than configuring one
DEFAULT_PROVIDER_KEY = "default_provider"

#: what an entry point names: the provider's config section in, a provider out
ProviderFactory = Callable[[Mapping[str, Any]], ComputeProvider]


class ComputeRegistry:
    """Maps names to compute providers; a name is taken at most once.

    An async context manager: on exit (or `aclose()`) it closes the providers it holds, the
    last registered first.
    """

    def __init__(self, *, default: str | None = None) -> None:
        self._providers: dict[str, ComputeProvider] = {}
        #: the provider a request that names none goes to (None: it must name one)
        self.default = default

    def register(self, provider: ComputeProvider) -> None:
        """Add `provider` under its name; a taken name is `ComputeProviderConflictError`."""
        name = provider.name
        if not name:
            raise ValueError("provider name cannot be empty")
        if name in self._providers:
            raise ComputeProviderConflictError(name)
        self._providers[name] = provider
        logger.bind(provider=name).debug("registered compute provider {}", name)

    def get(self, name: str) -> ComputeProvider:
        """The provider named `name`; `ComputeProviderNotFoundError` naming the known ones."""
        try:
            return self._providers[name]
        except KeyError:
            raise ComputeProviderNotFoundError(name, list(self._providers)) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._providers)

    def has(self, name: str) -> bool:
        """Whether a provider is registered under `name`."""
        return name in self._providers

    def provider_schema(self, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The config schema and defaults of the provider named `name` (Landlord's
        `GetProviderSchema`)."""
        provider = self.get(name)
        return provider.config_schema(), provider.config_defaults()

    async def aclose(self) -> None:
        """Close every provider, the last registered first; safe to call twice. Every one is
        closed even when another fails; the first failure is raised after."""
        providers = list(self._providers.values())
        self._providers.clear()
        failure: BaseException | None = None
        for provider in reversed(providers):
            try:
                await provider.aclose()
            except Exception as exc:  # close the rest first
                logger.bind(provider=provider.name).opt(exception=exc).warning(
                    "closing compute provider {} failed", provider.name
                )
                failure = failure or exc
        if failure is not None:
            raise failure

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


#: factories added by `register_factory`, by name: found before the entry points
_FACTORIES: dict[str, ProviderFactory] = {}


def register_factory(name: str, factory: ProviderFactory) -> None:
    """Add a compute provider factory under `name` for this process, as an entry point
    would (a module imported twice registers the same factory again: no change). Another
    factory under a taken name is `ComputeProviderConflictError`."""
    if not name:
        raise ValueError("provider name cannot be empty")
    existing = _FACTORIES.get(name)
    if existing is not None and existing is not factory and (
        getattr(existing, "__qualname__", None), getattr(existing, "__module__", None)
    ) != (getattr(factory, "__qualname__", None), getattr(factory, "__module__", None)):
        raise ComputeProviderConflictError(name)
    _FACTORIES[name] = factory


def registered_factories() -> dict[str, ProviderFactory]:
    """The factories `register_factory` added, by name."""
    return dict(_FACTORIES)


def installed_providers() -> dict[str, EntryPoint]:
    """The compute provider factories installed in this environment, by name."""
    import importlib.metadata  # here, not at the top: see the TYPE_CHECKING import

    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def provider_names(installed: Mapping[str, EntryPoint] | None = None) -> list[str]:
    """Every provider name a config may use: the entry points and registered factories."""
    installed = installed_providers() if installed is None else installed
    return sorted({*installed, *_FACTORIES})


def create_provider(
    name: str,
    config: Mapping[str, Any] | None = None,
    *,
    installed: Mapping[str, EntryPoint] | None = None,
) -> ComputeProvider:
    """Create the provider `name` through its entry point, with its config section.

    A name no installed package provides (nor `register_factory`) is a `ConfigError`
    naming it and the installed ones; so is a factory that cannot be loaded or answers
    something that is no provider.
    """
    installed = installed_providers() if installed is None else installed
    key = f"compute.{name}"
    factory = _FACTORIES.get(name)
    if factory is not None:
        where = f"{getattr(factory, '__module__', '?')}:{getattr(factory, '__qualname__', '?')}"
    else:
        entry_point = installed.get(name)
        if entry_point is None:
            known = ", ".join(provider_names(installed)) or "none"
            raise ConfigError(
                f"unknown compute provider {name!r} in {key} (installed: {known})", key=key,
            )
        where = entry_point.value
        try:
            factory = entry_point.load()
        except Exception as exc:
            raise ConfigError(
                f"compute provider {name!r}: cannot load {where}: {exc}", key=key,
            ) from exc
    assert factory is not None
    provider = factory(dict(config or {}))
    if not isinstance(provider, ComputeProvider):
        raise ConfigError(
            f"compute provider {name!r}: {where} answered "
            f"{type(provider).__name__}, not a ComputeProvider", key=key,
        )
    if provider.name != name:
        raise ConfigError(
            f"compute provider {name!r}: {where} answered a provider named "
            f"{provider.name!r}", key=key,
        )
    return provider


def configured_providers(compute_config: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The provider sections of Landlord's `compute:` config, by name (an empty section,
    `mock:` in YAML, is an empty mapping)."""
    sections: dict[str, Mapping[str, Any]] = {}
    for name, section in (compute_config or {}).items():
        if name == DEFAULT_PROVIDER_KEY:
            continue
        if section is None:
            section = {}
        if not isinstance(section, Mapping):
            raise ConfigError(
                f"compute.{name} must be a mapping of provider settings, got "
                f"{type(section).__name__}", key=f"compute.{name}",
            )
        sections[str(name)] = section
    return sections


def default_provider(compute_config: Mapping[str, Any] | None) -> str | None:
    """The provider a request that names none goes to: `compute.default_provider` when set,
    else the only configured provider when exactly one is (Landlord's
    `ComputeConfig.DefaultProvider()`), else None."""
    config = compute_config or {}
    sections = configured_providers(config)
    chosen = config.get(DEFAULT_PROVIDER_KEY)
    if chosen is not None and chosen != "":
        if not isinstance(chosen, str):
            raise ConfigError(
                f"compute.{DEFAULT_PROVIDER_KEY} must be a provider name, got {chosen!r}",
                key=f"compute.{DEFAULT_PROVIDER_KEY}",
            )
        if chosen not in sections:
            known = ", ".join(sorted(sections)) or "none"
            raise ConfigError(
                f"compute.{DEFAULT_PROVIDER_KEY} is {chosen!r}, which is not configured "
                f"(configured: {known})", key=f"compute.{DEFAULT_PROVIDER_KEY}",
            )
        return chosen
    return next(iter(sections)) if len(sections) == 1 else None


def load_registry(
    compute_config: Mapping[str, Any] | None,
    *,
    installed: Mapping[str, EntryPoint] | None = None,
) -> ComputeRegistry:
    """A registry of every provider in Landlord's `compute:` section, each created through
    its entry point with its own section; `registry.default` is `default_provider(...)`.

    No provider configured is a `ConfigError`, as in Landlord ("at least one compute provider
    must be configured"). Factories do no I/O, so a failure half way leaves nothing open.
    """
    sections = configured_providers(compute_config)
    if not sections:
        raise ConfigError("at least one compute provider must be configured", key="compute")
    registry = ComputeRegistry(default=default_provider(compute_config))
    installed = installed_providers() if installed is None else installed
    for name, section in sections.items():
        registry.register(create_provider(name, section, installed=installed))
    return registry
