"""Workflow specs stored in Restate: a Virtual Object keyed by workflow id, and each spec's
record as a completed invocation a run can check without this deployment.

The exclusive `put` serializes writes per workflow id, so two concurrent creates of one id
store one spec. The first write also sends the spec to `LandlordCatalogRecord`, a Service
whose invocation, idempotent by workflow id, completes at once and keeps its output: a run
attaches to it (restate-server answers from the completed invocation) to learn its
workflow still exists, and a delete purges it. A Service, not a Workflow: the record is
not a run of the workflow it describes, and Restate's UI does not list it as one. The
provider reads and deletes records with the admin API and SQL alone.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate

from landlord_restate.restate.wire import (
    CATALOG_GET,
    CATALOG_PUT,
    CATALOG_RECORD,
    CATALOG_RECORD_HANDLER,
    CATALOG_RECORD_SERVICE,
    CATALOG_SERVICE,
    INTERNAL_METADATA,
)

#: how long a record stays attachable: as long as the workflow exists (a delete purges
#: it); Restate needs a finite retention
RECORD_RETENTION = timedelta(days=3650)

catalog = restate.VirtualObject(
    CATALOG_SERVICE,
    description=(
        "Landlord's workflow catalog (internal to landlord-restate): one key per workflow "
        "id holding its spec. `put` is called by create_workflow; not a workflow of yours."
    ),
    metadata=INTERNAL_METADATA | {"landlord.role": "workflow catalog"},
    # the spec lives in state; a journal of each get/put kept for a day (the server's
    # default) would only pile up behind every create
    journal_retention=timedelta(0),
)

records = restate.Service(
    CATALOG_RECORD_SERVICE,
    description=(
        "Landlord's workflow specs as completed invocations (internal to landlord-restate): "
        "each execution attaches to its workflow's record to check the workflow still "
        "exists; delete_workflow purges it. Not a run of any workflow."
    ),
    metadata=INTERNAL_METADATA | {"landlord.role": "workflow spec record"},
    # called only from the catalog's `put`: nothing reaches it through the ingress
    ingress_private=True,
    idempotency_retention=RECORD_RETENTION,
    journal_retention=timedelta(0),
)


@records.handler(name=CATALOG_RECORD_HANDLER)
async def record(ctx: restate.Context, spec_record: dict[str, Any]) -> dict[str, Any]:
    """Answer the workflow's catalog record: its invocation, kept completed, is what a run
    attaches to before its first step."""
    return spec_record


@catalog.handler(name=CATALOG_PUT)
async def put(ctx: restate.ObjectContext, spec_record: dict[str, Any]) -> dict[str, Any]:
    """Store the record unless one is stored; answer what is stored (first write wins).

    The first write also sends the record to its `LandlordCatalogRecord` invocation and
    keeps that invocation's id in the record, so the record and what runs attach to are
    always the same spec.
    """
    existing: dict[str, Any] | None = await ctx.get(CATALOG_RECORD)
    if existing is not None:
        return existing
    # an idempotency key makes Restate keep the completed invocation's output (what runs
    # attach to); one per create, so a workflow created again after a delete gets a new one
    sent = ctx.service_send(record, spec_record,
                            idempotency_key=f"{ctx.key()}@{spec_record.get('created_at', '')}")
    stored = spec_record | {"entry": await sent.invocation_id()}
    ctx.set(CATALOG_RECORD, stored)
    return stored


@catalog.handler(name=CATALOG_GET, kind="shared", ingress_private=True)
async def get(ctx: restate.ObjectSharedContext) -> dict[str, Any] | None:
    """The stored record, or null: what a run started without its record's id reads."""
    stored: dict[str, Any] | None = await ctx.get(CATALOG_RECORD)
    return stored
