"""Every SQL statement the provider sends to Restate's introspection, and the reading of
its rows.

Restate's `POST /query` takes no bind parameters, so `sql_literal` is the one place a value
enters SQL: it re-checks the value's rule and doubles quotes. No other module builds SQL.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.errors import (
    RestateProtocolError,
    RestateServerError,
    RestateUnavailableError,
)
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.naming import (
    EXECUTION_NAME,
    INVOCATION_ID,
    KEY_SEPARATOR,
    SERVICE_NAME,
    WORKFLOW_ID,
    WORKFLOW_KEY,
)
from landlord_restate.restate.records import UnexpectedRow, state_from_journal, state_from_rows
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.vocabulary import (
    NOT_STARTED,
    CompletionResult,
    EntryType,
    InvocationStatus,
)
from landlord_restate.restate.wire import (
    CATALOG_ENTRY_SERVICE,
    CATALOG_RECORD,
    CATALOG_SERVICE,
    CONTROL_SERVICE,
    OUTCOME_STATE,
    RUN_HANDLER,
)
from landlord_restate.workflow.errors import ExecutionNotFoundError
from landlord_restate.workflow.types import ExecutionState

Row = dict[str, Any]

#: what Restate's query engine says of an id that has the shape but does not decode
_UNDECODABLE_ID = "non valid invocation id"
#: a concurrent journal read can miss the newest entries; read again this often at most
_JOURNAL_REREADS = 3

#: a query every partition must answer: the local stack's readiness probe
ALL_PARTITIONS_SQL = "SELECT count(*) AS n FROM sys_invocation"
_INVOCATION_COLUMNS = (
    "id, target_service_name, target_service_key, target_handler_name, status, created_at, "
    "running_at, completed_at, completion_result, completion_failure, retry_count, journal_size, "
    "last_failure, last_failure_related_command_name, last_failure_error_code, modified_at, "
    "trace_id, pinned_deployment_id"
)
_TARGET_COLUMNS = "target_service_name, target_service_key, target_handler_name, status"
_SUMMARY_COLUMNS = (
    "id, target_service_key, status, created_at, running_at, completed_at, "
    "completion_result, completion_failure"
)
#: the lite form of each entry, but in full those that carry values status reads: SetState
#: (what the shim wrote), Input (the envelope) and Output (a success's output)
_JOURNAL_COLUMNS = (
    "index, entry_type, name, appended_at, CASE WHEN entry_type IN "
    f"('{EntryType.SET_STATE}', '{EntryType.INPUT}', '{EntryType.OUTPUT}') "
    "THEN entry_json ELSE entry_lite_json END AS entry"
)
def _status_in(statuses: frozenset[InvocationStatus]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in sorted(statuses)) + ")"


_STATE_FILTERS = {
    ExecutionState.PENDING: _status_in(NOT_STARTED),
    ExecutionState.RUNNING: _status_in(frozenset(InvocationStatus) - NOT_STARTED
                                       - {InvocationStatus.COMPLETED}),
    ExecutionState.SUCCEEDED: f"completion_result = '{CompletionResult.SUCCESS}'",
    ExecutionState.FAILED: f"completion_result = '{CompletionResult.FAILURE}'",
    ExecutionState.STOPPED: f"completion_result = '{CompletionResult.FAILURE}'",
    ExecutionState.TIMEOUT: f"completion_result = '{CompletionResult.FAILURE}'",
}
#: the catalog's entries are `run` invocations too, of a service of their own: not executions
_NOT_AN_ENTRY = f"target_service_name != '{CATALOG_ENTRY_SERVICE}'"
#: states told apart only after the query, by the shim's recorded outcome
_OUTCOME_DECIDED = {ExecutionState.FAILED, ExecutionState.STOPPED, ExecutionState.TIMEOUT}
#: a LIKE prefix: a workflow key, or a workflow id and the separator
_KEY_PREFIX = re.compile(
    WORKFLOW_ID.pattern.removesuffix("$") + f"({re.escape(KEY_SEPARATOR)}"
    + EXECUTION_NAME.pattern.removeprefix("^").removesuffix("{1,128}$") + "*)?$"
)


def sql_literal(value: str, rule: re.Pattern[str]) -> str:
    """`value` as a SQL string literal, if it matches `rule` in full; else ValueError.

    Every value is checked where it enters the provider; this checks it again, so no
    unchecked text reaches SQL even by a path nobody foresaw.
    """
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise ValueError(f"{value!r} may not enter SQL: it does not match {rule.pattern}")
    return "'" + value.replace("'", "''") + "'"


class Introspection:
    """Reads of Restate's `sys_invocation`, `sys_journal` and `state` tables."""

    def __init__(self, admin: AdminClient, ingress: IngressClient, backoff: Backoff) -> None:
        self._admin = admin
        self._ingress = ingress
        self._backoff = backoff

    async def invocation(self, execution_id: str) -> tuple[Row, list[Row]]:
        """The `run` invocation's row and its journal, read in parallel (one round trip).

        ExecutionNotFoundError unless the id names a shim's `run` invocation.
        """
        literal = sql_literal(execution_id, INVOCATION_ID)
        rows, journal = await asyncio.gather(
            self._by_id(
                f"SELECT {_INVOCATION_COLUMNS} FROM sys_invocation WHERE id = {literal}",  # noqa: S608
                execution_id,
            ),
            self._journal(literal, execution_id),
        )
        invocation = _run_row(rows, execution_id)
        # a journal read a moment before the invocation row lacks its newest entries;
        # read it again until it has all journal_size of them
        for _ in range(_JOURNAL_REREADS):
            if len(journal) >= int(invocation.get("journal_size") or 0):
                break
            journal = await self._journal(literal, execution_id)
        return invocation, journal

    async def target(self, execution_id: str, backoff: Backoff | None = None) -> Row:
        """Service, key and status of a shim's `run` invocation, or ExecutionNotFoundError."""
        literal = sql_literal(execution_id, INVOCATION_ID)
        rows = await self._by_id(
            f"SELECT {_TARGET_COLUMNS} FROM sys_invocation WHERE id = {literal}",  # noqa: S608
            execution_id, backoff=backoff,
        )
        return _run_row(rows, execution_id)

    async def state_rows(self, service: str, key: str) -> list[Row]:
        """The shim's workflow state, by a point lookup on (service, key)."""
        try:
            where = (f"service_name = {sql_literal(service, SERVICE_NAME)} AND "
                     f"service_key = {sql_literal(key, WORKFLOW_KEY)}")
        except ValueError:
            return []  # not a shim's key: it has no state of ours
        return await self._admin.query(
            f"SELECT key, value_utf8 FROM state WHERE {where}"  # noqa: S608
        )

    async def recent_runs(
        self,
        workflow_id: str | None,
        state: ExecutionState | None,
        limit: int,
        name_prefix: str | None = None,
    ) -> tuple[list[Row], dict[str, Any]]:
        """Newest-first `run` rows (of one workflow, in one state, whose execution name
        starts with `name_prefix`) and the recorded outcome of each failed one, by id.
        Failures are told apart (failed, stopped, timeout) only by those outcomes, so more
        rows are read when one of those states is asked for. `_` in a prefix is a LIKE
        wildcard, which only widens the match: callers compare names exactly."""
        where = [f"target_handler_name = '{RUN_HANDLER}'", _NOT_AN_ENTRY]
        if workflow_id is not None:
            key_prefix = workflow_id + KEY_SEPARATOR + (name_prefix or "")
            where.append(f"target_service_key LIKE {_prefix(key_prefix)}")
        elif name_prefix is not None:
            literal = sql_literal(name_prefix, EXECUTION_NAME)
            where.append(f"target_service_key LIKE '%{KEY_SEPARATOR}{literal[1:-1]}%'")
        if state is not None:
            where.append(_STATE_FILTERS[state])
        fetch = limit * 4 if state in _OUTCOME_DECIDED or name_prefix else limit
        rows = await self._admin.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM sys_invocation WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY created_at DESC LIMIT {int(fetch)}"
        )
        return rows, await self._outcomes(rows)

    async def runs_by_key_prefix(self, prefix: str) -> dict[str, Any]:
        """Status of every `run` whose workflow key starts with `prefix`, by key."""
        rows = await self._admin.query(
            "SELECT target_service_key, status FROM sys_invocation "  # noqa: S608
            f"WHERE target_handler_name = '{RUN_HANDLER}' AND {_NOT_AN_ENTRY} AND "
            f"target_service_key LIKE {_prefix(prefix)}"
        )
        return {str(row.get("target_service_key", "")): row.get("status") for row in rows}

    async def full_journal(self, execution_id: str) -> list[Row]:
        """Every journal entry of the invocation in full (`entry`), in order: what a
        redrive reads to know what completed, with which results."""
        literal = sql_literal(execution_id, INVOCATION_ID)
        return await self._admin.query(
            "SELECT index, entry_type, name, entry_json AS entry FROM sys_journal "  # noqa: S608
            f"WHERE id = {literal} ORDER BY index"
        )

    async def in_flight_by_deployment(self) -> dict[str, int]:
        """How many executions not completed run on each deployment (by the deployment
        Restate pinned them to at their first attempt)."""
        rows = await self._admin.query(
            "SELECT pinned_deployment_id AS deployment, count(*) AS n FROM sys_invocation "  # noqa: S608
            f"WHERE target_handler_name = '{RUN_HANDLER}' AND {_NOT_AN_ENTRY} "
            f"AND status != '{InvocationStatus.COMPLETED}' "
            "AND pinned_deployment_id IS NOT NULL GROUP BY pinned_deployment_id"
        )
        return {str(row["deployment"]): int(row["n"]) for row in rows if row.get("deployment")}

    async def latest_deployments(self) -> dict[str, str]:
        """Each service's newest revision's deployment, by service name."""
        rows = await self._admin.query("SELECT name, deployment_id FROM sys_service")
        return {str(row["name"]): str(row["deployment_id"]) for row in rows
                if row.get("deployment_id")}

    async def catalog_records(self, workflow_id: str | None) -> list[Row]:
        """The catalog's records (`service_key` is the workflow id, `value_utf8` the record):
        of one workflow, or all of them."""
        where = (f"service_name = '{CATALOG_SERVICE}' AND key = '{CATALOG_RECORD}'")
        if workflow_id is not None:
            where += f" AND service_key = {sql_literal(workflow_id, WORKFLOW_ID)}"
        return await self._admin.query(
            f"SELECT service_key, value_utf8 FROM state WHERE {where}"  # noqa: S608
        )

    async def control_state(self, execution_id: str) -> dict[str, Any]:
        """What the provider recorded of an execution (stop reason, redrive), by key."""
        rows = await self._admin.query(
            "SELECT key, value_utf8 FROM state WHERE "  # noqa: S608
            f"service_name = '{CONTROL_SERVICE}' AND "
            f"service_key = {sql_literal(execution_id, INVOCATION_ID)}"
        )
        return state_from_rows(rows)

    def protocol_error(
        self, unexpected: UnexpectedRow, *, execution_id: str | None = None
    ) -> RestateProtocolError:
        """A row of the wrong shape, as the error of the query that answered it."""
        return RestateProtocolError(
            method="POST", url=f"{self._admin.endpoint}/query", expected=unexpected.expected,
            got=unexpected.got, execution_id=execution_id,
        )

    def _troubled(self) -> bool:
        return self._admin.troubled(_TROUBLE_SECONDS) or self._ingress.troubled(_TROUBLE_SECONDS)

    async def _outcomes(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        failed = [r for r in rows if r.get("completion_result") == CompletionResult.FAILURE]
        if not failed:
            return {}
        try:
            ids = ", ".join(sql_literal(str(r.get("id")), INVOCATION_ID) for r in failed)
        except ValueError as exc:  # the server's rows, not the caller's input
            raise self.protocol_error(UnexpectedRow(
                "invocation ids", str([r.get("id") for r in failed]))) from exc
        journal = await self._admin.query(
            "SELECT id, entry_type, entry_json AS entry FROM sys_journal "  # noqa: S608
            f"WHERE id IN ({ids}) AND entry_type = '{EntryType.SET_STATE}'"
        )
        by_id: dict[str, list[Row]] = {}
        for row in journal:
            by_id.setdefault(str(row["id"]), []).append(row)
        outcomes = {}
        for invocation_id, entries in by_id.items():
            try:
                outcome = state_from_journal(entries).get(OUTCOME_STATE)
            except UnexpectedRow as exc:
                raise self.protocol_error(exc) from exc
            if outcome is not None:
                outcomes[invocation_id] = outcome
        return outcomes

    async def _journal(self, literal: str, execution_id: str) -> list[Row]:
        return await self._by_id(
            f"SELECT {_JOURNAL_COLUMNS} FROM sys_journal WHERE id = {literal} "  # noqa: S608
            "ORDER BY index",
            execution_id, invocation_row=False,
        )

    async def _by_id(
        self,
        sql: str,
        execution_id: str,
        *,
        invocation_row: bool = True,
        backoff: Backoff | None = None,
    ) -> list[Row]:
        """Rows of `sql` about one invocation id.

        An id of the right shape that Restate cannot decode is simply not an execution.
        For the invocation's own row (`invocation_row`), no rows is checked with the
        ingress, which asks the owning partition itself: during a failover a query can miss
        a partition, and "not found" must not be said of an execution that exists. Then the
        query is asked again, within the retry window.
        """
        backoff = backoff or self._backoff
        began, retries, confirmed = time.monotonic(), 0, False
        while True:
            try:
                rows = await self._admin.query(sql, backoff=backoff)
            except RestateServerError as exc:
                if _UNDECODABLE_ID in exc.body:
                    raise ExecutionNotFoundError(execution_id) from None
                raise
            if rows or not invocation_row:
                return rows
            elapsed = time.monotonic() - began
            if not confirmed:
                if await self._ingress.invocation_exists(execution_id, backoff=backoff):
                    confirmed = True
                elif not self._troubled() or backoff.gives_up(retries, elapsed):
                    raise ExecutionNotFoundError(execution_id)
                # else: during a failover the ingress too answered 404 for an execution
                # that existed (seen with 1.7.12 when the leader of most partitions was
                # killed): ask both again until Restate has been calm for a while
            if backoff.gives_up(retries, elapsed):
                raise RestateUnavailableError(
                    self._admin.endpoint,
                    f"the query does not see invocation {execution_id} yet, which the "
                    "ingress knows (partitions moving between nodes?)",
                    nodes=self._admin.nodes, waited=elapsed, execution_id=execution_id,
                )
            retries += 1
            logger.bind(execution_id=execution_id, attempt=retries).info(
                "no row yet for {} ({}); asking again", execution_id,
                "the ingress knows it" if confirmed else "Restate is failing over",
            )
            await asyncio.sleep(backoff.delay(retries))


#: how long after a node's last "not ready" answer a "not found" is asked again
_TROUBLE_SECONDS = 10.0


def _run_row(rows: Sequence[Row], execution_id: str) -> Row:
    """The row of a shim's `run` invocation; any other invocation (a catalog entry's `run`
    among them) is not an execution."""
    if (not rows or rows[0].get("target_handler_name") != RUN_HANDLER
            or rows[0].get("target_service_name") == CATALOG_ENTRY_SERVICE):
        raise ExecutionNotFoundError(execution_id)
    return rows[0]


def _prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with `prefix` (checked: no wildcards but
    `_`, which only widens the match; callers compare keys exactly)."""
    return sql_literal(prefix, _KEY_PREFIX)[:-1] + "%'"
