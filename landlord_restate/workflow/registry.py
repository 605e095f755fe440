"""Providers by name, as Landlord's Go `workflow.Registry`."""

from __future__ import annotations

from landlord_restate.workflow.errors import ProviderConflictError, ProviderNotFoundError
from landlord_restate.workflow.provider import Provider


class Registry:
    """Maps provider names to providers; a name is taken at most once."""

    def __init__(self) -> None:
        self._providers: dict[str, Provider] = {}

    def register(self, provider: Provider) -> None:
        """Add `provider` under its name; a taken name is a `ProviderConflictError`."""
        if provider.name in self._providers:
            raise ProviderConflictError(provider.name)
        self._providers[provider.name] = provider

    def get(self, name: str) -> Provider:
        """The provider named `name`, or `ProviderNotFoundError`."""
        try:
            return self._providers[name]
        except KeyError:
            raise ProviderNotFoundError(name) from None

    def list(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._providers)
