"""The handler the UI screenshots stop while it waits: Landlord's compute callback.

Served beside the built-in TenantProvisioning by `scripts/ui_screenshots.py`
(LANDLORD_RESTATE_HANDLERS=scripts.ui_handlers).
"""

from __future__ import annotations

from typing import Any

from services import HandlerContext, HandlerError, handler


@handler("ProvisionWithCallback")
async def provision_with_callback(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Ask for compute, then wait for Landlord's compute callback (where an operator stops
    it in the screenshots)."""
    requested = await ctx.step("request-compute", lambda: {"tenant": request.get("tenant_id")})
    callback = await ctx.compute_callback()
    if callback.get("status") != "succeeded":
        raise HandlerError("compute_failed", str(callback.get("error_message", "")))
    return {"requested": requested, "compute": callback}
