"""One more handler module: a deployment that also imports it serves a different handler set
(the upgrade tests' "changed code at the same address")."""

from __future__ import annotations

from typing import Any

from services import HandlerContext, handler


@handler("Extra")
async def extra(ctx: HandlerContext, request: Any) -> dict[str, Any]:
    """Answers that it ran."""
    return {"extra": await ctx.step("extra", lambda: True)}
