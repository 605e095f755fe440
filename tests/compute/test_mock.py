"""The mock provider keeps Landlord's semantics exactly."""

from __future__ import annotations

import pytest

from landlord_restate.compute import (
    ComputeState,
    ContainerSpec,
    HealthStatus,
    MockProvider,
    PortMapping,
    ProvisionStatus,
    ResourceRequirements,
    TenantAlreadyProvisionedError,
    TenantComputeSpec,
    TenantNotFoundError,
    UpdateStatus,
)
from landlord_restate.compute.mock import create


def spec(cpu: int = 256, memory: int = 512, containers: int = 1) -> TenantComputeSpec:
    """A mock spec: `containers` containers serving on 8080 (the first) and none (others)."""
    return TenantComputeSpec(
        tenant_id="acme", provider_type="mock",
        containers=[
            ContainerSpec(
                name=f"c{i}", image="nginx",
                ports=[PortMapping(container_port=8080 + i)] if i == 0 else [],
            )
            for i in range(containers)
        ],
        resources=ResourceRequirements(cpu=cpu, memory=memory),
    )


async def test_lifecycle() -> None:
    """Provision, status, update with and without changes, destroy: Landlord's answers."""
    provider = create({})
    assert provider.name == "mock"
    result = await provider.provision(spec(containers=2))
    assert result.status is ProvisionStatus.SUCCESS
    assert result.resource_ids == {"tenant": "acme"}
    assert [(e.type, e.address, e.port, e.url) for e in result.endpoints] == [
        ("http", "mock.local", 8080, "http://mock.local:8080"),
    ]
    assert result.message == "Mock provisioning successful"
    status = await provider.get_status("acme")
    assert (status.state, status.health) == (ComputeState.RUNNING, HealthStatus.HEALTHY)
    assert [c.name for c in status.containers] == ["c0", "c1"]
    assert all(c.ready and c.state == "running" for c in status.containers)
    assert status.metadata == {"mock": "true"}
    unchanged = await provider.update("acme", spec(containers=2))
    assert (unchanged.status, unchanged.changes) == (UpdateStatus.NO_CHANGES, [])
    changed = await provider.update("acme", spec(cpu=512, memory=1024))
    assert changed.status is UpdateStatus.SUCCESS
    assert changed.changes == [
        "container count changed", "CPU allocation changed", "memory allocation changed",
    ]
    assert len((await provider.get_status("acme")).containers) == 1
    await provider.destroy("acme")
    with pytest.raises(TenantNotFoundError):
        await provider.get_status("acme")


async def test_refusals() -> None:
    """A second provision, and update, destroy or status of an unknown tenant, are errors."""
    provider = MockProvider()
    await provider.provision(spec())
    with pytest.raises(TenantAlreadyProvisionedError, match="tenant acme already exists"):
        await provider.provision(spec())
    for call in (
        provider.update("other", spec()), provider.destroy("other"), provider.get_status("other"),
    ):
        with pytest.raises(TenantNotFoundError) as caught:
            await call
        assert caught.value.tenant_id == "other"
        assert not caught.value.retryable


async def test_accepts_every_spec_and_config() -> None:
    """Validation accepts anything; the schema is empty and there are no defaults."""
    provider = MockProvider()
    await provider.validate(TenantComputeSpec(tenant_id="", provider_type=""))
    provider.validate_config({"anything": ["goes"]})
    assert provider.config_schema() == {}
    assert provider.config_defaults() is None
    await provider.aclose()
