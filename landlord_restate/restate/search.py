"""Finding executions: pages, counts, a run by its name, and the tags that find them.

Answered by restate-server alone (SQL introspection, the admin API's state writes, the
ingress's lookup), also while the handler deployment is down.

Where a start's tags live, and why: `tags`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import attrs
from attrs import frozen

from landlord_restate.restate.introspection import (
    IN_CHUNK,
    SQL_TIME,
    Cursor,
    Row,
    RunFilter,
    sql_time,
)
from landlord_restate.restate.limits import check_string_map
from landlord_restate.restate.naming import (
    EXECUTION_NAME,
    INVOCATION_ID,
    check_execution_name,
    check_workflow_id,
    workflow_key,
)
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.records import UnexpectedRow, read_outcome, row_time
from landlord_restate.restate.status import build_summary, map_state
from landlord_restate.restate.tags import TagIndex, TagRecord, in_chunks, short_digest
from landlord_restate.restate.vocabulary import CompletionResult
from landlord_restate.workflow.errors import (
    ExecutionNotFoundError,
    InvalidInputError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.types import (
    ExecutionCount,
    ExecutionPage,
    ExecutionState,
    ExecutionSummary,
)

T = TypeVar("T")

#: page sizes `list_executions_page` takes; `list_executions` reads up to MAX_LIMIT at once
MAX_PAGE_SIZE = 1000
MAX_LIMIT = 10_000
#: rows read per round at most while filling a page (rounds double up to this)
_MAX_BATCH = MAX_LIMIT + 1
#: a page token's form, version and length: urlsafe base64 of a small JSON object
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,512}$")
_TOKEN_VERSION = 1
_DIGEST = re.compile(r"^[0-9a-f]{24}$")
_STATES = frozenset(ExecutionState)
#: the states a failure may be (the shim's recorded outcome says which)
_DECIDED_BY_OUTCOME = frozenset({ExecutionState.FAILED, ExecutionState.STOPPED,
                                 ExecutionState.TIMEOUT})
#: the times Restate's SQL can compare (nanoseconds since 1970 in 64 bits), whole days in
_EARLIEST = datetime(1677, 9, 22, tzinfo=UTC)
_LATEST = datetime(2262, 4, 11, tzinfo=UTC)


def _once(state: Any) -> Any:
    """Several states as a tuple, read once; anything else as given (checked later)."""
    if isinstance(state, Iterable) and not isinstance(state, str | bytes | Mapping):
        return tuple(state)
    return state


@frozen(kw_only=True)
class SearchFilters:
    """What a search is asked, as the caller gave it: the filters every search takes
    (`RestateProvider.list_executions_page` says what each means). Checked when read."""

    workflow_id: str | None = None
    #: one state, or several (read once here: an iterator serves every page)
    state: Any = attrs.field(default=None, converter=_once)
    tags: Mapping[str, str] | None = None
    name_prefix: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@frozen(kw_only=True)
class _Query:
    """A search, checked: what is asked of the rows, and the tags every match carries."""

    where: RunFilter
    tags: tuple[tuple[str, str], ...] = ()

    @property
    def digest(self) -> str:
        """What a page token is bound to: these filters (the time window travels in the
        token itself, see `_read_token`)."""
        where = self.where
        return short_digest(json.dumps({
            "workflow_id": where.workflow_id, "name_prefix": where.name_prefix,
            "states": sorted(where.states) if where.states is not None else None,
            "tags": self.tags,
        }, sort_keys=True, separators=(",", ":")), 24)


class Search:
    """Pages, counts and lookups of executions, by workflow, state, tags, name and time."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._tags = TagIndex(parts)

    # -- pages ----------------------------------------------------------------------------

    async def page(
        self, filters: SearchFilters, *, page_size: int, page_token: str | None
    ) -> ExecutionPage:
        """One page, newest first (see `RestateProvider.list_executions_page`)."""
        query = _query(filters)
        size = _bounded(page_size, "page_size", MAX_PAGE_SIZE)
        after = None
        if page_token:
            after, query = _read_token(page_token, query)
        found, more = await self._collect(query, after, size)
        return ExecutionPage(
            executions=[summary for summary, _ in found],
            next_page_token=_token(query, found[-1][1]) if more else None,
        )

    async def newest(self, filters: SearchFilters, *, limit: int) -> list[ExecutionSummary]:
        """The newest `limit` matches (see `RestateProvider.list_executions`)."""
        query = _query(filters)
        found, _ = await self._collect(query, None, _bounded(limit, "limit", MAX_LIMIT))
        return [summary for summary, _ in found]

    async def iterate(
        self, filters: SearchFilters, *, page_size: int
    ) -> AsyncIterator[ExecutionSummary]:
        """Every match, newest first, a page at a time (see `iter_executions`)."""
        token: str | None = None
        while True:
            page = await self.page(filters, page_size=page_size, page_token=token)
            for summary in page.executions:
                yield summary
            if page.next_page_token is None:
                return
            token = page.next_page_token

    async def _collect(
        self, query: _Query, after: Cursor | None, want: int
    ) -> tuple[list[tuple[ExecutionSummary, Cursor]], bool]:
        """Up to `want` matches after `after`, each with its keyset position, and whether
        more exist. Rows are read newest first in rounds until `want` matched or none are
        left: a round's rows that the query cannot tell apart exactly (a failure of another
        kind than the one asked for, a tag candidate whose record says otherwise) are
        dropped and the next round goes on after them, so a page is never short while more
        matches exist, and never repeats or skips one."""
        members = await self._tags.candidates(query.tags) if query.tags else None
        if members is not None and not members:
            return [], False
        ids = sorted(members) if members is not None and len(members) <= IN_CHUNK else None
        batch = min(want + 1, _MAX_BATCH)
        # a tag's candidates few enough (at most two rounds' rows): their records are read
        # beside the first rows (one round trip less), else each round reads its own rows'
        # records
        records: asyncio.Task[dict[str, TagRecord]] | None = None
        if ids is not None and len(ids) <= 2 * batch:
            records = asyncio.ensure_future(self._tags.read(ids))
        found: list[tuple[ExecutionSummary, Cursor]] = []
        try:
            while True:
                rows = await self._parts.sql.runs_page(query.where, after=after, limit=batch,
                                                       ids=ids)
                kept = rows if members is None else [r for r in rows if r.get("id") in members]
                prefetched = await records if records is not None else None
                for match in await self._matches(kept, query, prefetched):
                    found.append(match)
                    if len(found) > want:
                        return found[:want], True
                if len(rows) < batch:
                    return found, False
                after = self._cursor(rows[-1])
                batch = min(batch * 2, _MAX_BATCH)
        finally:
            if records is not None and not records.done():
                records.cancel()

    async def _matches(
        self, rows: Sequence[Row], query: _Query,
        prefetched: Mapping[str, TagRecord] | None = None,
    ) -> list[tuple[ExecutionSummary, Cursor]]:
        """The rows that match, as summaries, in order: a failure's state is read from its
        outcome, each row's tags from its record (in parallel)."""
        if not rows:
            return []
        sql = self._parts.sql
        ids = [str(row.get("id")) for row in rows]
        failures = [row for row in rows if _needs_outcome(row)]
        outcomes, records = await asyncio.gather(
            sql.outcomes(failures) if failures else _nothing(),
            _given(prefetched) if prefetched is not None else self._tags.read(ids),
        )
        states = query.where.states
        matches = []
        try:
            for execution_id, row in zip(ids, rows, strict=True):
                record = records.get(execution_id)
                if query.tags and (record is None or not record.has(query.tags)):
                    continue  # a candidate whose record says otherwise (see TagIndex)
                summary = build_summary(
                    row, outcomes.get(execution_id),
                    record.tags if record else None, record.trigger_source if record else "",
                )
                if states is None or summary.state in states:
                    matches.append((summary, self._cursor(row)))
        except UnexpectedRow as exc:
            raise sql.protocol_error(exc) from exc
        return matches

    def _cursor(self, row: Row) -> Cursor:
        created = row_time(row.get("created_at"))
        execution_id = str(row.get("id"))
        if created is None or not INVOCATION_ID.fullmatch(execution_id):
            raise self._parts.sql.protocol_error(UnexpectedRow(
                "a run row with id and created_at", json.dumps(row, default=str)))
        return sql_time(created), execution_id

    # -- counts ---------------------------------------------------------------------------

    async def count(self, filters: SearchFilters) -> ExecutionCount:
        """How many match, by state (see `RestateProvider.count_executions`)."""
        query = _query(filters)
        wanted = query.where.states or _STATES
        everything = RunFilter(
            workflow_id=query.where.workflow_id, name_prefix=query.where.name_prefix,
            since=query.where.since, until=query.where.until,
        )
        if query.tags:
            counted = await self._count_tagged(everything, query.tags)
        else:
            counted = await self._count_all(everything, wanted)
        by_state = {s: counted.get(s, 0) if s in wanted else 0 for s in ExecutionState}
        return ExecutionCount(total=sum(by_state.values()), by_state=by_state)

    async def _count_all(
        self, where: RunFilter, wanted: frozenset[ExecutionState]
    ) -> dict[ExecutionState, int]:
        """One grouped query; then, only when a failure counts toward a state asked for
        (failed, stopped or timeout), the failures' outcomes."""
        sql = self._parts.sql
        decide = bool(wanted & _DECIDED_BY_OUTCOME)
        classes, failures = await asyncio.gather(
            sql.count_by_class(where),
            sql.classes(where, failures_only=True) if decide else _nothing_listed(),
        )
        if classes.get("unknown"):
            raise sql.protocol_error(UnexpectedRow(
                "known invocation statuses", f"{classes['unknown']} rows of another status"))
        counted = {s: classes.get(s.value, 0) for s in ExecutionState}
        for s in await self._states(failures):
            counted[s] += 1
        return counted

    async def _count_tagged(
        self, where: RunFilter, tags: Sequence[tuple[str, str]]
    ) -> dict[ExecutionState, int]:
        """The tag's candidates' rows and records, each checked: as many reads as the least
        common tag has IN_CHUNK candidates."""
        counted = dict.fromkeys(ExecutionState, 0)
        members = sorted(await self._tags.candidates(tags))
        if not members:
            return counted
        sql = self._parts.sql
        chunks, records = await asyncio.gather(
            in_chunks(members, lambda chunk: sql.classes(where, chunk)),
            self._tags.read(members),
        )
        rows = [row for chunk in chunks for row in chunk
                if (record := records.get(str(row.get("id")))) is not None and record.has(tags)]
        for s in await self._states(rows):
            counted[s] += 1
        return counted

    async def _states(self, rows: Sequence[Row]) -> list[ExecutionState]:
        """The state of each row (a failure's from its outcome)."""
        sql = self._parts.sql
        failures = [row for row in rows if _needs_outcome(row)]
        outcomes = await sql.outcomes(failures) if failures else {}
        try:
            return [map_state(row, read_outcome(outcomes.get(str(row.get("id")))))[0]
                    for row in rows]
        except UnexpectedRow as exc:
            raise sql.protocol_error(exc) from exc

    # -- a run by its name ----------------------------------------------------------------

    async def lookup(self, workflow_id: str, execution_name: str) -> str:
        """The execution id of `workflow_id`'s run named `execution_name` (see
        `RestateProvider.lookup_execution`)."""
        check_workflow_id(workflow_id)
        check_execution_name(execution_name)
        key = workflow_key(workflow_id, execution_name)
        row = await self._parts.sql.run_by_key(key)
        if row is not None and INVOCATION_ID.fullmatch(str(row.get("id"))):
            return str(row["id"])
        # no row: a query can miss a partition that is moving between nodes, so ask the
        # partition that owns the key, through the ingress (answered without the deployment)
        try:
            stored = await self._parts.specs.route(workflow_id)
        except WorkflowNotFoundError:
            raise ExecutionNotFoundError(execution_name) from None
        ingress = self._parts.ingress
        execution_id = await ingress.lookup_workflow(stored.resolved.service, key)
        if INVOCATION_ID.fullmatch(execution_id) and await ingress.invocation_exists(
            execution_id
        ):
            return execution_id
        raise ExecutionNotFoundError(execution_name)


# -- checking what a search asks --------------------------------------------------------


def _query(filters: SearchFilters) -> _Query:
    workflow_id, name_prefix, tags = filters.workflow_id, filters.name_prefix, filters.tags
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
    pairs: tuple[tuple[str, str], ...] = ()
    if tags is not None:
        pairs = tuple(sorted(check_string_map(tags, "tags").items()))
    return _Query(
        where=RunFilter(
            workflow_id=workflow_id, name_prefix=name_prefix, states=_wanted_states(filters.state),
            since=_bound(filters.since, "since", ceil=False),
            until=_bound(filters.until, "until", ceil=True),
        ),
        tags=pairs,
    )


def _wanted_states(state: Any) -> frozenset[ExecutionState] | None:
    """None (every state), or the states asked for: one, or several."""
    if state is None:
        return None
    if isinstance(state, Mapping | bytes):  # iterable, but not a list of states
        raise InvalidInputError(
            f"state must be a state or a list of states, not {type(state).__name__}",
            field="state")
    given = [state] if isinstance(state, str) else state
    try:
        wanted = frozenset(ExecutionState.parse(str(s)) for s in given)
    except (ValueError, TypeError):
        valid = ", ".join(s.value for s in ExecutionState)
        raise InvalidInputError(f"state {state!r} is not one of: {valid} (or several of them)",
                                field="state") from None
    if not wanted:
        raise InvalidInputError("state: name at least one state, or None for all",
                                field="state")
    return wanted


def _bound(value: datetime | None, field: str, *, ceil: bool) -> str | None:
    """A time bound as it enters SQL. Restate keeps start times in whole milliseconds
    (cut, not rounded): a start in the millisecond of `since` or of `until` is inside.

    Restate's SQL holds times as nanoseconds since 1970 (1677 to 2262): a bound beyond
    is taken at that edge, which selects the same executions (none started outside it),
    so `until=datetime.max.replace(tzinfo=UTC)` means "no upper bound"."""
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise InvalidInputError(f"{field} must be a timezone-aware datetime, got {value!r}",
                                field=field)
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # within a day of datetime.min or max, in another zone
        utc = _EARLIEST if value.year < 5000 else _LATEST
    return sql_time(min(max(utc, _EARLIEST), _LATEST), ceil=ceil)


def _token_time(value: Any) -> bool:
    """Whether a token's time is one `_bound` could have written: a real date, in range."""
    if not isinstance(value, str) or not SQL_TIME.fullmatch(value):
        return False
    try:
        at = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return _EARLIEST <= at <= _LATEST


def _bounded(value: Any, field: str, most: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= most:
        raise InvalidInputError(f"{field} must be between 1 and {most}, got {value!r}",
                                field=field)
    return value


def _needs_outcome(row: Row) -> bool:
    """A failure: failed, stopped or timeout by the shim's recorded outcome."""
    return row.get("completion_result") == CompletionResult.FAILURE


async def _nothing() -> dict[str, Any]:
    return {}


async def _nothing_listed() -> list[Row]:
    return []


async def _given(records: Mapping[str, TagRecord]) -> Mapping[str, TagRecord]:
    return records


# -- page tokens --------------------------------------------------------------------------
#
# A token is the keyset position after a page (Restate's created_at and the invocation id
# of its last execution), the digest of the filters it was made for, the search's time
# window, and a check over all of them: urlsafe base64 of a small JSON object. Nothing
# secret, so any provider (another process, after a restart) reads any other's tokens;
# every field is checked against its rule before it reaches SQL, and a token that was
# edited, or made for other filters, is an InvalidInputError, never a query.
#
# The window travels in the token because a window is often relative ("the last day"):
# asked again a minute later it is another window, and the pages would no longer join up.
# So the next pages keep the first page's window; a caller may leave `since` and `until`
# out, or give the same ones (other ones make the token foreign).

_TOKEN_FIELDS = frozenset({"v", "f", "t", "i", "a", "b", "c"})


def _token(query: _Query, cursor: Cursor) -> str:
    body: dict[str, Any] = {"v": _TOKEN_VERSION, "f": query.digest, "t": cursor[0],
                            "i": cursor[1], "a": query.where.since, "b": query.where.until}
    body["c"] = _token_check(body)
    encoded = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode())
    return encoded.decode().rstrip("=")


def _token_check(body: Mapping[str, Any]) -> str:
    fields = {k: body[k] for k in sorted(_TOKEN_FIELDS - {"c"})}
    return short_digest("landlord-restate page token " + json.dumps(fields, sort_keys=True), 16)


def _read_token(token: Any, query: _Query) -> tuple[Cursor, _Query]:
    """The keyset position in `token`, and `query` with the token's time window; else
    InvalidInputError (malformed, edited, or made for another search)."""
    bad = InvalidInputError(
        "page_token is not a token this provider made (pass the next_page_token of the "
        "previous page unchanged)", field="page_token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise bad
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise bad from None
    if (not isinstance(body, dict) or set(body) != _TOKEN_FIELDS
            or body["v"] != _TOKEN_VERSION
            or not all(isinstance(body[k], str) for k in ("f", "t", "i", "c"))
            or not all(body[k] is None or isinstance(body[k], str) for k in ("a", "b"))
            or body["c"] != _token_check(body)
            or not _DIGEST.fullmatch(body["f"]) or not _token_time(body["t"])
            or not INVOCATION_ID.fullmatch(body["i"])
            or not all(body[k] is None or _token_time(body[k]) for k in ("a", "b"))):
        raise bad
    where = query.where
    if body["f"] != query.digest or any(
        given is not None and given != carried
        for given, carried in ((where.since, body["a"]), (where.until, body["b"]))
    ):
        raise InvalidInputError(
            "page_token belongs to a search with other filters: page with the filters it "
            "was made for, or start again without a token", field="page_token")
    windowed = attrs.evolve(query, where=attrs.evolve(where, since=body["a"], until=body["b"]))
    return (body["t"], body["i"]), windowed
