"""Finding executions: recent ones of a workflow, in a state, of one tenant.

Answered by restate-server alone (SQL introspection), also while the deployment is down.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from landlord_restate.restate.naming import EXECUTION_NAME, check_execution_name, check_workflow_id
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.records import UnexpectedRow
from landlord_restate.restate.status import build_summary
from landlord_restate.workflow.errors import InvalidInputError
from landlord_restate.workflow.types import ExecutionState, ExecutionSummary


class Search:
    """List executions by workflow, state and name."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    async def list(
        self,
        workflow_id: str | None,
        state: ExecutionState | str | None,
        limit: int,
        name_prefix: str | None,
    ) -> list[ExecutionSummary]:
        """Recent executions, newest first (see `RestateProvider.list_executions`)."""
        if workflow_id is not None:
            check_workflow_id(workflow_id)
        if name_prefix is not None:
            try:
                check_execution_name(name_prefix)
            except InvalidInputError:
                raise InvalidInputError(
                    f"name_prefix {name_prefix!r} must be the start of an execution name "
                    f"({EXECUTION_NAME.pattern})", field="name_prefix",
                ) from None
        wanted = _wanted_state(state)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= 10_000:
            raise InvalidInputError("limit must be between 1 and 10000", field="limit")
        sql = self._parts.sql
        rows, outcomes = await sql.recent_runs(workflow_id, wanted, limit, name_prefix)
        try:
            summaries = [build_summary(row, outcomes.get(row["id"])) for row in rows]
        except UnexpectedRow as exc:
            raise sql.protocol_error(exc) from exc
        if wanted is not None:
            summaries = [s for s in summaries if s.state is wanted]
        if name_prefix is not None:
            summaries = [s for s in summaries if s.execution_name.startswith(name_prefix)]
        return summaries[:limit]


def _wanted_state(state: ExecutionState | str | None) -> ExecutionState | None:
    if state is None:
        return None
    try:
        return ExecutionState.parse(str(state))
    except ValueError:
        valid = ", ".join(s.value for s in ExecutionState)
        raise InvalidInputError(f"state {state!r} is not one of: {valid}", field="state") from None
