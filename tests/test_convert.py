"""The converter reads the JSON Landlord's Go code writes, and writes what it reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from landlord_restate import (
    CreateWorkflowResult,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    InvalidInputError,
    InvalidSpecError,
    RetryPolicy,
    WorkflowSpec,
    from_json,
    to_json,
)
from landlord_restate.workflow.convert import (
    format_go_duration,
    parse_go_duration,
    parse_rfc3339,
)

FIXTURES = Path(__file__).parent / "fixtures" / "go"


def fixture(name: str) -> Any:
    """A Go-written JSON fixture, parsed."""
    return json.loads((FIXTURES / name).read_text())


def test_reads_go_workflow_spec() -> None:
    """Durations in nanoseconds, raw definition, tags, retry policy."""
    spec = from_json(WorkflowSpec, fixture("workflow_spec.json"))
    assert spec.workflow_id == "tenant-provisioning"
    assert spec.timeout == timedelta(minutes=30)
    assert spec.retry_policy == RetryPolicy(
        max_attempts=5,
        backoff_rate=2.0,
        initial_interval=timedelta(seconds=1),
        max_interval=timedelta(minutes=1),
    )
    assert spec.definition == {
        "handler": "github.com/acme/landlord/workflows.TenantProvisioning"
    }
    assert spec.tags == {"team": "platform", "tier": "gold"}


def test_go_spec_round_trips() -> None:
    """What we write back is what Go wrote (same keys, same nanoseconds)."""
    data = fixture("workflow_spec.json")
    assert to_json(from_json(WorkflowSpec, data)) == data


def test_null_maps_and_absent_omitempty_fields() -> None:
    """Go's null map decodes empty; an absent omitempty retry_policy is None."""
    spec = from_json(WorkflowSpec, fixture("workflow_spec_minimal.json"))
    assert spec.tags == {}
    assert spec.retry_policy is None
    assert spec.timeout == timedelta(0)
    assert spec.provider_config is None


def test_reads_results_and_status() -> None:
    """Nanosecond times keep microseconds; offsets are kept; null error and history."""
    created = from_json(CreateWorkflowResult, fixture("create_workflow_result.json"))
    assert created.created_at == datetime(2024, 1, 2, 15, 4, 5, 123456, tzinfo=UTC)
    result = from_json(ExecutionResult, fixture("execution_result.json"))
    assert result.state is ExecutionState.RUNNING
    assert result.started_at == datetime(
        2024, 1, 2, 15, 4, 5, 500000, tzinfo=timezone(timedelta(hours=1))
    )
    status = from_json(ExecutionStatus, fixture("execution_status.json"))
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "compute_failed"
    assert status.history[0].details == {}
    assert status.history[1].details == {"step": "provision-compute"}
    running = from_json(ExecutionStatus, fixture("execution_status_running.json"))
    assert running.stop_time is None
    assert running.error is None
    assert running.input == "a raw JSON string"
    assert running.history == []
    assert running.metadata == {}


def test_execution_input_round_trips() -> None:
    """Raw input JSON survives untouched."""
    data = fixture("execution_input.json")
    value = from_json(ExecutionInput, data)
    assert value.input == data["input"]
    assert to_json(value) == data


def test_times_written_as_rfc3339_utc_z() -> None:
    """UTC is written with 'Z', as Go's RFC3339Nano does."""
    data = to_json(from_json(ExecutionResult, fixture("execution_result.json")))
    assert data["started_at"] == "2024-01-02T15:04:05.500000+01:00"
    created = to_json(from_json(CreateWorkflowResult, fixture("create_workflow_result.json")))
    assert created["created_at"] == "2024-01-02T15:04:05.123456Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
        ("300ms", timedelta(milliseconds=300)),
        ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30.5)),
        ("-2s", timedelta(seconds=-2)),
        ("0", timedelta(0)),
        ("10us", timedelta(microseconds=10)),
    ],
)
def test_human_durations(text: str, expected: timedelta) -> None:
    """Go's time.ParseDuration syntax, as people write it in specs and config."""
    assert parse_go_duration(text) == expected
    spec = from_json(WorkflowSpec, {"workflow_id": "a", "timeout": text})
    assert spec.timeout == expected


def test_duration_formatting() -> None:
    """Durations render in Go's style for messages."""
    assert format_go_duration(timedelta(hours=1, minutes=30)) == "1h30m0s"
    assert format_go_duration(timedelta(seconds=2.5)) == "2.5s"
    assert format_go_duration(timedelta(0)) == "0s"


@pytest.mark.parametrize(
    ("data", "field", "words"),
    [
        ({"workflow_id": 7}, "$.workflow_id", "expected a string"),
        ({}, "$.workflow_id", "required field missing"),
        ({"workflow_id": "a", "timeout": "soon"}, "$.timeout", "invalid duration 'soon'"),
        ({"workflow_id": "a", "timeout": True}, "$.timeout", "expected a duration"),
        ({"workflow_id": "a", "tags": {"k": 1}}, "$.tags['k']", "expected a string"),
        ({"workflow_id": "a", "surprise": 1}, "$", "surprise"),
        ({"workflow_id": "a", "retry_policy": {"max_attempts": "3"}},
         "$.retry_policy.max_attempts", "expected an integer"),
        ("not an object", "$", "expected a JSON object"),
    ],
)
def test_malformed_spec_names_the_field(data: Any, field: str, words: str) -> None:
    """Every malformed spec is an InvalidSpecError naming the JSON path."""
    with pytest.raises(InvalidSpecError) as caught:
        from_json(WorkflowSpec, data)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_malformed_time_is_invalid_input() -> None:
    """A time without an offset is refused, naming the field."""
    data = fixture("execution_result.json") | {"started_at": "2024-01-02 15:04:05"}
    with pytest.raises(InvalidInputError) as caught:
        from_json(ExecutionResult, data)
    assert caught.value.field == "$.started_at"


def test_rfc3339_parser_edges() -> None:
    """Go's zero time and lowercase 'z' parse; naive times do not."""
    assert parse_rfc3339("0001-01-01T00:00:00Z").year == 1
    assert parse_rfc3339("2024-01-02t15:04:05z").tzinfo is not None
    with pytest.raises(ValueError, match="RFC 3339"):
        parse_rfc3339("2024-01-02T15:04:05")


def test_unknown_state_is_named() -> None:
    """A state Landlord does not know is refused with the valid ones listed."""
    data = fixture("execution_result.json") | {"state": "exploded"}
    with pytest.raises(InvalidInputError, match="one of: pending, running"):
        from_json(ExecutionResult, data)
