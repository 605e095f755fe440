"""Polling helpers for tests: wait for what Restate reports, bounded in time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from landlord_restate import ExecutionStatus, RestateProvider


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
    deadline = time.monotonic() + within
    while True:
        status = await provider.get_execution_status(execution_id)
        if condition(status):
            return status
        assert time.monotonic() < deadline, f"condition not met in {within}s: {status}"
        await asyncio.sleep(0.05)


def read_marks(path: Path) -> list[str]:
    """The lines a test handler's steps wrote (each line: one real run of a step)."""
    return path.read_text().splitlines() if path.exists() else []


async def wait_marks(path: Path, line: str, within: float = 30.0) -> list[str]:
    """Wait until the side-effect file holds `line`; answer all its lines."""
    deadline = time.monotonic() + within
    while True:
        lines = read_marks(path)
        if line in lines:
            return lines
        assert time.monotonic() < deadline, f"{line!r} not written in {within}s: {lines}"
        await asyncio.sleep(0.05)
