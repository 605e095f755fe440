"""The spec catalog as the provider sees it: written through the deployment once, read and
deleted with restate-server alone.

Specs live in the deployment's `LandlordCatalog` Virtual Object, keyed by workflow id.
`put` goes through its exclusive handler (first write wins), which `create_workflow` may
do since it needs the deployment anyway. Reads are SQL over Restate's `state` table and a
delete is the admin API's state write, so starts, stops and deletes never wait for the
deployment.

Where a workflow's runs go (its service) is remembered per workflow once read: a spec
never changes once created, and what must not run after a delete is kept from running by
Restate itself (the service made private) and by the run, which reads the record again
before its first step. A start refused at Restate's door forgets the route and reads again.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from attrs import frozen

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.errors import RestateProtocolError
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.introspection import Introspection
from landlord_restate.restate.validation import ResolvedSpec
from landlord_restate.restate.wire import (
    CATALOG_PUT,
    CATALOG_SERVICE,
    CatalogRecord,
)
from landlord_restate.workflow.convert import format_rfc3339, parse_rfc3339, to_json
from landlord_restate.workflow.errors import WorkflowError, WorkflowNotFoundError
from landlord_restate.workflow.types import WorkflowSpec

#: what `purge` answers for an invocation that has not completed
_RUNNING = 409
#: how many workflows' routes are remembered at most
_ROUTES_LIMIT = 4096


@frozen
class StoredSpec:
    """A spec as the catalog holds it, resolved to where its executions run."""

    spec: WorkflowSpec
    resolved: ResolvedSpec
    created_at: datetime
    #: the invocation id of its catalog entry, which runs attach to ("" for an older record)
    entry: str = ""


class CatalogClient:
    """Put, read and delete specs; remember where each workflow's runs go."""

    def __init__(
        self,
        ingress: IngressClient,
        admin: AdminClient,
        sql: Introspection,
        resolve: Callable[[WorkflowSpec], ResolvedSpec],
    ) -> None:
        self._ingress = ingress
        self._admin = admin
        self._sql = sql
        self._resolve = resolve
        #: workflow id -> its stored spec, as last read (newest last)
        self._routes: OrderedDict[str, StoredSpec] = OrderedDict()

    async def put(self, spec: WorkflowSpec, resolved: ResolvedSpec) -> tuple[StoredSpec, bool]:
        """Store `spec` unless one is stored; answer what is stored and whether it is ours."""
        workflow_id = spec.workflow_id
        record = CatalogRecord(
            spec=to_json(spec), created_at=format_rfc3339(datetime.now(UTC)),
            service=resolved.service, handler=resolved.handler,
        )
        _, answer = await self._ingress.call(
            CATALOG_SERVICE, workflow_id, CATALOG_PUT, record.to_json(), workflow_id=workflow_id,
            idempotent=True,  # first write wins: a repeat answers the stored record
        )
        stored = self._read(answer, workflow_id)
        self._remember(workflow_id, stored)
        return stored, stored.created_at == parse_rfc3339(record.created_at)

    async def read(self, workflow_id: str) -> StoredSpec | None:
        """The stored spec, or None when the workflow does not exist (or was deleted)."""
        rows = await self._sql.catalog_records(workflow_id)
        stored = next(
            (self._read_row(row) for row in rows if row.get("service_key") == workflow_id), None
        )
        if stored is None:
            self._routes.pop(workflow_id, None)
        else:
            self._remember(workflow_id, stored)
        return stored

    async def read_all(self) -> list[StoredSpec]:
        """Every stored spec."""
        return [self._read_row(row) for row in await self._sql.catalog_records(None)]

    async def route(self, workflow_id: str) -> StoredSpec:
        """Where `workflow_id`'s runs go: remembered, else read; WorkflowNotFoundError."""
        stored = self._routes.get(workflow_id)
        if stored is None:
            stored = await self.read(workflow_id)
        if stored is None:
            raise WorkflowNotFoundError(workflow_id)
        return stored

    def forget(self, workflow_id: str) -> None:
        """Drop what is remembered of `workflow_id` (Restate refused a start of it)."""
        self._routes.pop(workflow_id, None)

    async def delete(self, workflow_id: str) -> StoredSpec | None:
        """Forget the spec; answer what was stored. Deleting an unknown workflow succeeds.

        The entry is purged first: from then on a run attaching to it is answered 404 (it
        ends `workflow_not_found`), and a new create can start a new entry.
        """
        stored = await self.read(workflow_id)
        self._routes.pop(workflow_id, None)
        entry = stored.entry if stored is not None else ""
        if entry and await self._admin.invocation_action(entry, "purge") == _RUNNING:
            # not completed yet (its deployment went down as it was created): end it
            await self._admin.invocation_action(entry, "kill")
            await self._admin.invocation_action(entry, "purge")
        await self._admin.set_state(CATALOG_SERVICE, workflow_id, {})
        return stored

    def _remember(self, workflow_id: str, stored: StoredSpec) -> None:
        self._routes.pop(workflow_id, None)
        self._routes[workflow_id] = stored
        if len(self._routes) > _ROUTES_LIMIT:
            self._routes.popitem(last=False)

    def _read_row(self, row: dict[str, Any]) -> StoredSpec:
        workflow_id = str(row.get("service_key", ""))
        try:
            answer = json.loads(str(row.get("value_utf8")))
        except ValueError as exc:
            raise self._malformed(row.get("value_utf8"), workflow_id) from exc
        return self._read(answer, workflow_id)

    def _read(self, answer: Any, workflow_id: str) -> StoredSpec:
        """A catalog record as the catalog writes it, resolved; else RestateProtocolError."""
        try:
            record = CatalogRecord.from_json(answer)
            spec = record.workflow_spec()
            resolved = (
                ResolvedSpec(workflow_id, record.service, record.handler)
                if record.service and record.handler else self._resolve(spec)
            )
            return StoredSpec(spec, resolved, parse_rfc3339(record.created_at), record.entry)
        except (TypeError, ValueError, KeyError, WorkflowError) as exc:
            raise self._malformed(answer, workflow_id) from exc

    def _malformed(self, answer: Any, workflow_id: str) -> RestateProtocolError:
        return RestateProtocolError(
            method="POST", url=f"{self._admin.endpoint}/query",
            expected=f"a catalog record {{spec, created_at, service, handler}} of {workflow_id}",
            got=json.dumps(answer, default=str), workflow_id=workflow_id,
        )
