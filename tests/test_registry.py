"""The provider registry, as Landlord's Go workflow.Registry."""

from __future__ import annotations

import pytest

from landlord_restate import (
    ProviderConflictError,
    ProviderNotFoundError,
    Registry,
    RestateConfig,
    RestateProvider,
    WorkflowError,
)


def make_provider() -> RestateProvider:
    """A provider that is never opened: the registry only needs its name."""
    return RestateProvider(RestateConfig(endpoint="http://127.0.0.1:1"))


def test_register_get_list() -> None:
    """A registered provider is found by name and listed."""
    registry = Registry()
    provider = make_provider()
    registry.register(provider)
    assert registry.get("restate") is provider
    assert registry.list() == ["restate"]


def test_duplicate_name_conflicts() -> None:
    """A second provider under a taken name is a ProviderConflictError."""
    registry = Registry()
    registry.register(make_provider())
    with pytest.raises(ProviderConflictError) as caught:
        registry.register(make_provider())
    assert caught.value.name == "restate"
    assert registry.list() == ["restate"]


def test_unknown_name_not_found() -> None:
    """An unknown name is a ProviderNotFoundError, also a WorkflowError."""
    with pytest.raises(ProviderNotFoundError) as caught:
        Registry().get("temporal")
    assert isinstance(caught.value, WorkflowError)
    assert "temporal" in str(caught.value)
