"""The compute types read and write the JSON Landlord's Go code writes (golden files)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from landlord_restate.compute import (
    ComputeState,
    ComputeStatus,
    HealthStatus,
    InvalidComputeConfigError,
    ProvisionResult,
    ProvisionStatus,
    TenantComputeSpec,
    UpdateResult,
    UpdateStatus,
)
from landlord_restate.workflow import InvalidInputError, from_json, to_json

GOLDEN = Path(__file__).parent / "golden"


def golden(name: str) -> Any:
    """A Go-shaped JSON file, parsed (key order kept)."""
    return json.loads((GOLDEN / name).read_text())


def as_text(data: Any) -> str:
    """JSON text with keys in the order given: equal texts, equal key order."""
    return json.dumps(data, indent=2)


@pytest.mark.parametrize(("name", "cls"), [
    ("tenant_compute_spec.json", TenantComputeSpec),
    ("provision_result.json", ProvisionResult),
    ("provision_result_minimal.json", ProvisionResult),
    ("update_result.json", UpdateResult),
    ("update_result_no_changes.json", UpdateResult),
    ("compute_status.json", ComputeStatus),
])
def test_golden_round_trip(name: str, cls: type) -> None:
    """What we write back is what Go wrote: same keys, same order, omitempty fields absent."""
    data = golden(name)
    if name == "provision_result_minimal.json":
        data["resource_ids"] = {}  # Go's null map is read as empty, and written as {}
    assert as_text(to_json(from_json(cls, golden(name)))) == as_text(data)


def test_reads_full_spec() -> None:
    """Every field of the Go spec arrives where it belongs; provider_config stays raw JSON."""
    spec = from_json(TenantComputeSpec, golden("tenant_compute_spec.json"))
    app, worker = spec.containers
    assert app.env == {"LOG_LEVEL": "debug", "PORT": "8080"}
    assert app.ports[0].host_port == 18080
    assert app.ports[1].host_port == 0
    assert app.ports[1].name == ""
    assert app.health_check is not None
    assert app.health_check.http_path == "/healthz"
    assert app.resources is not None
    assert app.resources.storage == 1024
    assert worker.command == []
    assert worker.resources is None
    assert worker.health_check is not None
    assert worker.health_check.command == ["sh", "-c", "test -f /tmp/ready"]
    assert spec.networking.dns is not None
    assert spec.networking.dns.domain == "tenants.example.com"
    assert spec.secrets[1].env_var == ""
    assert spec.provider_config["compute_provider"] == "docker"


def test_null_slices_and_absent_omitempty_fields() -> None:
    """Go's null slice reads as empty; what Go omitted stays out when written back."""
    spec = from_json(TenantComputeSpec, golden("tenant_compute_spec_minimal.json"))
    assert spec.containers == []
    assert spec.labels == {}
    assert spec.provider_config is None
    written = to_json(spec)
    assert written["containers"] == []
    assert not {"secrets", "labels", "provider_config"} & written.keys()
    assert written["resources"] == {"cpu": 0, "memory": 0}
    assert written["networking"] == {"public_ip": False}


def test_status_words_and_times() -> None:
    """Status words are the enums; times keep their offset; Go's short fractions read."""
    provision = from_json(ProvisionResult, golden("provision_result_minimal.json"))
    assert provision.status is ProvisionStatus.IN_PROGRESS
    assert provision.resource_ids == {}
    assert provision.provisioned_at == datetime(
        2024, 1, 2, 15, 4, 5, tzinfo=timezone(timedelta(hours=1))
    )
    status = from_json(ComputeStatus, golden("compute_status.json"))
    assert (status.state, status.health) == (ComputeState.RUNNING, HealthStatus.HEALTHY)
    update = from_json(UpdateResult, golden("update_result_no_changes.json") | {
        "updated_at": "2024-01-02T15:04:05.5Z",
    })
    assert update.status is UpdateStatus.NO_CHANGES
    assert update.updated_at == datetime(2024, 1, 2, 15, 4, 5, 500000, tzinfo=UTC)


def test_bad_spec_names_the_json_path() -> None:
    """A malformed spec is an InvalidComputeConfigError naming each wrong field by path."""
    data = golden("tenant_compute_spec.json")
    data["containers"][0]["ports"][1]["container_port"] = "9090"
    data["containers"][0]["env"]["PORT"] = 8080
    data["surprise"] = True
    with pytest.raises(InvalidComputeConfigError) as caught:
        from_json(TenantComputeSpec, data)
    assert caught.value.field == "containers[0].env.PORT"
    assert caught.value.problems == (
        "containers[0].env.PORT: expected a string, got int",
        "containers[0].ports[1].container_port: expected an integer, got '9090'",
        "$: extra fields found (surprise)",
    )


def test_bad_result_is_invalid_input() -> None:
    """A result with an unknown status word is refused, naming the valid ones."""
    data = golden("provision_result.json") | {"status": "done"}
    with pytest.raises(InvalidInputError) as caught:
        from_json(ProvisionResult, data)
    assert "unknown ProvisionStatus 'done' (one of: success, in_progress, failed)" in str(
        caught.value
    )
    assert caught.value.field == "$.status"
