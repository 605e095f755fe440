"""Handlers that show what AWS Lambda's request/response path changes (hosted beside
`tests.handlers` by the Lambda tests): payload sizes, tasks left running when an invocation
returns, and memory kept in the process between two awaits.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from restate.server_context import restate_context_is_replaying

from services import HandlerContext, handler


def _mark(path: str | None, line: str) -> None:
    if path:
        with Path(path).open("a") as out:
            out.write(line + "\n")


@handler("BigStep")
async def big_step(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """A step whose result is `request["bytes"]` characters, then a step after it."""
    size = int(request["bytes"])
    blob = await ctx.step("big", lambda: "x" * size)
    after = await ctx.step("after", lambda: len(blob))
    return {"length": after}


#: tasks a handler started and did not await: kept so the loop does not collect them
_STARTED: set[asyncio.Task[None]] = set()


@handler("FireAndForget")
async def fire_and_forget(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Starts a task it never awaits, then sleeps durably: the task marks when it ran."""
    marks = request.get("marks")

    async def later() -> None:
        await asyncio.sleep(0.2)
        _mark(marks, "background ran")

    if not restate_context_is_replaying.get():
        task = asyncio.get_running_loop().create_task(later())
        _STARTED.add(task)
        task.add_done_callback(_STARTED.discard)
    await ctx.sleep(timedelta(milliseconds=int(request.get("sleep_ms", 1000))), name="pause")
    return {"slept": True}


#: what a handler remembered in this process, by execution
_REMEMBERED: dict[str, str] = {}


@handler("Remembers")
async def remembers(ctx: HandlerContext, request: dict[str, Any]) -> dict[str, Any]:
    """Keeps a journaled token in process memory across a durable sleep, and answers
    whether the memory still held it after the sleep."""
    token = await ctx.step("token", lambda: uuid.uuid4().hex)
    if not restate_context_is_replaying.get():
        _REMEMBERED[ctx.execution_id] = token
    await ctx.sleep(timedelta(milliseconds=int(request.get("sleep_ms", 500))), name="pause")
    return {"remembered": _REMEMBERED.get(ctx.execution_id) == token}
