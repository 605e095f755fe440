"""What the provider keeps per execution, keyed by its invocation id.

The provider writes this object's state with the admin API alone (why an execution was
stopped, which execution redrove it), so it never needs the deployment for that. The one
handler relays Landlord's compute callback to the run: the provider sends it here one-way,
Restate keeps it durably while the deployment is down, and a call from another service
still reaches a workflow whose service was made private by `delete_workflow`.

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
)

control = restate.VirtualObject(
    CONTROL_SERVICE,
    description="Landlord's records per execution: stop reasons, redrives; callback relay",
    journal_retention=timedelta(0),
)


@control.handler(name=DELIVER_CALLBACK_HANDLER, kind="shared")
async def deliver_callback(ctx: restate.ObjectSharedContext, delivery: dict[str, Any]) -> None:
    """Forward `delivery["payload"]` to the `compute_callback` of the run at
    (`delivery["service"]`, `delivery["key"]`)."""
    ctx.generic_send(
        str(delivery["service"]), COMPUTE_CALLBACK_HANDLER,
        json.dumps(delivery["payload"], separators=(",", ":")).encode(),
        key=str(delivery["key"]),
    )
