"""Finding executions against the real server (issue 28): keyset pages that never repeat
or skip, filters by state, tag, name and time, counts by state, a run found by its name,
tokens that are checked before anything reaches SQL, and all of it while the deployment is
killed. The findings of issue 26 (items 6 and 12) are tests in the style of test_hostile:
each failed before its fix."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from landlord_restate import (
    ExecutionCount,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    InvalidInputError,
    InvalidSpecError,
    ProvisionRequest,
    RestateConfig,
    RestateConnectionError,
    RestateProvider,
    RestateUnavailableError,
)
from landlord_restate.restate.introspection import RECORD_KEY
from landlord_restate.restate.tags import record_scope, tag_scope
from landlord_restate.restate.wire import CONTROL_SERVICE
from landlord_restate.testing import LocalRestate
from tests.conftest import (
    ROOT,
    TEST_HANDLERS,
    cli,
    dead_endpoint,
    deployment_env,
    spec_for,
    unique_id,
)
from tests.waiting import wait_terminal

pytestmark = pytest.mark.timeout(180)

#: a tag value with everything SQL, LIKE, JSON and base64 could trip on
HOSTILE = "ac'me \"%_ \\\\x\\' 東京 ü 😀 --; DROP"
#: what "at once" means for an answer restate-server alone gives (this machine is shared)
AT_ONCE = 2.0


async def created(provider: RestateProvider, handler: str = "Noop", **fields: object) -> str:
    """A fresh workflow running `handler`; answers its id."""
    spec = spec_for(handler, unique_id("search"), **fields)
    await provider.create_workflow(spec)
    return spec.workflow_id


async def start(provider: RestateProvider, workflow_id: str, name: str,
                input_: object = None, **tags: str) -> str:
    """Start `name` with `tags`; answers its execution id."""
    started = await provider.start_execution(workflow_id, ExecutionInput(
        execution_name=name, input=input_ if input_ is not None else {}, tags=tags,
        trigger_source="test"))
    return started.execution_id


async def newest_first(provider: RestateProvider, ids: list[str]) -> list[str]:
    """`ids` in the order searches answer: Restate's start time (`created_at`), newest
    first, then id. Restate stamps it from a clock of its own, a few milliseconds off the
    order the starts were sent in (seen: up to ~10 ms), so tests compare with this."""
    rows = await provider.admin.query(
        "SELECT id FROM sys_invocation WHERE id IN ("
        + ", ".join(f"'{i}'" for i in ids) + ") ORDER BY created_at DESC, id DESC")
    return [str(r["id"]) for r in rows]


#: what keeps a time bound clear of Restate's stamps (see `newest_first`)
MARGIN = 0.1


async def all_pages(provider: RestateProvider, page_size: int, **filters: object) -> list[str]:
    """Every execution id the pages of a search hold, in the order they came."""
    seen: list[str] = []
    token = None
    while True:
        page = await provider.list_executions_page(
            page_size=page_size, page_token=token, **filters)  # type: ignore[arg-type]
        assert len(page.executions) <= page_size
        seen += [s.execution_id for s in page.executions]
        if page.next_page_token is None:
            return seen
        token = page.next_page_token


# -- pages --------------------------------------------------------------------------------


async def test_three_tenants_page_without_repeat_or_skip(
    shared_provider: RestateProvider,
) -> None:
    """Three tenants' runs (one tenant id full of quotes, %, _, backslashes and non-ASCII),
    paged two at a time by tag: each tenant's runs exactly once, newest first, also while
    runs of that tenant start between two pages (they are newer: the next full search)."""
    workflow_id = await created(shared_provider)
    tenants = [unique_id("acme"), unique_id("globex"), HOSTILE + unique_id("")]
    runs: dict[str, list[str]] = {t: [] for t in tenants}
    for i in range(15):
        tenant = tenants[i % 3]
        runs[tenant].append(await start(shared_provider, workflow_id, f"run-{i}",
                                        tenant_id=tenant, operation="provision"))
    started_between = 0
    for n, tenant in enumerate(tenants):
        seen: list[str] = []
        between: list[str] = []
        token = None
        while True:
            page = await shared_provider.list_executions_page(
                workflow_id, tags={"tenant_id": tenant}, page_size=2, page_token=token)
            assert len(page.executions) <= 2
            assert all(s.tags["tenant_id"] == tenant and s.trigger_source == "test"
                       for s in page.executions)
            seen += [s.execution_id for s in page.executions]
            between.append(await start(shared_provider, workflow_id,
                                       f"between-{n}-{len(between)}", tenant_id=tenant))
            if page.next_page_token is None:
                break
            token = page.next_page_token
        # every run exactly once, in the order searches answer; a run started between two
        # pages is newer than the pages read, so at most once, only if Restate stamped it
        # within milliseconds of the page it came after
        assert len(seen) == len(set(seen))
        assert set(seen) - set(between) == set(runs[tenant])
        assert seen == await newest_first(shared_provider, seen)
        again = await all_pages(shared_provider, 3, workflow_id=workflow_id,
                                tags={"tenant_id": tenant})
        assert again == await newest_first(shared_provider, [*runs[tenant], *between])
        started_between += len(between)
    everything = await all_pages(shared_provider, 4, workflow_id=workflow_id)
    assert len(everything) == len(set(everything)) == 15 + started_between


async def test_pages_follow_start_order_across_pages(shared_provider: RestateProvider) -> None:
    """Newest first by start, then id: a page-by-page walk equals one big page, and the
    provider's iterator walks the same."""
    workflow_id = await created(shared_provider)
    started = [await start(shared_provider, workflow_id, f"o-{i}") for i in range(9)]
    one = await shared_provider.list_executions_page(workflow_id, page_size=100)
    order = [s.execution_id for s in one.executions]
    assert order == await newest_first(shared_provider, started)
    assert await all_pages(shared_provider, 2, workflow_id=workflow_id) == order
    walked = [s.execution_id async for s in shared_provider.iter_executions(
        workflow_id, page_size=4)]
    assert walked == order
    assert [s.execution_id for s in await shared_provider.list_executions(
        workflow_id, limit=3)] == order[:3]


# -- filters and counts -------------------------------------------------------------------


async def test_state_tag_name_and_time_filters_and_counts(
    shared_provider: RestateProvider,
) -> None:
    """State (one or several), tags (every one, exactly), name prefix and start time filter
    pages and counts alike; a count is by state, zeros included."""
    noop = await created(shared_provider)
    failing = await created(shared_provider, "FailWithCode")
    tenant, other = unique_id("acme"), unique_id("globex")
    before = datetime.now(UTC)
    await asyncio.sleep(MARGIN)
    ok = [await start(shared_provider, noop, f"{tenant}-{i}", tenant_id=tenant,
                      operation="provision") for i in range(2)]
    bad = await start(shared_provider, failing, f"{tenant}-f", {"code": "x", "message": "no"},
                      tenant_id=tenant, operation="destroy")
    theirs = await start(shared_provider, noop, f"{other}-1", tenant_id=other,
                         operation="provision")
    for execution_id in (*ok, bad, theirs):
        await wait_terminal(shared_provider, execution_id, within=60)
    await asyncio.sleep(MARGIN)
    after = datetime.now(UTC)

    async def ids(**filters: object) -> list[str]:
        page = await shared_provider.list_executions_page(**filters)  # type: ignore[arg-type]
        return [s.execution_id for s in page.executions]

    async def ordered(*execution_ids: str) -> list[str]:
        return await newest_first(shared_provider, list(execution_ids))

    mine = {"tenant_id": tenant}
    assert await ids(tags=mine) == await ordered(bad, *ok)
    assert await ids(tags=mine, state="succeeded") == await ordered(*ok)
    assert await ids(tags=mine, state=[ExecutionState.FAILED]) == [bad]
    assert await ids(tags=mine, state=["failed", "succeeded"]) == await ordered(bad, *ok)
    assert await ids(tags=mine, state="running") == []
    assert await ids(tags={"tenant_id": tenant, "operation": "destroy"}) == [bad]
    assert await ids(tags={"tenant_id": tenant, "operation": "plan"}) == []
    assert await ids(tags={"tenant_id": tenant, "nope": "x"}) == []
    assert await ids(workflow_id=noop, tags=mine) == await ordered(*ok)
    assert await ids(workflow_id=noop, name_prefix=f"{other}-") == [theirs]
    assert await ids(tags=mine, since=before) == await ordered(bad, *ok)
    assert await ids(tags=mine, until=before) == []
    assert await ids(tags=mine, since=after) == []
    assert await ids(workflow_id=noop, since=before, until=after) == await ordered(theirs, *ok)

    def counted(total: int, **states: int) -> ExecutionCount:
        by_state = dict.fromkeys(ExecutionState, 0)
        by_state.update({ExecutionState(k): v for k, v in states.items()})
        return ExecutionCount(total=total, by_state=by_state)

    assert await shared_provider.count_executions(tags=mine) == counted(3, succeeded=2,
                                                                         failed=1)
    assert await shared_provider.count_executions(tags=mine, state="failed") == counted(
        1, failed=1)
    assert await shared_provider.count_executions(noop) == counted(3, succeeded=3)
    assert await shared_provider.count_executions(
        noop, tags={"operation": "provision"}, since=before) == counted(3, succeeded=3)
    assert await shared_provider.count_executions(tags={"tenant_id": unique_id("no")}) == (
        counted(0))


async def test_stopped_and_timed_out_are_told_apart_in_pages_and_counts(
    shared_provider: RestateProvider,
) -> None:
    """A killed, a cancelled and a timed-out run all end as failures in Restate; pages and
    counts by state tell them apart as status does (the shim's recorded outcome)."""
    slow = await created(shared_provider, "SlowSteps")
    timing_out = await created(shared_provider, "SlowSteps", timeout=timedelta(seconds=1))
    tenant = unique_id("acme")
    long = {"step_seconds": 30, "steps": 2}
    killed = await start(shared_provider, slow, "killed", long, tenant_id=tenant)
    cancelled = await start(shared_provider, slow, "cancelled", long, tenant_id=tenant)
    expired = await start(shared_provider, timing_out, "expired", long, tenant_id=tenant)
    await asyncio.sleep(0.3)
    await shared_provider.kill_execution(killed, "tenant deleted")
    await shared_provider.stop_execution(cancelled, "operator")
    states = {i: (await wait_terminal(shared_provider, i, within=60)).state
              for i in (killed, cancelled, expired)}
    assert states == {killed: ExecutionState.STOPPED, cancelled: ExecutionState.STOPPED,
                      expired: ExecutionState.TIMEOUT}
    mine = {"tenant_id": tenant}
    stopped = await shared_provider.list_executions_page(tags=mine, state="stopped")
    assert {s.execution_id for s in stopped.executions} == {killed, cancelled}
    timed_out = await shared_provider.list_executions(timing_out, state="timed_out")
    assert [s.execution_id for s in timed_out] == [expired]
    count = await shared_provider.count_executions(tags=mine)
    assert (count.total, count.by_state[ExecutionState.STOPPED],
            count.by_state[ExecutionState.TIMEOUT]) == (3, 2, 1)
    assert (await shared_provider.count_executions(slow)).by_state[ExecutionState.STOPPED] == 2


async def test_tags_are_the_first_starts(shared_provider: RestateProvider) -> None:
    """A second start with the same name answers the first execution and leaves its tags:
    it is not findable by the repeat's tags. invoke's runs carry Landlord's tags."""
    workflow_id = await created(shared_provider)
    first, second = unique_id("first"), unique_id("second")
    execution_id = await start(shared_provider, workflow_id, "same", tenant_id=first)
    assert await start(shared_provider, workflow_id, "same", tenant_id=second) == execution_id
    found = await shared_provider.list_executions(tags={"tenant_id": first})
    assert [(s.execution_id, s.tags) for s in found] == [(execution_id, {"tenant_id": first})]
    assert await shared_provider.list_executions(tags={"tenant_id": second}) == []
    tenant = unique_id("tenant")
    invoked = await shared_provider.invoke(workflow_id, ProvisionRequest(
        tenant_id=tenant, tenant_uuid=f"{tenant}-uuid"))
    [summary] = await shared_provider.list_executions(tags={"tenant_uuid": f"{tenant}-uuid"})
    assert summary.execution_id == invoked.execution_id
    assert summary.tags == {"tenant_id": tenant, "tenant_uuid": f"{tenant}-uuid",
                            "operation": "provision"}
    assert summary.trigger_source == "reconciler"


async def test_a_start_that_ended_before_its_record_is_mended_by_its_repeat(
    shared_provider: RestateProvider,
) -> None:
    """A start whose record was lost (its process died between the send and the writes) is
    found again once the start is repeated, with the first start's tags from its journal,
    not the repeat's; so is one whose tag entry was lost."""
    workflow_id = await created(shared_provider)
    tenant = unique_id("acme")
    execution_id = await start(shared_provider, workflow_id, "lost", tenant_id=tenant)
    await shared_provider.admin.set_state(CONTROL_SERVICE, execution_id, {},
                                          scope=record_scope(execution_id))
    assert await shared_provider.list_executions(tags={"tenant_id": tenant}) == []
    assert await start(shared_provider, workflow_id, "lost", tenant_id="someone-else") == (
        execution_id)
    [found] = await shared_provider.list_executions(tags={"tenant_id": tenant})
    assert (found.execution_id, found.tags) == (execution_id, {"tenant_id": tenant})
    rows = await shared_provider.admin.query(
        f"SELECT key FROM state WHERE scope = '{record_scope(execution_id)}'")
    assert [r["key"] for r in rows] == [RECORD_KEY]
    assert await shared_provider.list_executions(tags={"tenant_id": "someone-else"}) == []
    # a tag's entry lost (its write failed) while the record was kept: the repeat of the
    # same start writes it again
    await shared_provider.admin.set_state(CONTROL_SERVICE, execution_id, {},
                                          scope=tag_scope("tenant_id", tenant))
    assert await shared_provider.list_executions(tags={"tenant_id": tenant}) == []
    await start(shared_provider, workflow_id, "lost", tenant_id=tenant)
    assert [s.execution_id for s in await shared_provider.list_executions(
        tags={"tenant_id": tenant})] == [execution_id]


# -- a run by its name --------------------------------------------------------------------


async def test_lookup_by_name(shared_provider: RestateProvider) -> None:
    """lookup_execution answers the id of a run by its name; none is ExecutionNotFoundError;
    a malformed workflow id or name is refused before any read."""
    workflow_id = await created(shared_provider)
    execution_id = await start(shared_provider, workflow_id, "acme-7")
    assert await shared_provider.lookup_execution(workflow_id, "acme-7") == execution_id
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.lookup_execution(workflow_id, "acme-8")
    with pytest.raises(ExecutionNotFoundError):
        await shared_provider.lookup_execution(unique_id("gone"), "acme-7")
    with pytest.raises(InvalidSpecError):
        await shared_provider.lookup_execution("Not A Workflow", "acme-7")
    with pytest.raises(InvalidInputError):
        await shared_provider.lookup_execution(workflow_id, "acme 7'; --")


# -- what is refused ----------------------------------------------------------------------


def _edited(token: str, **fields: object) -> str:
    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body.update(fields)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


async def test_tokens_sizes_and_filters_are_checked_before_any_query(
    shared_provider: RestateProvider,
) -> None:
    """A malformed, foreign or edited page token, a page size out of range, an empty tag
    key, a naive time and an empty state list are InvalidInputError naming the field."""
    workflow_id = await created(shared_provider)
    for i in range(3):
        await start(shared_provider, workflow_id, f"t-{i}")
    token = (await shared_provider.list_executions_page(workflow_id, page_size=1)).next_page_token
    assert token is not None
    second = await shared_provider.list_executions_page(workflow_id, page_size=1,
                                                        page_token=token)
    assert [s.execution_name for s in second.executions] == ["t-1"]
    refused: list[tuple[dict[str, object], str]] = [
        ({"page_token": "not a token"}, "page_token"),
        ({"page_token": "!" * 40}, "page_token"),
        ({"page_token": "x" * 2000}, "page_token"),
        ({"page_token": base64.urlsafe_b64encode(b"[1, 2]").decode()}, "page_token"),
        ({"page_token": _edited(token, t="2026-01-01T00:00:00.000Z")}, "page_token"),
        ({"page_token": _edited(token, i="inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")},
         "page_token"),
        ({"page_token": _edited(token, t="' OR 1=1 --", c="0" * 16)}, "page_token"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"tags": {"": "x"}}, "tags"),
        ({"tags": {"k": 1}}, "tags"),
        ({"since": datetime(2026, 1, 1)}, "since"),  # naive
        ({"until": "yesterday"}, "until"),
        ({"state": []}, "state"),
        ({"state": ["failed", "sleeping"]}, "state"),
    ]
    for filters, field in refused:
        with pytest.raises(InvalidInputError) as caught:
            await shared_provider.list_executions_page(workflow_id, **filters)  # type: ignore[arg-type]
        assert caught.value.field == field, filters
    with pytest.raises(InvalidInputError) as foreign:  # made for other filters
        await shared_provider.list_executions_page(workflow_id, state="failed",
                                                   page_token=token)
    assert foreign.value.field == "page_token"
    assert "other filters" in foreign.value.message
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    windowed = await shared_provider.list_executions_page(workflow_id, page_size=1,
                                                          since=hour_ago)
    assert windowed.next_page_token is not None
    for since in (None, hour_ago):  # the token keeps its window: leave it out, or the same
        kept = await shared_provider.list_executions_page(
            workflow_id, page_size=1, since=since, page_token=windowed.next_page_token)
        assert [s.execution_name for s in kept.executions] == ["t-1"]
    with pytest.raises(InvalidInputError) as moved:  # another window
        await shared_provider.list_executions_page(
            workflow_id, page_size=1, since=hour_ago + timedelta(seconds=1),
            page_token=windowed.next_page_token)
    assert moved.value.field == "page_token"
    with pytest.raises(InvalidInputError):
        await shared_provider.count_executions(tags={"": "x"})
    with pytest.raises(InvalidInputError):
        await shared_provider.list_executions(limit=0)


def _forged(token: str, **fields: object) -> str:
    """`token` edited, and its check recomputed as the provider computes it: what a
    hostile caller who read the source can make."""
    from landlord_restate.restate.search import _token_check

    body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    body.update(fields)
    body["c"] = _token_check(body)
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")


async def test_time_bounds_at_the_edges_of_time_select_as_they_say(
    shared_provider: RestateProvider,
) -> None:
    """Bounds Restate's SQL cannot hold (before 1677, after 2262, datetime's own min and
    max in any zone) are taken at the edge Restate can hold, which selects the same runs:
    `until` far ahead is no upper bound, `since` far back no lower one; never an
    OverflowError or Restate's 500."""
    workflow_id = await created(shared_provider)
    ids = {await start(shared_provider, workflow_id, f"e-{i}") for i in range(2)}
    east, west = timezone(timedelta(hours=1)), timezone(timedelta(hours=-1))
    everything = [
        {"until": datetime.max.replace(tzinfo=UTC)},
        {"until": datetime.max.replace(tzinfo=west)},
        {"until": datetime(2300, 1, 1, tzinfo=UTC)},
        {"until": datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)},
        {"since": datetime.min.replace(tzinfo=east)},
        {"since": datetime(1600, 1, 1, tzinfo=UTC)},
    ]
    nothing = [
        {"since": datetime(2300, 1, 1, tzinfo=UTC)},
        {"since": datetime.max.replace(tzinfo=west)},
        {"until": datetime(1600, 1, 1, tzinfo=UTC)},
        {"until": datetime.min.replace(tzinfo=east)},
    ]
    for bounds, found in [(b, ids) for b in everything] + [(b, set()) for b in nothing]:
        page = await shared_provider.list_executions_page(workflow_id, **bounds)  # type: ignore[arg-type]
        assert {s.execution_id for s in page.executions} == found, bounds
        counted = await shared_provider.count_executions(workflow_id, **bounds)  # type: ignore[arg-type]
        assert counted.total == len(found), bounds


async def test_a_forged_token_with_an_impossible_time_is_refused(
    shared_provider: RestateProvider,
) -> None:
    """A token whose check was recomputed but whose times are no real time, or one
    Restate cannot hold, is InvalidInputError naming page_token, never sent to SQL."""
    workflow_id = await created(shared_provider)
    for i in range(2):
        await start(shared_provider, workflow_id, f"f-{i}")
    token = (await shared_provider.list_executions_page(workflow_id, page_size=1)).next_page_token
    assert token is not None
    for fields in ({"t": "2026-13-45T99:99:99.999Z"}, {"t": "2026-02-30T00:00:00.000Z"},
                   {"t": "3000-01-01T00:00:00.000Z"}, {"a": "2026-02-30T00:00:00.000Z"},
                   {"b": "3000-01-01T00:00:00.000Z"}):
        with pytest.raises(InvalidInputError) as caught:
            await shared_provider.list_executions_page(
                workflow_id, page_size=1, page_token=_forged(token, **fields))
        assert caught.value.field == "page_token", fields
    # the forging itself is faithful: unchanged fields still page on
    again = await shared_provider.list_executions_page(
        workflow_id, page_size=1, page_token=_forged(token))
    assert [s.execution_name for s in again.executions] == ["f-0"]


async def test_states_given_once_serve_every_page(shared_provider: RestateProvider) -> None:
    """`state` as an iterator or a generator is read once: iter_executions pages on with
    it; a mapping or bytes is no list of states."""
    workflow_id = await created(shared_provider)
    ids = [await start(shared_provider, workflow_id, f"s-{i}") for i in range(3)]
    for execution_id in ids:
        await wait_terminal(shared_provider, execution_id, within=60)
    walked = [s.execution_id async for s in shared_provider.iter_executions(
        workflow_id, state=iter(["succeeded"]), page_size=1)]
    assert sorted(walked) == sorted(ids)
    walked = [s.execution_id async for s in shared_provider.iter_executions(
        workflow_id, state=(s for s in ["succeeded", "failed"]), page_size=2)]
    assert sorted(walked) == sorted(ids)
    for state in ({"succeeded": 0}, b"succeeded"):
        with pytest.raises(InvalidInputError) as caught:
            await shared_provider.count_executions(workflow_id, state=state)  # type: ignore[arg-type]
        assert caught.value.field == "state"


# -- issue 26, item 6: list_executions missed matches and answered [] --------------------


async def test_an_underscore_in_a_name_prefix_is_no_wildcard(
    shared_provider: RestateProvider,
) -> None:
    """`_` in name_prefix was a LIKE wildcard: newer runs named `tX...` filled the fetch
    and `t_0` was missed. The prefix is exact in the query now."""
    workflow_id = await created(shared_provider)
    wanted = await start(shared_provider, workflow_id, "t_0")
    for i in range(6):
        await start(shared_provider, workflow_id, f"tX{i}")
    found = await shared_provider.list_executions(workflow_id, name_prefix="t_", limit=1)
    assert [s.execution_id for s in found] == [wanted]
    anywhere = await shared_provider.list_executions(name_prefix="t_", limit=1000)
    assert wanted in {s.execution_id for s in anywhere}
    assert all(s.execution_name.startswith("t_") for s in anywhere)


async def test_stopped_and_timeout_are_found_behind_newer_failures(
    shared_provider: RestateProvider,
) -> None:
    """state="stopped" matched every failure in SQL: newer failed runs filled the
    `limit * 4` fetch, the filter after it left nothing, and the stopped one was missed.
    Pages now read on until they are full."""
    slow = await created(shared_provider, "SlowSteps")
    failing = await created(shared_provider, "FailWithCode")
    tenant = unique_id("acme")
    stopped = await start(shared_provider, slow, "stopped", {"step_seconds": 30},
                          tenant_id=tenant)
    await shared_provider.kill_execution(stopped, "old")
    await wait_terminal(shared_provider, stopped, within=30)
    failed = [await start(shared_provider, failing, f"f{i}", {"code": "x", "message": "y"},
                          tenant_id=tenant) for i in range(6)]
    for execution_id in failed:
        await wait_terminal(shared_provider, execution_id, within=60)
    found = await shared_provider.list_executions(state="stopped", limit=1)
    assert [s.state for s in found] == [ExecutionState.STOPPED]
    mine = await shared_provider.list_executions(state="stopped", limit=1,
                                                 tags={"tenant_id": tenant})
    assert [s.execution_id for s in mine] == [stopped]
    page = await shared_provider.list_executions_page(tags={"tenant_id": tenant},
                                                      state="stopped", page_size=1)
    assert ([s.execution_id for s in page.executions], page.next_page_token) == ([stopped],
                                                                                 None)


# -- issue 26, item 12: the CLI and the provider agree on a deployment id ----------------


async def test_the_cli_and_the_provider_agree_on_deployment_ids(
    cli_env: dict[str, str], shared_provider: RestateProvider,
) -> None:
    """`deployments remove dp_abc` exited 1 (refused by the provider) while `remove xx`
    exited 2 (by the CLI): both are usage errors now, by the one rule, and the provider
    refuses both too."""
    for deployment_id in ("dp_abc", "xx", "dp_" + "a" * 65):
        done = await asyncio.to_thread(cli, cli_env, "deployments", "remove", deployment_id,
                                       "--json")
        assert done.returncode == 2, done.stdout
        assert json.loads(done.stdout)["field"] == "deployment_id"
        with pytest.raises(InvalidInputError):
            await shared_provider.remove_deployment(deployment_id)
    await shared_provider.register_deployment()  # a deployment to list, whatever ran first
    real = (await shared_provider.list_deployments())[0].deployment_id
    shown = await asyncio.to_thread(cli, cli_env, "deployments", "remove",
                                    "dp_" + real[3:].swapcase(), "--json")
    assert shown.returncode == 0, shown.stdout  # well formed, unknown: nothing to remove


# -- the CLI --------------------------------------------------------------------------------


async def test_the_cli_lists_pages_and_counts(
    cli_env: dict[str, str], shared_provider: RestateProvider,
) -> None:
    """list --tag --state --since --page-size prints a page and the next token; --page-token
    goes on; count prints a table by state; --json prints one document each."""
    workflow_id = await created(shared_provider)
    tenant = unique_id("acme")
    ids = [await start(shared_provider, workflow_id, f"c-{i}", tenant_id=tenant)
           for i in range(3)]
    for execution_id in ids:
        await wait_terminal(shared_provider, execution_id, within=60)
    flags = ("--tag", f"tenant_id={tenant}", "--state", "succeeded", "--state", "failed",
             "--since", "1h")

    def run(*args: str) -> dict[str, object]:
        done = cli(cli_env, *args, "--json")
        assert done.returncode == 0, done.stderr
        shown: dict[str, object] = json.loads(done.stdout)
        return shown

    order = await newest_first(shared_provider, ids)
    first = await asyncio.to_thread(run, "list", *flags, "--page-size", "2")
    assert [s["execution_id"] for s in first["executions"]] == order[:2]  # type: ignore[attr-defined]
    assert isinstance(first["next_page_token"], str)
    rest = await asyncio.to_thread(run, "list", *flags, "--page-size", "2", "--page-token",
                                   str(first["next_page_token"]))
    assert ([s["execution_id"] for s in rest["executions"]], rest["next_page_token"]) == (  # type: ignore[attr-defined]
        order[2:], None)
    assert rest["executions"][0]["tags"] == {"tenant_id": tenant}  # type: ignore[index]
    counted = await asyncio.to_thread(run, "count", *flags)
    assert counted["total"] == 3
    assert counted["by_state"] == {s.value: 3 if s is ExecutionState.SUCCEEDED else 0
                                   for s in ExecutionState}
    table = await asyncio.to_thread(cli, cli_env, "list", *flags, "--page-size", "2")
    assert table.returncode == 0, table.stderr
    assert f"tenant_id={tenant}" in table.stdout
    assert "next page: --page-token " in table.stdout
    by_state = await asyncio.to_thread(cli, cli_env, "count", *flags)
    assert by_state.returncode == 0, by_state.stderr
    assert "succeeded" in by_state.stdout
    assert "total" in by_state.stdout
    foreign = await asyncio.to_thread(cli, cli_env, "list", "--page-token",
                                      str(first["next_page_token"]), "--json")
    assert foreign.returncode == 2
    assert json.loads(foreign.stdout)["field"] == "page_token"
    ahead = await asyncio.to_thread(cli, cli_env, "count", "--since=-1h", "--json")
    assert ahead.returncode == 2  # a duration ago cannot be negative
    assert json.loads(ahead.stdout)["field"] == "since"
    far = await asyncio.to_thread(cli, cli_env, "count", "--until", "9999-12-31T23:59:59Z",
                                  "--since", "0001-01-01T00:00:00+01:00", "--json")
    assert far.returncode == 0, far.stdout + far.stderr


# -- with the deployment killed -------------------------------------------------------------


@pytest.fixture(scope="module")
async def down_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalRestate]:
    """restate-server and a deployment of this module alone, which a test kills."""
    async with LocalRestate(
        handlers=[TEST_HANDLERS], service_name="Search", base_dir=tmp_path_factory.mktemp("s"),
        config_file=ROOT / "restate.toml", env=deployment_env(),
    ) as stack:
        yield stack


async def test_a_search_while_the_deployment_is_killed(down_stack: LocalRestate) -> None:
    """With the deployment killed, starts are findable by their tags the moment they
    return; pages, counts, the iterator and lookup by name all answer at once, from
    restate-server alone; the runs then run when the deployment returns."""
    async with RestateProvider(down_stack.config()) as provider:
        workflow_id = await created(provider)
        tenant = unique_id("acme")
        done = await start(provider, workflow_id, "before", tenant_id=tenant)
        await wait_terminal(provider, done, within=60)
        await down_stack.kill_deployment()
        try:
            pending = []
            for i in range(3):
                pending.append(await start(provider, workflow_id, f"down-{i}",
                                           tenant_id=tenant, operation="provision"))
                page = await provider.list_executions_page(tags={"tenant_id": tenant},
                                                           page_size=1)
                assert pending[-1] in {s.execution_id for s in (await provider.list_executions(
                    tags={"tenant_id": tenant}, limit=10))}
                assert len(page.executions) == 1
            began = time.monotonic()
            found = await all_pages(provider, 2, tags={"tenant_id": tenant})
            counted = await provider.count_executions(tags={"tenant_id": tenant})
            # pending, or running (backing-off) once Restate tried the deployment
            waiting = await provider.list_executions(workflow_id, state=["pending", "running"])
            looked_up = await provider.lookup_execution(workflow_id, "down-1")
            walked = [s.execution_id async for s in provider.iter_executions(
                tags={"tenant_id": tenant, "operation": "provision"})]
            took = time.monotonic() - began
            assert found == await newest_first(provider, [*pending, done])
            by_state = counted.by_state
            assert (counted.total, by_state[ExecutionState.PENDING]
                    + by_state[ExecutionState.RUNNING],
                    by_state[ExecutionState.SUCCEEDED]) == (4, 3, 1)
            assert {s.execution_id for s in waiting} == set(pending)
            assert looked_up == pending[1]
            assert walked == await newest_first(provider, pending)
            assert took < AT_ONCE * 5, took
        finally:
            await down_stack.restart_deployment()
        for execution_id in pending:
            await wait_terminal(provider, execution_id, within=60)
        assert (await provider.count_executions(tags={"tenant_id": tenant})).by_state[
            ExecutionState.SUCCEEDED] == 4


async def test_with_restate_down_a_search_is_a_typed_error_and_input_is_checked_first(
) -> None:
    """With Restate unreachable, pages, counts and lookups raise RestateConnectionError
    (or RestateUnavailableError) naming the endpoint once the retry window has passed;
    input is still refused first, without waiting."""
    dead = dead_endpoint()
    config = RestateConfig(endpoint=dead, admin_endpoint=dead, retry_window=timedelta(seconds=1))
    async with RestateProvider(config) as provider:
        for call in (provider.list_executions_page(tags={"tenant_id": "acme"}),
                     provider.count_executions(),
                     provider.lookup_execution("tenant-provisioning", "acme-1")):
            began = time.monotonic()
            with pytest.raises((RestateConnectionError, RestateUnavailableError)) as caught:
                await call
            assert time.monotonic() - began < 10
            assert dead in str(caught.value)
        began = time.monotonic()
        with pytest.raises(InvalidInputError):
            await provider.list_executions_page(page_size=0)
        assert time.monotonic() - began < 0.5
