"""One read of everything an execution's status is built from.

The invocation's row, then its journal (two point lookups, in turn: see
`Introspection.invocation`); what they cannot say is read after, only when needed: the
shim's workflow state when the journal lacks its record, and the provider's record
(`LandlordControl`) of an execution that ended in failure (a stop's reason). The data
then flows down once, to `status.build_status`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from landlord_restate.restate.introspection import Introspection
from landlord_restate.restate.records import ExecutionRecord, state_from_journal, state_from_rows
from landlord_restate.restate.vocabulary import NOT_STARTED, CompletionResult
from landlord_restate.restate.wire import ENVELOPE_STATE, OUTCOME_STATE


async def read_execution(sql: Introspection, execution_id: str) -> ExecutionRecord:
    """The record of `execution_id` (checked by the caller); ExecutionNotFoundError unless
    it names a shim's `run` invocation. UnexpectedRow for a row of the wrong shape."""
    invocation, journal = await sql.invocation(execution_id)
    recorded = state_from_journal(journal)
    failed = invocation.get("completion_result") == CompletionResult.FAILURE
    state_rows: list[Any] = []
    if _lacks_record(invocation, recorded, failed):
        state_rows = await sql.state_rows(str(invocation.get("target_service_name", "")),
                                          str(invocation.get("target_service_key", "")))
    # a failed execution may have been stopped: its reason is the provider's record
    control = await sql.control_state(execution_id) if failed else {}
    return ExecutionRecord(
        execution_id=execution_id, invocation=invocation, journal=journal,
        recorded=state_from_rows(state_rows) | recorded, control=control,
    )


def _lacks_record(invocation: Mapping[str, Any], recorded: Mapping[str, Any],
                  failed: bool) -> bool:
    """Whether the journal lacks the envelope, or a failure's outcome (a journal retained
    shorter than the workflow, or trimmed): then the shim's workflow state has them."""
    if invocation.get("status") in NOT_STARTED:
        return False
    return ENVELOPE_STATE not in recorded or (failed and OUTCOME_STATE not in recorded)
