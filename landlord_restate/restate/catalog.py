"""The spec catalog as the provider sees it: put, get and delete through Restate's ingress.

Specs live in the deployment's `LandlordCatalog` Virtual Object, keyed by workflow id; the
first write wins. An optional cache (`spec_cache_ttl`) keeps specs it read, since a spec
never changes once created: only a delete made through another provider instance can go
unseen, for at most the TTL.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
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
        #: workflow id -> the answer of the read not yet issued, shared by its waiters
        self._next_read: dict[str, asyncio.Future[StoredSpec | None]] = {}
        #: workflow ids with a read in flight
        self._reading: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

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
        """The stored spec, or None when the workflow does not exist (or was deleted).

        Strict: the answer comes from a catalog read issued after this call began, so a
        delete that finished before it, through any provider, is always seen. Concurrent
        calls for one workflow share such a read: a call that arrives while a read is in
        flight waits for the next one, which then serves every call that arrived meanwhile.
        Under load one read serves a whole batch of starts.
        """
        cached = self._cache.get(workflow_id)
        if cached is not None and time.monotonic() - cached[0] < self._ttl:
            return cached[1]
        batch = self._next_read.get(workflow_id)
        if batch is None:
            batch = self._next_read[workflow_id] = asyncio.get_running_loop().create_future()
            # if every waiter was cancelled, nobody reads a failure: mark it seen
            batch.add_done_callback(lambda done: done.cancelled() or done.exception())
            if workflow_id not in self._reading:
                self._issue(workflow_id)
        return await asyncio.shield(batch)

    def _issue(self, workflow_id: str) -> None:
        """Send the read every call waiting for `workflow_id` shares."""
        batch = self._next_read.pop(workflow_id)
        self._reading.add(workflow_id)
        task = asyncio.get_running_loop().create_task(self._serve(workflow_id, batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, workflow_id: str, batch: asyncio.Future[StoredSpec | None]) -> None:
        try:
            batch.set_result(await self._fetch(workflow_id))
        except BaseException as exc:  # every waiter gets the read's own failure
            batch.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
        finally:
            self._reading.discard(workflow_id)
            if workflow_id in self._next_read:  # calls that arrived during this read
                self._issue(workflow_id)

    async def _fetch(self, workflow_id: str) -> StoredSpec | None:
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
