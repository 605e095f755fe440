"""Every operation logs with structured fields; errors log Restate's response."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from loguru import logger

from landlord_restate import (
    ExecutionInput,
    RestateProvider,
    RestateServerError,
    WorkflowNotFoundError,
)
from tests.conftest import spec_for, unique_id
from tests.waiting import wait_terminal


@pytest.fixture
def records() -> Iterator[list[dict[str, Any]]]:
    """Log records emitted while the test runs (the library's own loguru calls)."""
    seen: list[dict[str, Any]] = []
    sink = logger.add(lambda message: seen.append(dict(message.record)), level="DEBUG")
    yield seen
    logger.remove(sink)


def lines(records: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """The `extra` fields of records whose message contains `text`."""
    return [r["extra"] for r in records if text in r["message"]]


async def test_operations_log_structured_fields(
    shared_provider: RestateProvider, records: list[dict[str, Any]]
) -> None:
    """create, start, status transitions and stop carry ids, service and endpoint."""
    spec = spec_for("GoPair", unique_id("logs"))
    await shared_provider.create_workflow(spec)
    result = await shared_provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
    await wait_terminal(shared_provider, result.execution_id)
    await shared_provider.stop_execution(result.execution_id, "done anyway")

    (created,) = lines(records, "workflow created")
    assert created["workflow_id"] == spec.workflow_id
    assert created["service"] == "LandlordTests"
    assert created["endpoint"] == shared_provider.config.endpoint
    (registered,) = lines(records, "deployment registered")
    assert registered["deployment_id"].startswith("dp_")
    (started,) = lines(records, "execution started")
    assert (started["workflow_id"], started["execution_id"]) == (
        spec.workflow_id, result.execution_id,
    )
    transitions = lines(records, "execution state")
    assert transitions[-1]["state"] == "succeeded"
    assert all(t["execution_id"] == result.execution_id and t["at"] for t in transitions)
    (stopped,) = lines(records, "stop:")
    assert stopped["execution_id"] == result.execution_id


async def test_errors_log_the_restate_response(
    shared_provider: RestateProvider, records: list[dict[str, Any]]
) -> None:
    """A refused request logs the endpoint, path, status and Restate's body."""
    with pytest.raises(WorkflowNotFoundError):
        await shared_provider.start_execution(unique_id("absent"), ExecutionInput())
    response = await shared_provider.admin.query("SELECT 1 AS one")
    assert response == [{"one": 1}]
    bad = [r for r in records if r["message"].startswith("Restate error")]
    assert not bad, "a missing workflow is an answer, not a Restate error"
    with pytest.raises(RestateServerError, match=r"answered (400|500)"):
        await shared_provider.admin.query("SELECT * FROM no_such_table")
    (error,) = [r for r in records if r["message"].startswith("Restate error")]
    assert error["extra"]["status"] in (400, 500)
    assert error["extra"]["path"] == "/query"
    assert "no_such_table" in error["message"]
