"""The spec catalog as the provider sees it: put, get and delete through Restate's ingress.

Specs live in the deployment's `LandlordCatalog` Virtual Object, keyed by workflow id; the
first write wins. An optional cache (`spec_cache_ttl`) keeps specs it read, since a spec
never changes once created: only a delete made through another provider instance can go
unseen, for at most the TTL.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen

from landlord_restate.restate.errors import RestateProtocolError
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.validation import ResolvedSpec
from landlord_restate.restate.wire import (
    CATALOG_DELETE,
    CATALOG_GET,
    CATALOG_PUT,
    CATALOG_SERVICE,
)
from landlord_restate.workflow.convert import format_rfc3339, from_json, parse_rfc3339, to_json
from landlord_restate.workflow.errors import WorkflowError
from landlord_restate.workflow.types import WorkflowSpec

#: how many specs the cache keeps at most
_CACHE_LIMIT = 4096


@frozen
class StoredSpec:
    """A spec as the catalog holds it, resolved to where its executions run."""

    spec: WorkflowSpec
    resolved: ResolvedSpec
    created_at: datetime


class CatalogClient:
    """Put, get and delete specs; resolve each with the provider's own rules."""

    def __init__(
        self,
        ingress: IngressClient,
        resolve: Callable[[WorkflowSpec], ResolvedSpec],
        *,
        cache_ttl: timedelta = timedelta(0),
    ) -> None:
        self._ingress = ingress
        self._resolve = resolve
        self._ttl = cache_ttl.total_seconds()
        #: workflow id -> (when read, stored spec), only with a TTL
        self._cache: OrderedDict[str, tuple[float, StoredSpec]] = OrderedDict()

    async def put(self, spec: WorkflowSpec) -> tuple[StoredSpec, bool]:
        """Store `spec` unless one is stored; answer what is stored and whether it is ours."""
        workflow_id = spec.workflow_id
        record = {"spec": to_json(spec), "created_at": format_rfc3339(datetime.now(UTC))}
        _, answer = await self._ingress.call(
            CATALOG_SERVICE, workflow_id, CATALOG_PUT, record, workflow_id=workflow_id,
            idempotent=True,  # first write wins: a repeat answers the stored record
        )
        stored = self._read(answer, workflow_id)
        return stored, answer.get("created_at") == record["created_at"]

    async def get(self, workflow_id: str) -> StoredSpec | None:
        """The stored spec, or None when the workflow does not exist (or was deleted)."""
        cached = self._cache.get(workflow_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        _, answer = await self._ingress.call(
            CATALOG_SERVICE, workflow_id, CATALOG_GET, workflow_id=workflow_id,
            idempotent=True,  # a read
        )
        if answer is None:
            self._cache.pop(workflow_id, None)
            return None
        return self._read(answer, workflow_id)

    async def delete(self, workflow_id: str) -> None:
        """Forget the spec; deleting an unknown workflow succeeds."""
        self._cache.pop(workflow_id, None)
        await self._ingress.call(
            CATALOG_SERVICE, workflow_id, CATALOG_DELETE, workflow_id=workflow_id,
            idempotent=True,  # deleting twice is deleting once
        )

    def _read(self, answer: Any, workflow_id: str) -> StoredSpec:
        """A catalog record as the catalog writes it, resolved; else RestateProtocolError."""
        try:
            stored = self._parse(answer)
        except (TypeError, ValueError, KeyError, WorkflowError) as exc:
            raise RestateProtocolError(
                method="POST", url=f"{self._ingress.endpoint}/{CATALOG_SERVICE}/{workflow_id}",
                expected="a catalog record {spec, created_at}",
                got=json.dumps(answer, default=str), workflow_id=workflow_id,
            ) from exc
        if self._ttl > 0:
            self._cache.pop(workflow_id, None)
            self._cache[workflow_id] = (time.monotonic(), stored)
            if len(self._cache) > _CACHE_LIMIT:
                self._cache.popitem(last=False)
        return stored

    def _parse(self, answer: Any) -> StoredSpec:
        created_at = parse_rfc3339(answer["created_at"])
        spec = from_json(WorkflowSpec, answer["spec"])
        return StoredSpec(spec, self._resolve(spec), created_at)
