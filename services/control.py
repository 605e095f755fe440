"""What the provider keeps per execution, keyed by its invocation id.

The provider writes this object's state with the admin API alone (why an execution was
stopped, and by which action), so it never needs the deployment for that. The run reads
its own stop record when it is cancelled, to end with the reason in its own journal and
failure, where Restate's UI shows them. The other handler relays Landlord's compute
callback to the run: the provider sends it here one-way, Restate keeps it durably while
the deployment is down, and a call from another service still reaches a workflow whose
service was made private by `delete_workflow`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import restate

from landlord_restate.restate.wire import (
    COMPUTE_CALLBACK_HANDLER,
    CONTROL_SERVICE,
    DELIVER_CALLBACK_HANDLER,
    INTERNAL_METADATA,
    STOP_RECORD_HANDLER,
    STOP_STATE,
)

control = restate.VirtualObject(
    CONTROL_SERVICE,
    description=(
        "Landlord's record of each execution, keyed by its execution id (internal to "
        "landlord-restate): why and how it was stopped; relays the compute callback."
    ),
    metadata=INTERNAL_METADATA | {"landlord.role": "execution records and callback relay"},
    journal_retention=timedelta(0),
)


@control.handler(name=DELIVER_CALLBACK_HANDLER, kind="shared")
async def deliver_callback(ctx: restate.ObjectSharedContext, delivery: dict[str, Any]) -> None:
    """Forward `delivery["payload"]` to the `compute_callback` of the run at
    (`delivery["service"]`, `delivery["key"]`): post_compute_callback sends it here."""
    ctx.generic_send(
        str(delivery["service"]), COMPUTE_CALLBACK_HANDLER,
        json.dumps(delivery["payload"], separators=(",", ":")).encode(),
        key=str(delivery["key"]),
    )


@control.handler(name=STOP_RECORD_HANDLER, kind="shared", ingress_private=True)
async def stop_record(ctx: restate.ObjectSharedContext) -> dict[str, Any] | None:
    """The stop the provider recorded for this execution ({reason, how, requested_at}), or
    null: a cancelled run asks, to end with its reason."""
    stop: dict[str, Any] | None = await ctx.get(STOP_STATE)
    return stop
