"""Polling helpers for tests: wait for what Restate reports, bounded in time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar, overload

from landlord_restate import ExecutionStatus, RestateProvider

T = TypeVar("T")


def _truthy(value: object) -> bool:
    return bool(value)


@overload
async def wait_for(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool] = ..., *,
    within: float = ..., what: str = ...,
) -> T: ...


@overload
async def wait_for(
    probe: Callable[[], T], until: Callable[[T], bool] = ..., *,
    within: float = ..., what: str = ...,
) -> T: ...


async def wait_for(
    probe: Callable[[], Any], until: Callable[[Any], bool] = _truthy, *,
    within: float = 30.0, what: str = "condition",
) -> Any:
    """Call `probe` (plain or async) until `until` holds for what it answers (by default:
    until that is truthy); answer that value. Fails naming `what` and the last value when
    `within` seconds pass first: a test waits for the condition, never for a guessed time."""
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if inspect.isawaitable(value):
            value = await value
        if until(value):
            return value
        assert time.monotonic() < deadline, f"{what} not met in {within}s: {value!r}"
        await asyncio.sleep(0.05)


async def wait_terminal(
    provider: RestateProvider, execution_id: str, within: float = 30.0
) -> ExecutionStatus:
    """Poll until the execution reaches a terminal state."""
    return await wait_status(provider, execution_id, lambda s: s.state.is_terminal, within)


async def wait_status(
    provider: RestateProvider,
    execution_id: str,
    condition: Callable[[ExecutionStatus], bool],
    within: float = 30.0,
) -> ExecutionStatus:
    """Poll the status until `condition` holds."""
    return await wait_for(
        lambda: provider.get_execution_status(execution_id), condition,
        within=within, what="status condition",
    )


def read_marks(path: Path) -> list[str]:
    """The lines a test handler's steps wrote (each line: one real run of a step)."""
    return path.read_text().splitlines() if path.exists() else []


async def wait_marks(path: Path, line: str, within: float = 30.0) -> list[str]:
    """Wait until the side-effect file holds `line`; answer all its lines."""
    return await wait_for(
        lambda: read_marks(path), lambda lines: line in lines,
        within=within, what=f"{line!r} written",
    )
