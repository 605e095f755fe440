"""Names and ids both sides agree on."""

from __future__ import annotations

import pytest

from landlord_restate import InvalidInputError, InvalidSpecError
from landlord_restate.restate.naming import (
    check_execution_id,
    check_execution_name,
    check_workflow_id,
    go_handler_name,
    service_name_for,
    workflow_key,
)


@pytest.mark.parametrize(
    ("workflow_id", "service"),
    [
        ("tenant-provisioning", "TenantProvisioning"),
        ("billing", "Billing"),
        ("a-b-c", "ABC"),
        ("v2-tenants", "V2Tenants"),
        ("tenant--x", "TenantX"),
    ],
)
def test_service_name_derived_from_workflow_id(workflow_id: str, service: str) -> None:
    """Kebab case becomes the Restate service name."""
    assert service_name_for(workflow_id) == service


@pytest.mark.parametrize("workflow_id", ["2fa-setup", "-2x", "9"])
def test_workflow_id_that_cannot_name_a_service(workflow_id: str) -> None:
    """No leading letter: an InvalidSpecError naming workflow_id, not a surprise later."""
    with pytest.raises(InvalidSpecError) as caught:
        service_name_for(workflow_id)
    assert caught.value.field == "workflow_id"


@pytest.mark.parametrize("bad", ["", "Tenant", "a_b", "x" * 129, "a b", "a/../b"])
def test_workflow_id_rule(bad: str) -> None:
    """Landlord's rule: ^[a-z0-9-]{1,128}$."""
    with pytest.raises(InvalidSpecError):
        check_workflow_id(bad)


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("TenantProvisioning", "TenantProvisioning"),
        ("github.com/acme/landlord/workflows.TenantProvisioning", "TenantProvisioning"),
        ("example.com/pkg/v2.Handler_2", "Handler_2"),
    ],
)
def test_go_handler_names(reference: str, name: str) -> None:
    """Plain and Go-qualified references name the exported identifier."""
    assert go_handler_name(reference) == name


@pytest.mark.parametrize("bad", ["tenantProvisioning", "pkg.lower", "", "a b.X y", "1Abc"])
def test_bad_handler_references(bad: str) -> None:
    """Unexported or malformed references are refused, naming definition.handler."""
    with pytest.raises(InvalidSpecError) as caught:
        go_handler_name(bad)
    assert caught.value.field == "definition.handler"


@pytest.mark.parametrize(
    "bad",
    ["", "x" * 129, "has space", "semi;colon", "quote'", "dot.name", "slash/name"],
)
def test_execution_name_rule(bad: str) -> None:
    """Landlord's rule: ^[a-zA-Z0-9_-]{1,128}$."""
    with pytest.raises(InvalidInputError) as caught:
        check_execution_name(bad)
    assert caught.value.field == "execution_name"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "inv_",
        "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW' OR '1'='1",
        "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW; DROP TABLE state",
        "../../deployments",
        "exec-123",
    ],
)
def test_execution_id_is_checked_before_any_query(bad: str) -> None:
    """Only a well-formed invocation id may be interpolated into SQL or a path."""
    with pytest.raises(InvalidInputError):
        check_execution_id(bad)


def test_workflow_keys_never_collide_across_workflows() -> None:
    """The separator is in neither alphabet, so (id, name) pairs map one to one."""
    assert workflow_key("a-b", "c") != workflow_key("a", "b-c")
    assert check_execution_id("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
