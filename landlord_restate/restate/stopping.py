"""Stopping executions: the reason recorded by the server first, then a cancel (the
handler's cancellation runs when it can) or a kill, and the kill that follows a cancel
not finished within `stop_grace`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from landlord_restate.restate.errors import RestateProtocolError
from landlord_restate.restate.limits import MAX_REASON, check_text
from landlord_restate.restate.naming import check_execution_id, split_workflow_key
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.records import state_from_rows
from landlord_restate.restate.vocabulary import InvocationStatus
from landlord_restate.restate.wire import CONTROL_SERVICE, STOP_STATE
from landlord_restate.workflow.convert import format_rfc3339
from landlord_restate.workflow.errors import WorkflowError

if TYPE_CHECKING:
    from loguru import Logger


#: how often a stop writes its record before it gives up (each write is dropped only when
#: another writer changed the state in between)
_RECORD_ATTEMPTS = 5
#: pauses between reads of a record just written (seconds)
_READ_BACK = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)


class Stopping:
    """Stop and kill executions; own the kills promised after `stop_grace` (a task each,
    which `aclose` waits for: the promise outlives the caller that made it)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        #: stopped executions to kill once stop_grace has passed, by execution id
        self._pending_kills: dict[str, asyncio.Task[None]] = {}

    async def stop(self, execution_id: str, reason: str) -> None:
        """Record, cancel, kill after the grace (see `RestateProvider.stop_execution`)."""
        check_execution_id(execution_id)
        check_text(reason, "reason", MAX_REASON, execution_id=execution_id)
        log, finished = await self._record(execution_id, reason, "stop")
        if finished:
            log.info("stop: execution already finished, nothing to do")
            return
        cancelled = await self._parts.admin.cancel_invocation(execution_id)
        grace = self._parts.config.stop_grace.total_seconds()
        if cancelled and execution_id not in self._pending_kills:
            task = asyncio.get_running_loop().create_task(
                self._kill_after_grace(execution_id, grace)
            )
            self._pending_kills[execution_id] = task
            task.add_done_callback(lambda _: self._pending_kills.pop(execution_id, None))
        log.bind(reason=reason, stop_grace=grace).info(
            "stop: {}", "cancellation requested" if cancelled else "execution already finished"
        )

    async def kill(self, execution_id: str, reason: str) -> None:
        """Record, then kill at once (see `RestateProvider.kill_execution`)."""
        check_execution_id(execution_id)
        check_text(reason, "reason", MAX_REASON, execution_id=execution_id)
        log, finished = await self._record(execution_id, reason, "kill")
        if finished:
            log.info("kill: execution already finished, nothing to do")
            return
        answer = await self._parts.admin.invocation_action(execution_id, "kill")
        log.bind(reason=reason).info(
            "kill: {}", "killed" if answer in (200, 202) else "execution already finished"
        )

    async def _kill_after_grace(self, execution_id: str, grace: float) -> None:
        """Kill the execution if its cancellation has not ended it within `grace` seconds
        (the deployment is down, or the handler's cancellation does not finish)."""
        log = self._parts.bind(execution_id=execution_id)
        try:
            async with asyncio.timeout(grace):
                await self._parts.ingress.attach(execution_id)
        except TimeoutError:
            pass
        except WorkflowError as exc:
            log.info("stop: waiting for the cancellation failed ({}); killing", exc)
        else:
            return  # it ended within the grace
        try:
            answer = await self._parts.admin.invocation_action(execution_id, "kill")
        except WorkflowError as exc:  # nobody awaits this task: say it here
            log.error("stop: the kill after stop_grace failed: {}", exc)  # noqa: TRY400 (the message says it; no traceback)
            return
        if answer in (200, 202):
            log.bind(stop_grace=grace).warning("stop: not ended within stop_grace; killed")

    async def _record(self, execution_id: str, reason: str, how: str) -> tuple[Logger, bool]:
        """Keep why the execution is stopped where status reads it; answer a bound logger
        and whether the execution had already finished.

        The first reason wins, atomically: the write is a compare-and-set on the state as
        read (Restate's state version), so of stops and kills racing, one reason is kept
        and never replaced; each then reads back which one that is.
        """
        sql = self._parts.sql
        target = await sql.target(execution_id)
        service, key = str(target["target_service_name"]), str(target["target_service_key"])
        log = self._parts.bind(execution_id=execution_id, service=service,
                               workflow_id=split_workflow_key(key)[0])
        if target.get("status") == InvocationStatus.COMPLETED:
            return log, True
        stop = {"reason": reason or "stopped", "how": how,
                "requested_at": format_rfc3339(datetime.now(UTC))}
        for _ in range(_RECORD_ATTEMPTS):
            rows = await sql.control_rows(execution_id)
            recorded = state_from_rows(rows)
            if STOP_STATE in recorded:
                return log, False  # a stop got there first: its reason stays
            read = {str(row["key"]): str(row["value_utf8"]).encode() for row in rows}
            await self._parts.admin.set_state(
                CONTROL_SERVICE, execution_id, recorded | {STOP_STATE: stop}, if_unchanged=read)
            if await self._recorded(execution_id):
                return log, False
        raise RestateProtocolError(
            method="POST", url=f"{self._parts.admin.endpoint}/services/{CONTROL_SERVICE}/state",
            expected=f"the stop of {execution_id} recorded", got="no stop after "
            f"{_RECORD_ATTEMPTS} writes", execution_id=execution_id,
        )

    async def _recorded(self, execution_id: str) -> bool:
        """Whether a stop is recorded now (Restate applies a state write a moment after it
        answers 202, and drops one whose version no longer matched)."""
        for pause in _READ_BACK:
            if STOP_STATE in await self._parts.sql.control_state(execution_id):
                return True
            await asyncio.sleep(pause)
        return False

    async def aclose(self) -> None:
        """Keep the kills promised by stops: wait until each stopped execution has ended
        or its stop_grace has passed and it was killed (at most stop_grace), so a provider
        closed inside a grace (a CLI, a process shutting down) never drops a kill."""
        pending = list(self._pending_kills.items())
        if not pending:
            return
        grace = self._parts.config.stop_grace.total_seconds()
        self._parts.bind(stops=len(pending), stop_grace=grace).info(
            "closing: waiting up to {:g}s (stop_grace) for {} stopped executions to end "
            "or be killed", grace, len(pending),
        )
        await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
