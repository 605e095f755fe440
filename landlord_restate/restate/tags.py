"""Where a start's tags live, so that a search by tag is a bounded query.

Restate has no tag column, and a start's tags are in its journal only
(the envelope), which no bounded query can search. So a start that carries tags (or a
trigger source) also writes, with the admin state API and before it returns:

- per tag, an instance of `LandlordControl` keyed by the execution id in the *scope* of
  that tag (`lt.` and a digest of the key and value). Restate 1.7 keeps a scope's state in
  the one partition the scope names, and a query on `scope = ...` reads only that one:
  "this tenant's executions" is one read of one partition, as large as that tenant's
  history, never a scan of every journal or of every execution;
- the execution's record (its tags and trigger source) in a scope of its own (`le.` and a
  digest of its id), read by id for every listed execution and checked against the
  search: the record is the truth, the tag entries only find candidates.

Each is an instance of its own, so no write ever replaces the stop reasons the provider
keeps in the unscoped instance. A start that Restate answers `PreviouslyAccepted` writes
nothing when the record and its entries are there: the first start's tags stay. What is
missing (the first start ended, or a write failed, between its send and its writes) is
written again from the first start's envelope in the journal, never from the repeat's.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from attrs import frozen

from landlord_restate.restate.introspection import IN_CHUNK, RECORD_KEY, TAG_KEY
from landlord_restate.restate.naming import INVOCATION_ID
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.records import UnexpectedRow
from landlord_restate.restate.wire import CONTROL_SERVICE, ExecutionEnvelope

T = TypeVar("T")

#: SQL reads in flight at once for one search (each names up to IN_CHUNK partitions)
_READS_AT_ONCE = 4


def short_digest(text: str, length: int = 32) -> str:
    """The first `length` hex digits of the SHA-256 of `text`."""
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def tag_scope(key: str, value: str) -> str:
    """The scope of one tag's entries: `lt.` and 128 bits of a digest of (key, value)."""
    return "lt." + short_digest(json.dumps([key, value], separators=(",", ":")))


def record_scope(execution_id: str) -> str:
    """The scope of one execution's record: `le.` and 128 bits of a digest of its id."""
    return "le." + short_digest(execution_id)


@frozen(kw_only=True)
class TagRecord:
    """What the provider keeps of a start for searches: its tags and trigger source."""

    tags: dict[str, str]
    trigger_source: str = ""

    def to_json(self) -> dict[str, Any]:
        """The record's JSON, as it is stored."""
        return {"tags": self.tags, "trigger_source": self.trigger_source}

    @classmethod
    def from_json(cls, data: Any) -> TagRecord:
        """A stored record; UnexpectedRow for anything the provider would not have written."""
        tags = data.get("tags") if isinstance(data, dict) else None
        source = data.get("trigger_source", "") if isinstance(data, dict) else None
        if (not isinstance(tags, dict) or not isinstance(source, str)
                or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items())):
            raise UnexpectedRow("a tag record {tags, trigger_source}", json.dumps(data))
        return cls(tags=dict(tags), trigger_source=source)

    def has(self, tags: Iterable[tuple[str, str]]) -> bool:
        """Whether every (key, value) is one of this record's tags, exactly."""
        return all(self.tags.get(key) == value for key, value in tags)


class TagIndex:
    """Writes a start's tags where searches find them, and reads them back (see the
    module's docstring for where they live and why)."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    async def record(
        self, execution_id: str, tags: Mapping[str, str], trigger_source: str, *,
        accepted: bool,
    ) -> None:
        """Keep the tags and trigger source of the start of `execution_id`, before the start
        returns. `accepted`: Restate took this start as the first. A repeat finds the first
        start's record and entries in one read and writes nothing; what it finds missing
        (the first start's process died, or a write failed, between its send and its
        writes) is written again from the first start's envelope, never from the repeat."""
        if not tags and not trigger_source:
            return  # nothing to find it by: a start without them writes nothing
        record = TagRecord(tags=dict(tags), trigger_source=trigger_source)
        if not accepted:
            if await self._kept(execution_id, record):
                return
            first = await self._first_start(execution_id)
            if first is None or (not first.tags and not first.trigger_source):
                return
            record = first
        admin = self._parts.admin
        # the entries and the record at once: one round trip (a start that fails half way
        # raises, and its repeat finds what is missing)
        await asyncio.gather(
            *(admin.set_state(CONTROL_SERVICE, execution_id, {TAG_KEY: [key, value]},
                              scope=tag_scope(key, value))
              for key, value in record.tags.items()),
            admin.set_state(CONTROL_SERVICE, execution_id, {RECORD_KEY: record.to_json()},
                            scope=record_scope(execution_id)),
        )

    async def forget(self, execution_id: str) -> None:
        """Clear the record and the tag entries of `execution_id` (a purge): a search
        never reads them again."""
        record = (await self.read([execution_id])).get(execution_id)
        scopes = [record_scope(execution_id)]
        if record is not None:
            scopes += [tag_scope(key, value) for key, value in record.tags.items()]
        admin = self._parts.admin
        await asyncio.gather(*(admin.set_state(CONTROL_SERVICE, execution_id, {}, scope=scope)
                               for scope in scopes))

    async def _kept(self, execution_id: str, record: TagRecord) -> bool:
        """Whether `record` is kept for `execution_id` with an entry for each of its tags."""
        own = record_scope(execution_id)
        wanted = {own} | {tag_scope(key, value) for key, value in record.tags.items()}
        rows = await self._parts.sql.scoped_instances(sorted(wanted), execution_id)
        kept = None
        for row in rows:
            if row.get("scope") == own and row.get("key") == RECORD_KEY:
                try:
                    kept = TagRecord.from_json(json.loads(str(row.get("value_utf8"))))
                except (ValueError, UnexpectedRow):
                    return False  # written again, from the envelope
        return kept == record and {str(row.get("scope")) for row in rows} >= wanted

    async def _first_start(self, execution_id: str) -> TagRecord | None:
        """The tags of the start Restate accepted, from the envelope in the run's journal."""
        recorded = await self._parts.sql.input_envelope(execution_id)
        if recorded is None:
            self._parts.bind(execution_id=execution_id).warning(
                "tags: the first start's envelope is not in the journal; nothing recorded")
            return None
        try:
            envelope = ExecutionEnvelope.from_json(recorded)
        except Exception as exc:
            raise self._parts.sql.protocol_error(
                UnexpectedRow("an execution envelope", json.dumps(recorded, default=str)),
                execution_id=execution_id,
            ) from exc
        return TagRecord(tags=dict(envelope.tags), trigger_source=envelope.trigger_source)

    async def read(self, execution_ids: Sequence[str]) -> dict[str, TagRecord]:
        """The records of `execution_ids` that have one, by id: one read per IN_CHUNK ids,
        each of the scopes it names read in its own partition."""
        by_scope = {record_scope(i): i for i in execution_ids}
        sql = self._parts.sql
        answers = await in_chunks(
            list(by_scope), lambda chunk: sql.scoped_values(chunk, RECORD_KEY))
        found = {}
        for row in (row for rows in answers for row in rows):
            execution_id = by_scope.get(str(row.get("scope")))
            if execution_id is None or row.get("service_key") != execution_id:
                continue  # another scope's, or a digest collision: not this execution's
            try:
                found[execution_id] = TagRecord.from_json(json.loads(str(row.get("value_utf8"))))
            except (ValueError, UnexpectedRow) as exc:
                unexpected = exc if isinstance(exc, UnexpectedRow) else UnexpectedRow(
                    "a JSON tag record", str(row.get("value_utf8")))
                raise sql.protocol_error(unexpected, execution_id=execution_id) from exc
        return found

    async def candidates(self, tags: Sequence[tuple[str, str]]) -> set[str]:
        """The executions whose tag entries name every one of `tags` (one partition read
        for the least common of them; the caller checks each against its record)."""
        sql = self._parts.sql
        scopes = {tag_scope(key, value): (key, value) for key, value in tags}
        scope = next(iter(scopes))
        if len(scopes) > 1:
            sizes = await sql.scope_sizes(list(scopes), TAG_KEY)
            if len(sizes) < len(scopes):
                return set()  # a tag nothing carries
            scope = min(sizes, key=lambda s: (sizes[s], s))
        wanted = list(scopes[scope])
        found = set()
        for row in await sql.scoped_values([scope], TAG_KEY):
            try:
                entry = json.loads(str(row.get("value_utf8")))
            except ValueError:
                continue
            if entry == wanted and INVOCATION_ID.fullmatch(str(row.get("service_key"))):
                found.add(str(row["service_key"]))
        return found


async def in_chunks(
    items: Sequence[str], read: Callable[[Sequence[str]], Awaitable[T]]
) -> list[T]:
    """`read` of each IN_CHUNK of `items`, _READS_AT_ONCE at a time, in order."""
    gate = asyncio.Semaphore(_READS_AT_ONCE)

    async def one(chunk: Sequence[str]) -> T:
        async with gate:
            return await read(chunk)

    return list(await asyncio.gather(*(
        one(items[i:i + IN_CHUNK]) for i in range(0, len(items), IN_CHUNK)
    )))
