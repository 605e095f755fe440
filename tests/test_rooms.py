"""Each family of operations works as a room of its own: built from the parts a provider
shares (`parts.Parts`, made by `connection.Connection`), with no `RestateProvider` and
only the rooms it is handed, against the real server. What the door adds (its life,
tracing, exact signatures) is tested through the door elsewhere; these show that the
rooms do not reach back into it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from loguru import logger

from landlord_restate import (
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    InvalidInputError,
    InvalidSpecError,
    RestateConfig,
)
from landlord_restate.restate.actions import OperatorActions
from landlord_restate.restate.builtin import resolve_spec
from landlord_restate.restate.connection import Connection
from landlord_restate.restate.deployments import Deployments
from landlord_restate.restate.executions import Executions
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.search import Search, SearchFilters
from landlord_restate.restate.stopping import Stopping
from landlord_restate.restate.workflows import Workflows
from tests.conftest import spec_for, unique_id
from tests.waiting import wait_marks

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def parts(shared_config: RestateConfig) -> AsyncIterator[Parts]:
    """The parts of one connection on the shared service, as a provider would make them."""
    connection = Connection.open(
        shared_config, logger, lambda spec: resolve_spec(spec, shared_config))
    try:
        yield connection.parts
    finally:
        await connection.aclose()


async def a_workflow(parts: Parts, handler: str) -> str:
    """A new workflow running `handler`, made by the workflows room alone."""
    spec = spec_for(handler, unique_id(handler.lower()))
    created = await Workflows(parts, Deployments(parts)).create(spec)
    assert created.workflow_id == spec.workflow_id
    return spec.workflow_id


async def test_the_workflows_room_creates_checks_and_deletes(parts: Parts) -> None:
    """Create answers the catalog record; a handler the deployment lacks is named; after a
    delete a start is refused."""
    workflows = Workflows(parts, Deployments(parts))
    spec = spec_for("ThreeSteps", unique_id("rooms-wf"))
    created = await workflows.create(spec)
    assert created.resource_ids["catalog_entry"].startswith("inv_")
    with pytest.raises(InvalidSpecError, match="NoSuchHandler"):
        await workflows.validate(spec_for("NoSuchHandler", unique_id("rooms-missing")))
    await workflows.delete(spec.workflow_id)
    with pytest.raises(Exception, match=spec.workflow_id):
        await Executions(parts).start(spec.workflow_id, ExecutionInput(input={}))


async def test_the_deployments_room_lists_the_deployment_it_registers(parts: Parts) -> None:
    """register_configured answers the id that list shows, at the configured address."""
    deployments = Deployments(parts)
    deployment_id = await deployments.register_configured()
    listed = {d.deployment_id: d for d in await deployments.list()}
    assert deployment_id in listed
    assert listed[deployment_id].address.rstrip("/") == str(parts.config.deployment_url).rstrip("/")


async def test_the_executions_room_starts_waits_and_reads(parts: Parts) -> None:
    """Start is new once (a repeat finds the same run); wait answers the terminal status;
    status reads the same, with the workflow status beside it."""
    executions = Executions(parts)
    workflow_id = await a_workflow(parts, "ThreeSteps")
    first, new = await executions.start(workflow_id, ExecutionInput(
        execution_name="once", input={}, tags={"tenant_id": "rooms"}))
    again, new_again = await executions.start(workflow_id, ExecutionInput(
        execution_name="once", input={}))
    assert (new, new_again) == (True, False)
    assert again.execution_id == first.execution_id
    ended = await executions.wait(first.execution_id, 60)
    assert ended.state is ExecutionState.SUCCEEDED
    read = await executions.status(first.execution_id)
    assert read.state is ExecutionState.SUCCEEDED
    assert [e.type for e in read.history][:1] == ["execution_started"]
    # one node, as the server says: its status reads ask their two lookups at once
    assert parts.sql.single_node is True


async def test_the_stopping_room_stops_with_its_reason(parts: Parts, tmp_path: Path) -> None:
    """A stop through the room alone ends the run stopped with the reason, and the room's
    close keeps its promised kill."""
    marks = tmp_path / "marks"
    executions, stopping = Executions(parts), Stopping(parts)
    workflow_id = await a_workflow(parts, "SlowSteps")
    started, _ = await executions.start(workflow_id, ExecutionInput(
        input={"marks": str(marks), "step_seconds": 0.3, "steps": 20}))
    await wait_marks(marks, "start slow-1")
    await stopping.stop(started.execution_id, "rooms: tenant deleted")
    await stopping.aclose()
    ended = await executions.wait(started.execution_id, 30)
    assert ended.state is ExecutionState.STOPPED
    assert ended.error is not None
    assert ended.error.message == "rooms: tenant deleted"


async def test_the_actions_room_redrives_and_purges(parts: Parts, tmp_path: Path) -> None:
    """A failed run redriven through the room alone reuses the steps it completed; purge
    forgets a finished run and refuses nothing unknown; a succeeded run is no redrive."""
    marks, broken = tmp_path / "marks", tmp_path / "broken"
    broken.write_text("down")
    executions = Executions(parts)
    actions = OperatorActions(parts, executions)
    workflow_id = await a_workflow(parts, "Fixable")
    failed, _ = await executions.start(workflow_id, ExecutionInput(
        input={"marks": str(marks), "broken": str(broken)}))
    assert (await executions.wait(failed.execution_id, 60)).state is ExecutionState.FAILED
    broken.unlink()
    redriven = await actions.redrive(failed.execution_id)
    ended = await executions.wait(redriven.execution_id, 60)
    assert ended.state is ExecutionState.SUCCEEDED
    assert ended.metadata["redriven_from"] == failed.execution_id
    assert marks.read_text().split().count("one") == 1  # reused, not run again
    with pytest.raises(InvalidInputError):
        await actions.redrive(redriven.execution_id)
    await actions.purge(redriven.execution_id)
    with pytest.raises(ExecutionNotFoundError):
        await executions.status(redriven.execution_id)
    await actions.purge("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")


async def test_the_search_room_pages_counts_and_looks_up(parts: Parts) -> None:
    """By tag, a page of one and its token walk every run once; the count agrees; a run is
    found by its name."""
    executions, search = Executions(parts), Search(parts)
    workflow_id = await a_workflow(parts, "Noop")
    tenant = unique_id("rooms-tenant")
    ids = set()
    for name in ("a", "b", "c"):
        started, _ = await executions.start(workflow_id, ExecutionInput(
            execution_name=name, input={}, tags={"tenant_id": tenant}))
        ids.add(started.execution_id)
    filters = SearchFilters(workflow_id=workflow_id, tags={"tenant_id": tenant})
    seen: list[str] = []
    token = None
    while True:
        page = await search.page(filters, page_size=1, page_token=token)
        seen += [s.execution_id for s in page.executions]
        if page.next_page_token is None:
            break
        token = page.next_page_token
    assert sorted(seen) == sorted(ids)
    assert (await search.count(filters)).total == 3
    assert await search.lookup(workflow_id, "b") in ids
