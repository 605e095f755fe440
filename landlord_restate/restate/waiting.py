"""Waiting for an execution to end, by polling its status: one helper for every caller.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from landlord_restate.workflow.types import ExecutionStatus

if TYPE_CHECKING:
    from landlord_restate.restate.provider import RestateProvider


async def poll_until_terminal(
    provider: RestateProvider,
    execution_id: str,
    *,
    interval: float = 0.1,
    within: float | None = None,
) -> ExecutionStatus:
    """The status once the execution ended; after `within` seconds (if given), TimeoutError.

    Polls `get_execution_status` every `interval` seconds.
    """
    deadline = None if within is None else time.monotonic() + within
    while True:
        status = await provider.get_execution_status(execution_id)
        if status.state.is_terminal:
            return status
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(
                f"execution {execution_id} still {status.state.value} after {within}s"
            )
        await asyncio.sleep(interval)
