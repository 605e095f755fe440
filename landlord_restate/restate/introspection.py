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
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from attrs import frozen
from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.errors import (
    RestateConnectionError,
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
    CATALOG_RECORD,
    CATALOG_RECORD_SERVICE,
    CATALOG_SERVICE,
    CONTROL_SERVICE,
    ENVELOPE_STATE,
    OUTCOME_STATE,
    RUN_HANDLER,
)
from landlord_restate.workflow.errors import ExecutionNotFoundError, WorkflowError
from landlord_restate.workflow.types import ExecutionState

Row = dict[str, Any]

#: what Restate's query engine says of an id that has the shape but does not decode
_UNDECODABLE_ID = "non valid invocation id"
#: a journal read before the invocation row, or answered by a replica behind the row's,
#: can miss the newest entries: read again this often at most, after the first time
#: pausing _REREAD_PAUSE, doubled each time (about 0.15 s in all)
_JOURNAL_REREADS = 5
_REREAD_PAUSE = 0.01
#: one try, no retry: a question whose answer only makes reads faster
_ASK_ONCE = Backoff(window=0, min_retries=0, max_retries=0)

#: a query every partition must answer: the local stack's readiness probe
ALL_PARTITIONS_SQL = "SELECT count(*) AS n FROM sys_invocation"
_INVOCATION_COLUMNS = (
    "id, target_service_name, target_service_key, target_handler_name, status, created_at, "
    "running_at, completed_at, completion_result, completion_failure, retry_count, journal_size, "
    "last_failure, last_failure_related_command_name, last_failure_error_code, modified_at, "
    "trace_id, pinned_deployment_id"
)
#: what `sys_invocation_status` alone says of an invocation: all a finished one has (the
#: `sys_invocation` view adds the in-flight attempt's state, and costs twice the time)
_STATUS_COLUMNS = (
    "id, target_service_name, target_service_key, target_handler_name, status, created_at, "
    "running_at, completed_at, completion_result, completion_failure, journal_size, "
    "modified_at, trace_id, pinned_deployment_id"
)
_TARGET_COLUMNS = "target_service_name, target_service_key, target_handler_name, status"
_SUMMARY_COLUMNS = (
    "id, target_service_name, target_service_key, status, created_at, running_at, "
    "completed_at, completion_result, completion_failure"
)
#: the lite form of each entry, but in full those that carry values status reads: SetState
#: (what the shim wrote), Input (the envelope) and Output (a success's output)
_JOURNAL_COLUMNS = (
    "index, entry_type, name, appended_at, CASE WHEN entry_type IN "
    f"('{EntryType.SET_STATE}', '{EntryType.INPUT}', '{EntryType.OUTPUT}') "
    "THEN entry_json ELSE entry_lite_json END AS entry"
)


def _status_in(statuses: Iterable[InvocationStatus]) -> str:
    return "status IN (" + ", ".join(f"'{s}'" for s in sorted(statuses)) + ")"


#: the statuses of an invocation that runs (or waits, retries, is paused) between its
#: first attempt and its end
_RUNNING = frozenset(InvocationStatus) - NOT_STARTED - {InvocationStatus.COMPLETED}
#: each row's class, in SQL: its state, except that every failure is `failure` (failed,
#: stopped or timeout, told apart by the shim's recorded outcome, as status.map_state
#: does: how a run ends in Restate's words is the shim's choice, not a contract), and
#: `unknown` for a status this provider was not built for
_CLASS = (
    f"CASE WHEN status = '{InvocationStatus.COMPLETED}' AND "
    f"completion_result = '{CompletionResult.SUCCESS}' THEN 'succeeded' "
    f"WHEN status = '{InvocationStatus.COMPLETED}' AND "
    f"completion_result = '{CompletionResult.FAILURE}' THEN 'failure' "
    f"WHEN {_status_in(NOT_STARTED)} THEN 'pending' "
    f"WHEN {_status_in(_RUNNING)} THEN 'running' ELSE 'unknown' END"
)
_FAILURE = f"completion_result = '{CompletionResult.FAILURE}'"
#: the states whose filters read a status only the `sys_invocation` view reports
_LIVE_STATES = frozenset({ExecutionState.PENDING, ExecutionState.RUNNING})
#: the rows each state is among: exactly its rows, but for the three kinds of failure,
#: which are all the failures (the caller tells them apart by their outcomes)
_STATE_FILTERS = {
    ExecutionState.PENDING: _status_in(NOT_STARTED),
    ExecutionState.RUNNING: _status_in(_RUNNING),
    ExecutionState.SUCCEEDED: f"completion_result = '{CompletionResult.SUCCESS}'",
    ExecutionState.FAILED: _FAILURE,
    ExecutionState.STOPPED: _FAILURE,
    ExecutionState.TIMEOUT: _FAILURE,
}
#: the catalog's records are invocations of a service of their own, not executions; before
#: they were a Service's, they were `run`s of the Workflow `LandlordCatalogEntry`, which a
#: server upgraded in place still retains
_CATALOG_ENTRIES = frozenset({CATALOG_RECORD_SERVICE, "LandlordCatalogEntry"})
_NOT_AN_ENTRY = ("target_service_name NOT IN ("
                 + ", ".join(f"'{s}'" for s in sorted(_CATALOG_ENTRIES)) + ")")
_RUNS = f"target_handler_name = '{RUN_HANDLER}' AND {_NOT_AN_ENTRY}"
#: a LIKE prefix: a workflow key, or a workflow id and the separator
_KEY_PREFIX = re.compile(
    WORKFLOW_ID.pattern.removesuffix("$") + f"({re.escape(KEY_SEPARATOR)}"
    + EXECUTION_NAME.pattern.removeprefix("^").removesuffix("{1,128}$") + "*)?$"
)
#: a time as Restate's SQL writes it (milliseconds, UTC), the only form a time enters SQL in
SQL_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$")
#: a scope of the provider's scoped `LandlordControl` instances: `lt.` a tag's, `le.` an
#: execution's record, then 32 hex digits of a digest (Restate: [a-zA-Z0-9_.-], 36 at most)
SCOPE = re.compile(r"^l[te]\.[0-9a-f]{32}$")
#: the `LandlordControl` state keys of a tag's entry and of an execution's record
TAG_KEY, RECORD_KEY = "tag", "record"
#: a state key the provider names (never a caller's text)
_STATE_KEY = re.compile(r"^[a-z]{1,16}$")
#: ids, scopes or keys in one `IN (...)` list at most: every one names a partition key,
#: and Restate reads each of them
IN_CHUNK = 1000


def sql_literal(value: str, rule: re.Pattern[str]) -> str:
    """`value` as a SQL string literal, if it matches `rule` in full; else ValueError.

    Every value is checked where it enters the provider; this checks it again, so no
    unchecked text reaches SQL even by a path nobody foresaw.
    """
    if not isinstance(value, str) or not rule.fullmatch(value):
        raise ValueError(f"{value!r} may not enter SQL: it does not match {rule.pattern}")
    return "'" + value.replace("'", "''") + "'"


def sql_time(value: datetime, *, ceil: bool = False) -> str:
    """`value` (timezone-aware) as Restate's SQL writes times: UTC, whole milliseconds.

    Restate keeps times in milliseconds, so "at or after `value`" is "at or after the next
    whole millisecond" (`ceil`) and bounds are exact.
    """
    utc = value.astimezone(UTC)
    whole = utc.replace(microsecond=utc.microsecond // 1000 * 1000)
    if ceil and whole < utc:
        whole += timedelta(milliseconds=1)
    return (f"{whole.year:04d}-{whole.month:02d}-{whole.day:02d}T{whole.hour:02d}:"
            f"{whole.minute:02d}:{whole.second:02d}.{whole.microsecond // 1000:03d}Z")


@frozen(kw_only=True)
class RunFilter:
    """What a search asks of `sys_invocation`. Each value is checked by the room that made
    it and again where it enters SQL."""

    workflow_id: str | None = None
    #: the start of the execution name
    name_prefix: str | None = None
    #: None: every state
    states: frozenset[ExecutionState] | None = None
    #: start time (Restate's `created_at`) at or after `since`, before `until` (SQL times)
    since: str | None = None
    until: str | None = None


#: a keyset position: (created_at as an SQL time, invocation id) of the last row read
Cursor = tuple[str, str]


class Introspection:
    """Reads of Restate's `sys_invocation`, `sys_journal` and `state` tables."""

    def __init__(self, admin: AdminClient, ingress: IngressClient, backoff: Backoff) -> None:
        self._admin = admin
        self._ingress = ingress
        #: whether the server is one node (its point lookups may run at once), once known
        self._one_node: bool | None = None
        self._backoff = backoff

    async def invocation(self, execution_id: str) -> tuple[Row, list[Row]]:
        """The `run` invocation's row and its journal (and, for an invocation still in
        flight, the view's row, which adds its attempt's state).

        On one node the row and the journal are read at once (p50 2.5 ms against 4.1 ms
        in turn); on a cluster in turn: there two queries at once whose partition another
        node leads each waited ~40 ms inside restate-server (p50 47 ms against 7 ms).

        ExecutionNotFoundError unless the id names a shim's `run` invocation.
        """
        literal = sql_literal(execution_id, INVOCATION_ID)
        row_sql = f"SELECT {_STATUS_COLUMNS} FROM sys_invocation_status WHERE id = {literal}"  # noqa: S608
        journal: list[Row] | None = None
        if await self._single_node():
            rows, journal = await asyncio.gather(
                self._by_id(row_sql, execution_id), self._journal(literal, execution_id))
        else:
            rows = await self._by_id(row_sql, execution_id)
        invocation = _run_row(rows, execution_id)
        if invocation.get("status") != InvocationStatus.COMPLETED:
            # in flight: the view says how (running, backing off, paused, ...) and what the
            # last attempt's failure was; a finished invocation needs none of that
            invocation = _run_row(await self._by_id(
                f"SELECT {_INVOCATION_COLUMNS} FROM sys_invocation WHERE id = {literal}",  # noqa: S608
                execution_id,
            ), execution_id)
        if journal is None:
            journal = await self._journal(literal, execution_id)
        # a journal read before the row (at once), or answered by a replica behind the
        # row's, lacks the newest entries: read it again, at once, then after a pause
        # (10 ms, doubled) so a loaded cluster's replica can catch up
        for attempt in range(_JOURNAL_REREADS):
            if len(journal) >= int(invocation.get("journal_size") or 0):
                break
            if attempt:
                await asyncio.sleep(_REREAD_PAUSE * 2 ** (attempt - 1))
            journal = await self._journal(literal, execution_id)
        return invocation, journal

    @property
    def single_node(self) -> bool | None:
        """What the status reads learnt of the server: one node (True), a cluster or
        unknown to be one (False), not asked yet (None)."""
        return self._one_node

    async def _single_node(self) -> bool:
        """Whether the server is one node: one admin endpoint configured, and the server
        says its metadata lives on one node. Asked without retries (the read it serves
        retries on its own); no answer counts as a cluster and is asked again next time,
        an answer (also a refusal) is kept."""
        if self._one_node is None:
            if len(self._admin.nodes) > 1:
                self._one_node = False
            else:
                try:
                    members = await self._admin.metadata_members(backoff=_ASK_ONCE)
                except RestateConnectionError:
                    return False  # no answer: ask again next time
                except WorkflowError:
                    members = None  # an answer, refusing: a cluster, as far as we know
                self._one_node = members == 1
        return self._one_node

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
            where = (f"scope IS NULL AND service_name = {sql_literal(service, SERVICE_NAME)} "
                     f"AND service_key = {sql_literal(key, WORKFLOW_KEY)}")
        except ValueError:
            return []  # not a shim's key: it has no state of ours
        return await self._admin.query(
            f"SELECT key, value_utf8 FROM state WHERE {where}"  # noqa: S608
        )

    async def runs_page(
        self,
        where: RunFilter,
        *,
        after: Cursor | None,
        limit: int,
        ids: Sequence[str] | None = None,
    ) -> list[Row]:
        """`run` rows matching `where` (and among `ids`, at most IN_CHUNK of them), newest
        first by (created_at, id), strictly after the keyset position `after`.

        Exact for every state but the three kinds of failure (failed, stopped, timeout):
        for those, every failure is answered, and the caller tells them apart by their
        outcomes."""
        conditions = self._conditions(where, ids)
        if after is not None:
            at, last = sql_literal(after[0], SQL_TIME), sql_literal(after[1], INVOCATION_ID)
            conditions.append(f"(created_at < {at} OR (created_at = {at} AND id < {last}))")
        # `sys_invocation` is a view: the stored rows (`sys_invocation_status`) joined with
        # the live state of the invocations in flight, which alone tells running, ready and
        # backing-off apart. A search that asks for neither pending nor running reads the
        # stored rows (about half the time: no join), then the view's row of each run on
        # the page that has not completed
        view = where.states is not None and bool(where.states & _LIVE_STATES)
        table = "sys_invocation" if view else "sys_invocation_status"
        rows = await self._admin.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM {table} "  # noqa: S608
            f"WHERE {' AND '.join(conditions)} ORDER BY created_at DESC, id DESC "
            f"LIMIT {int(limit)}"
        )
        if table == "sys_invocation":
            return rows
        return await self._with_live_rows(rows)

    async def _with_live_rows(self, rows: list[Row]) -> list[Row]:
        """`rows` of `sys_invocation_status`, each one not completed replaced by its row of
        the `sys_invocation` view (its status as Restate reports it); one that is gone by
        then (purged) is left out."""
        live = [str(r.get("id")) for r in rows if r.get("status") != InvocationStatus.COMPLETED]
        if not live:
            return rows
        try:
            listed = ", ".join(sql_literal(i, INVOCATION_ID) for i in live)
        except ValueError as exc:  # the server's rows, not the caller's input
            raise self.protocol_error(UnexpectedRow("invocation ids", str(live))) from exc
        fresh = {str(r.get("id")): r for r in await self._admin.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM sys_invocation WHERE id IN ({listed}) "  # noqa: S608
            "ORDER BY id"
        )}
        return [fresh.get(i, r) for r in rows
                if (i := str(r.get("id"))) not in live or i in fresh]

    async def count_by_class(self, where: RunFilter) -> dict[str, int]:
        """How many `run` rows match `where`, by class (`_CLASS`), in one query."""
        # the ORDER BY also makes Restate answer in one batch: an answer of several chunks
        # waits ~40 ms on a kept-alive connection (delayed ACK) before its second chunk
        return await self._counted(
            f"SELECT {_CLASS} AS class, count(*) AS n FROM sys_invocation "  # noqa: S608
            f"WHERE {' AND '.join(self._conditions(where, None))} GROUP BY {_CLASS} "
            "ORDER BY class", "class")

    async def classes(self, where: RunFilter, ids: Sequence[str] | None = None,
                      *, failures_only: bool = False) -> list[Row]:
        """(id, class, status, completion_result, completion_failure, service and key) of
        every `run` row matching `where` (among `ids`, at most IN_CHUNK): what a count reads
        per row when it cannot group in SQL alone."""
        conditions = self._conditions(where, ids)
        if failures_only:
            conditions.append(_FAILURE)
        # completed rows need no live state: the stored rows alone, without the view's join
        table = "sys_invocation_status" if failures_only else "sys_invocation"
        return await self._admin.query(
            f"SELECT id, {_CLASS} AS class, status, completion_result, completion_failure, "  # noqa: S608
            f"target_service_name, target_service_key FROM {table} "
            f"WHERE {' AND '.join(conditions)} ORDER BY id"
        )

    def _conditions(self, where: RunFilter, ids: Sequence[str] | None) -> list[str]:
        conditions = [_RUNS]
        if ids is not None:
            conditions.append(f"id IN ({_in_list(ids, INVOCATION_ID, 'ids')})")
        if where.workflow_id is not None:
            key = where.workflow_id + KEY_SEPARATOR + (where.name_prefix or "")
            conditions.append(f"starts_with(target_service_key, {sql_literal(key, _KEY_PREFIX)})")
        elif where.name_prefix is not None:
            name = sql_literal(where.name_prefix, EXECUTION_NAME)
            conditions.append(
                f"starts_with(split_part(target_service_key, '{KEY_SEPARATOR}', 2), {name})"
            )
        if where.states is not None:
            conditions.append(
                "(" + " OR ".join(f"({_STATE_FILTERS[s]})" for s in sorted(where.states)) + ")"
            )
        if where.since is not None:
            conditions.append(f"created_at >= {sql_literal(where.since, SQL_TIME)}")
        if where.until is not None:
            conditions.append(f"created_at < {sql_literal(where.until, SQL_TIME)}")
        return conditions

    async def run_by_key(self, key: str) -> Row | None:
        """The newest `run` invocation of the workflow key `key`, or None: a read of the one
        partition the key lives in (an unscoped key names its partition)."""
        rows = await self._admin.query(
            "SELECT id, created_at FROM sys_invocation WHERE scope IS NULL AND "  # noqa: S608
            f"target_service_key = {sql_literal(key, WORKFLOW_KEY)} AND {_RUNS} "
            "ORDER BY created_at DESC LIMIT 1"
        )
        return rows[0] if rows else None

    async def scoped_values(
        self, scopes: Sequence[str], key: str
    ) -> list[Row]:
        """(scope, service_key, value_utf8) of `LandlordControl`'s instances in `scopes` (at
        most IN_CHUNK) that hold state `key`: each scope is read in its own partition."""
        listed = _in_list(scopes, SCOPE, "scopes")
        return await self._admin.query(
            f"SELECT scope, service_key, value_utf8 FROM state WHERE scope IN ({listed}) "  # noqa: S608
            f"AND service_name = '{CONTROL_SERVICE}' AND key = {sql_literal(key, _STATE_KEY)} "
            "ORDER BY scope, service_key"
        )

    async def scoped_instances(self, scopes: Sequence[str], object_key: str) -> list[Row]:
        """(scope, key, value_utf8) of `LandlordControl`'s instance `object_key` (an
        execution id) in each of `scopes` (at most IN_CHUNK), each read in its partition."""
        listed = _in_list(scopes, SCOPE, "scopes")
        return await self._admin.query(
            f"SELECT scope, key, value_utf8 FROM state WHERE scope IN ({listed}) "  # noqa: S608
            f"AND service_name = '{CONTROL_SERVICE}' "
            f"AND service_key = {sql_literal(object_key, INVOCATION_ID)} ORDER BY scope, key"
        )

    async def scope_sizes(self, scopes: Sequence[str], key: str) -> dict[str, int]:
        """How many instances of each of `scopes` hold state `key` (scopes with none are
        left out)."""
        listed = _in_list(scopes, SCOPE, "scopes")
        return await self._counted(
            f"SELECT scope, count(*) AS n FROM state WHERE scope IN ({listed}) "  # noqa: S608
            f"AND service_name = '{CONTROL_SERVICE}' AND key = {sql_literal(key, _STATE_KEY)} "
            "GROUP BY scope ORDER BY scope", "scope")

    async def _counted(self, sql: str, name: str) -> dict[str, int]:
        """A grouped count's answer, `name` -> `n`; the server's fault if it is not one."""
        try:
            return _counts(await self._admin.query(sql), name)
        except UnexpectedRow as exc:
            raise self.protocol_error(exc) from exc

    async def input_envelope(self, execution_id: str) -> Any:
        """The envelope a run was started with, as its journal's Input holds it (from the
        moment Restate accepted the start), or None."""
        literal = sql_literal(execution_id, INVOCATION_ID)
        rows = await self._admin.query(
            "SELECT index, entry_type, entry_json AS entry FROM sys_journal "  # noqa: S608
            f"WHERE id = {literal} AND entry_type = '{EntryType.INPUT}' ORDER BY index LIMIT 1"
        )
        try:
            return state_from_journal(rows).get(ENVELOPE_STATE)
        except UnexpectedRow as exc:
            raise self.protocol_error(exc, execution_id=execution_id) from exc

    async def runs_by_key_prefix(self, prefix: str) -> dict[str, Any]:
        """Status of every `run` whose workflow key starts with `prefix`, by key."""
        rows = await self._admin.query(
            "SELECT target_service_key, status FROM sys_invocation "  # noqa: S608
            f"WHERE {_RUNS} AND target_service_key LIKE {_prefix(prefix)} "
            # one batch: an answer in several chunks waits ~40 ms for the second (measured:
            # 48 ms without, 5 ms with, on a server holding 50 runs)
            "ORDER BY target_service_key"
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
            f"WHERE {_RUNS} AND status != '{InvocationStatus.COMPLETED}' "
            "AND pinned_deployment_id IS NOT NULL GROUP BY pinned_deployment_id "
            "ORDER BY deployment"  # one batch
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
        where = (f"scope IS NULL AND service_name = '{CATALOG_SERVICE}' "
                 f"AND key = '{CATALOG_RECORD}'")
        if workflow_id is not None:
            where += f" AND service_key = {sql_literal(workflow_id, WORKFLOW_ID)}"
        return await self._admin.query(
            f"SELECT service_key, value_utf8 FROM state WHERE {where} "  # noqa: S608
            "ORDER BY service_key"  # one batch
        )

    async def control_state(self, execution_id: str) -> dict[str, Any]:
        """What the provider recorded of an execution (its stop), by key."""
        return state_from_rows(await self.control_rows(execution_id))

    async def control_rows(self, execution_id: str) -> list[Row]:
        """The rows (key, value_utf8) of what the provider recorded of an execution."""
        return await self._admin.query(
            "SELECT key, value_utf8 FROM state WHERE scope IS NULL AND "  # noqa: S608
            f"service_name = '{CONTROL_SERVICE}' AND "
            f"service_key = {sql_literal(execution_id, INVOCATION_ID)}"
        )

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

    async def outcomes(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """What the shim recorded as the outcome of each run in `rows` (Restate's rows:
        `id`, `target_service_name`, `target_service_key`), by id; runs without one are
        left out. Read from the runs' workflow state (the journal holds the same value as
        SetState; the state is a third of the bytes to read), IN_CHUNK keys per query,
        each key naming its partition."""
        wanted: dict[tuple[str, str], str] = {}
        for row in rows:
            key = str(row.get("target_service_key"))
            if WORKFLOW_KEY.fullmatch(key):  # else: not a shim's run, nothing recorded
                wanted[(str(row.get("target_service_name")), key)] = str(row.get("id"))
        keys = sorted({key for _, key in wanted})
        chunks = [keys[i:i + IN_CHUNK] for i in range(0, len(keys), IN_CHUNK)]
        answers = await asyncio.gather(*(self._admin.query(
            "SELECT service_name, service_key, value_utf8 FROM state WHERE scope IS NULL "  # noqa: S608
            "AND service_key IN (" + ", ".join(sql_literal(k, WORKFLOW_KEY) for k in chunk)
            + f") AND key = '{OUTCOME_STATE}' ORDER BY service_key"
        ) for chunk in chunks))
        outcomes = {}
        for found in answers:
            for row in found:
                execution_id = wanted.get((str(row.get("service_name")),
                                           str(row.get("service_key"))))
                if execution_id is None:
                    continue  # another service's key of the same name
                recorded = state_from_rows([{"key": OUTCOME_STATE,
                                             "value_utf8": row.get("value_utf8")}])
                if OUTCOME_STATE not in recorded:
                    raise self.protocol_error(UnexpectedRow(
                        "the shim's JSON outcome", str(row.get("value_utf8"))))
                outcomes[execution_id] = recorded[OUTCOME_STATE]
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


def _in_list(values: Sequence[str], pattern: re.Pattern[str], what: str) -> str:
    """`values` (1 to IN_CHUNK of them, each checked by `pattern`) quoted for `IN (...)`."""
    if not 0 < len(values) <= IN_CHUNK:
        raise ValueError(f"between 1 and {IN_CHUNK} {what}, not {len(values)}")
    return ", ".join(sql_literal(value, pattern) for value in values)


def _counts(rows: Sequence[Mapping[str, Any]], name: str) -> dict[str, int]:
    """`name` -> `n` of count rows; UnexpectedRow for a count that is not one."""
    counts = {}
    for row in rows:
        value = row.get("n")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UnexpectedRow("a count n", str(dict(row)))
        counts[str(row.get(name))] = value
    return counts


def _run_row(rows: Sequence[Row], execution_id: str) -> Row:
    """The row of a shim's `run` invocation; any other invocation (a catalog entry's `run`
    among them) is not an execution."""
    if (not rows or rows[0].get("target_handler_name") != RUN_HANDLER
            or rows[0].get("target_service_name") in _CATALOG_ENTRIES):
        raise ExecutionNotFoundError(execution_id)
    return rows[0]


def _prefix(prefix: str) -> str:
    """A LIKE pattern matching keys that start with `prefix` (checked: no wildcards but
    `_`, which only widens the match; callers compare keys exactly)."""
    return sql_literal(prefix, _KEY_PREFIX)[:-1] + "%'"
