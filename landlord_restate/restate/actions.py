"""What an operator does to an execution besides stopping it: pause, resume, purge, and
redrive (a new execution that reuses what a failed one completed).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import json

from landlord_restate.restate.errors import RestateProtocolError
from landlord_restate.restate.executions import Executions
from landlord_restate.restate.introspection import Row
from landlord_restate.restate.naming import check_execution_id
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.records import UnexpectedRow, state_from_journal
from landlord_restate.restate.redrive import redrive_name, reusable
from landlord_restate.restate.status import live_state
from landlord_restate.restate.tags import TagIndex
from landlord_restate.restate.vocabulary import InvocationStatus
from landlord_restate.restate.wire import (
    CONTROL_SERVICE,
    ENVELOPE_STATE,
    ExecutionEnvelope,
)
from landlord_restate.workflow.errors import (
    ExecutionNotFoundError,
    ExecutionStateError,
    InvalidInputError,
)
from landlord_restate.workflow.types import ExecutionInput, ExecutionResult, ExecutionState

COMPLETED = InvocationStatus.COMPLETED
#: how many names a redrive tries when users' own executions hold the first ones
_NAME_ATTEMPTS = 8
#: the states a redrive starts from
_REDRIVABLE = frozenset({ExecutionState.FAILED, ExecutionState.STOPPED, ExecutionState.TIMEOUT})


class OperatorActions:
    """Pause, resume, purge and redrive executions."""

    def __init__(self, parts: Parts, executions: Executions) -> None:
        self._parts = parts
        self._executions = executions
        self._tags = TagIndex(parts)

    async def act(self, execution_id: str, action: str) -> None:
        """`pause` or `resume` a not-finished execution; a finished one is left as it is."""
        check_execution_id(execution_id)
        target = await self._parts.sql.target(execution_id)
        log = self._parts.bind(execution_id=execution_id, action=action,
                               restate_status=target.get("status"))
        if target.get("status") == COMPLETED:
            log.info("{}: execution already finished, nothing to do", action)
            return
        answer = await self._parts.admin.invocation_action(execution_id, action)
        log.info("{}: {}", action, "done" if answer in (200, 202) else "nothing to do")

    async def purge(self, execution_id: str) -> None:
        """Forget a finished execution (see `RestateProvider.purge_execution`)."""
        check_execution_id(execution_id)
        try:
            target = await self._parts.sql.target(execution_id)
        except ExecutionNotFoundError:
            return
        if target.get("status") != COMPLETED:
            state = live_state(str(target.get("status")))[0].value
            raise ExecutionStateError(
                f"execution {execution_id!r} is {state}: only a finished execution can be "
                "purged (stop or kill it first)",
                execution_id=execution_id, state=state,
            )
        await self._parts.admin.invocation_action(execution_id, "purge")
        # what the provider kept of it: its stop record, and where searches found it
        await asyncio.gather(self._parts.admin.set_state(CONTROL_SERVICE, execution_id, {}),
                             self._tags.forget(execution_id))
        self._parts.bind(execution_id=execution_id).info("purged")

    async def redrive(self, execution_id: str) -> ExecutionResult:
        """A new execution reusing what the original completed (see
        `RestateProvider.redrive_execution`)."""
        check_execution_id(execution_id)
        status = await self._executions.status(execution_id)
        if status.state not in _REDRIVABLE:
            raise InvalidInputError(
                f"execution {execution_id!r} is {status.state.value}: only a failed, stopped "
                "or timed-out execution can be redriven",
                field="execution_id", execution_id=execution_id,
            )
        journal = await self._parts.sql.full_journal(execution_id)
        original = await self._original(execution_id, journal)
        plan = reusable(journal)
        log = self._parts.bind(workflow_id=original.workflow_id, redriven_from=execution_id,
                               reused=len(plan))
        for attempt in range(1, _NAME_ATTEMPTS + 1):
            execution = ExecutionInput(
                execution_name=redrive_name(original.execution_name, execution_id, attempt),
                input=original.input,
                tags=original.tags,
                metadata=original.metadata,
                trigger_source=original.trigger_source,
            )
            result, accepted = await self._executions.start(
                original.workflow_id, execution, redrive=plan, redriven_from=execution_id
            )
            if accepted or await self._redrives(result.execution_id, execution_id):
                log.bind(execution_id=result.execution_id).info(
                    "redrive: {}", "started" if accepted else "already started")
                return result
            # a user's own execution holds that name: the next one is the redrive's
            log.bind(taken_by=result.execution_id).info(
                "redrive: name {} is another execution's", execution.execution_name)
        raise ExecutionStateError(
            f"execution {execution_id!r}: {_NAME_ATTEMPTS} names for its redrive are held by "
            "other executions", execution_id=execution_id, state=status.state.value,
        )

    async def _original(self, execution_id: str, journal: list[Row]) -> ExecutionEnvelope:
        """The envelope the original was started with, from its journal's Input entry.

        A journal without it belongs to an execution purged since its status was read
        (ExecutionNotFoundError) or one whose journal Restate no longer retains."""
        sql = self._parts.sql
        try:
            recorded = state_from_journal(journal).get(ENVELOPE_STATE)
        except UnexpectedRow as exc:
            raise sql.protocol_error(exc, execution_id=execution_id) from exc
        if recorded is None:
            target = await sql.target(execution_id)  # ExecutionNotFoundError once purged
            raise ExecutionStateError(
                f"execution {execution_id!r} has no journal left to redrive from (journal "
                "retention passed)", execution_id=execution_id,
                state=str(target.get("status")),
            )
        try:
            return ExecutionEnvelope.from_json(recorded)
        except Exception as exc:
            raise RestateProtocolError(
                method="POST", url=f"{self._parts.admin.endpoint}/query",
                expected=f"the execution envelope in the journal of {execution_id}",
                got=json.dumps(recorded, default=str), execution_id=execution_id,
            ) from exc

    async def _redrives(self, candidate: str, original: str) -> bool:
        """Whether the execution `candidate` is a redrive of `original` (not a user's own
        execution that happens to hold the name)."""
        status = await self._executions.status(candidate)
        return status.metadata.get("redriven_from") == original
