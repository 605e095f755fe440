"""What every family of operations shares, made once when a provider opens.

The provider is a door; each family of operations (workflows, deployments, executions,
stopping, operator actions, search) is a room of its own that is handed these parts rather
than reaching into the provider for them, so each can be built and tested alone.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from attrs import frozen

if TYPE_CHECKING:  # types only: the public DeploymentInfo beside a room must not load aiohttp
    from loguru import Logger

    from landlord_restate.restate.admin import AdminClient
    from landlord_restate.restate.catalog import CatalogClient
    from landlord_restate.restate.config import RestateConfig
    from landlord_restate.restate.ingress import IngressClient
    from landlord_restate.restate.introspection import Introspection


@frozen
class Parts:
    """The clients, the spec catalog and the logger of one open provider."""

    config: RestateConfig
    admin: AdminClient
    ingress: IngressClient
    #: every SQL read
    sql: Introspection
    #: stored workflow specs and where their runs go
    specs: CatalogClient
    #: bound with the provider's endpoint; rooms bind the ids they act on
    log: Logger

    def bind(self, **fields: Any) -> Logger:
        """The provider's logger with more structured fields (ids, state)."""
        return self.log.bind(**fields)
