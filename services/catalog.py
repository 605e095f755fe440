"""Workflow specs stored in Restate: a Virtual Object keyed by workflow id.

The exclusive `put` serializes writes per workflow id, so two concurrent creates of one id
store one spec; `get` is shared and never waits behind them: every run calls it before its
first step. The provider reads and deletes records with the admin API and SQL alone, so
neither needs this deployment.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import restate

from landlord_restate.restate.wire import (
    CATALOG_ENTRY_SERVICE,
    CATALOG_GET,
    CATALOG_PUT,
    CATALOG_RECORD,
    CATALOG_SERVICE,
    RUN_HANDLER,
)

#: how long a catalog entry stays attachable: as long as the workflow exists (a delete
#: purges it); Restate needs a finite retention
ENTRY_RETENTION = timedelta(days=3650)

catalog = restate.VirtualObject(
    CATALOG_SERVICE,
    description="Landlord workflow specs, keyed by workflow id",
    # the spec lives in state; a journal of each get/put kept for a day (the server's
    # default) would only pile up behind every start
    journal_retention=timedelta(0),
)


entry = restate.Workflow(
    CATALOG_ENTRY_SERVICE,
    description="Landlord workflow specs as completed invocations, keyed by workflow id",
    journal_retention=timedelta(0),
)


@entry.main(name=RUN_HANDLER, workflow_retention=ENTRY_RETENTION,
            journal_retention=timedelta(0))
async def entry_run(ctx: restate.WorkflowContext, record: dict[str, Any]) -> dict[str, Any]:
    """Answer the record: runs attach to this invocation to read it."""
    return record


@catalog.handler(name=CATALOG_PUT)
async def put(ctx: restate.ObjectContext, record: dict[str, Any]) -> dict[str, Any]:
    """Store `record` unless one is stored; answer what is stored (first write wins).

    The first write also starts the record's catalog entry, and keeps its invocation id in
    the record, so the record and its entry are always the same spec.
    """
    existing: dict[str, Any] | None = await ctx.get(CATALOG_RECORD)
    if existing is not None:
        return existing
    sent = ctx.workflow_send(entry_run, ctx.key(), arg=record)
    stored = record | {"entry": await sent.invocation_id()}
    ctx.set(CATALOG_RECORD, stored)
    return stored


@catalog.handler(name=CATALOG_GET, kind="shared")
async def get(ctx: restate.ObjectSharedContext) -> dict[str, Any] | None:
    """The stored record, or null."""
    record: dict[str, Any] | None = await ctx.get(CATALOG_RECORD)
    return record
