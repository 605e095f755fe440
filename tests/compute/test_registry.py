"""Compute providers by name, built from Landlord's `compute:` config through entry points."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Mapping
from typing import Any

import pytest

from landlord_restate.compute import (
    ENTRY_POINT_GROUP,
    ComputeProvider,
    ComputeProviderConflictError,
    ComputeProviderNotFoundError,
    ComputeRegistry,
    MockProvider,
    default_provider,
    installed_providers,
    load_registry,
)
from landlord_restate.compute.docker import DockerProvider
from landlord_restate.workflow import ConfigError, WorkflowError


class ClosingProvider(MockProvider):
    """A mock that records when it is closed, under a name of the test's choosing."""

    closed: list[str]

    def __init__(self, name: str, closed: list[str]) -> None:
        super().__init__()
        self._name = name
        self.closed = closed

    @property
    def name(self) -> str:
        """The name given."""
        return self._name

    async def aclose(self) -> None:
        """Record the close."""
        self.closed.append(self._name)


def entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    """An entry point of the compute provider group, as a package would declare it."""
    return importlib.metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


def third_party(config: Mapping[str, Any]) -> ComputeProvider:
    """A third-party factory: its provider is named after the config it was given."""
    return ClosingProvider(str(config.get("name", "ecs")), [])


def not_a_provider(config: Mapping[str, Any]) -> object:
    """A factory that answers something else."""
    return object()


def test_installed_entry_points() -> None:
    """The package declares mock and docker in the group, and they load."""
    installed = installed_providers()
    assert {"mock", "docker"} <= installed.keys()
    assert installed["docker"].value == "landlord_restate.compute.docker:create"


def test_register_get_names_has() -> None:
    """A registered provider is found by name, listed and known."""
    registry = ComputeRegistry()
    provider = MockProvider()
    registry.register(provider)
    assert registry.get("mock") is provider
    assert registry.names() == ["mock"]
    assert registry.has("mock")
    assert not registry.has("docker")
    assert isinstance(provider, ComputeProvider)


def test_duplicate_and_unknown_names() -> None:
    """A taken name conflicts; an unknown one names the registered ones."""
    registry = ComputeRegistry()
    registry.register(MockProvider())
    with pytest.raises(ComputeProviderConflictError) as conflict:
        registry.register(MockProvider())
    assert conflict.value.name == "mock"
    with pytest.raises(ComputeProviderNotFoundError) as missing:
        registry.get("ecs")
    assert isinstance(missing.value, WorkflowError)
    assert missing.value.known == ("mock",)
    assert "'ecs'" in str(missing.value)
    assert "registered: mock" in str(missing.value)


async def test_closes_what_it_holds_in_reverse() -> None:
    """Leaving the registry closes every provider, the last registered first, once."""
    closed: list[str] = []
    async with ComputeRegistry() as registry:
        registry.register(ClosingProvider("a", closed))
        registry.register(ClosingProvider("b", closed))
    assert closed == ["b", "a"]
    await registry.aclose()
    assert closed == ["b", "a"]
    assert registry.names() == []


async def test_load_from_landlord_config() -> None:
    """Each configured section creates its provider through its entry point, with its
    section; the extra keys of compute.docker are the tenants' defaults."""
    config = {
        "docker": {"host": "unix:///nowhere/docker.sock", "image": "nginx:1.25"},
        "mock": None,
    }
    async with load_registry(config) as registry:
        assert registry.names() == ["docker", "mock"]
        docker = registry.get("docker")
        assert isinstance(docker, DockerProvider)
        assert docker.settings.host == "unix:///nowhere/docker.sock"
        assert registry.provider_schema("docker")[1] == {"image": "nginx:1.25"}
        assert registry.default is None


async def test_third_party_provider() -> None:
    """Any name with an installed entry point is a provider Landlord's config can name."""
    installed = installed_providers() | {
        "ecs": entry_point("ecs", f"{__name__}:third_party"),
    }
    async with load_registry({"ecs": {"cluster_arn": "arn"}}, installed=installed) as registry:
        assert registry.names() == ["ecs"]
        assert registry.default == "ecs"


def test_unknown_provider_names_installed_ones() -> None:
    """A configured name no package provides is a ConfigError naming it and what exists."""
    with pytest.raises(ConfigError) as caught:
        load_registry({"nomad": {}})
    assert caught.value.key == "compute.nomad"
    assert "'nomad'" in str(caught.value)
    assert "installed: docker, mock" in str(caught.value)


@pytest.mark.parametrize(("value", "words"), [
    (f"{__name__}:not_a_provider", "answered object, not a ComputeProvider"),
    (f"{__name__}:missing", "cannot load"),
    (f"{__name__}:third_party", "answered a provider named 'ecs'"),
])
def test_broken_entry_points(value: str, words: str) -> None:
    """An entry point that cannot load, or answers no provider or a misnamed one, is named."""
    installed = {"batch": entry_point("batch", value)}
    with pytest.raises(ConfigError) as caught:
        load_registry({"batch": {}}, installed=installed)
    assert words in str(caught.value)
    assert caught.value.key == "compute.batch"


def test_config_errors() -> None:
    """No provider, a section that is no mapping, a bad docker setting: ConfigErrors."""
    with pytest.raises(ConfigError, match="at least one compute provider"):
        load_registry({})
    with pytest.raises(ConfigError, match=r"compute\.mock must be a mapping"):
        load_registry({"mock": ["x"]})
    with pytest.raises(ConfigError) as caught:
        load_registry({"docker": {"host_ip": "everywhere"}})
    assert caught.value.key == "compute.docker.host_ip"
    with pytest.raises(ConfigError) as caught:
        load_registry({"docker": {"ports": [{"container_port": 0}]}})
    assert caught.value.key == "compute.docker.ports[0].container_port"


def test_default_provider() -> None:
    """compute.default_provider when set, else the only provider, else none."""
    assert default_provider({"docker": {}}) == "docker"
    assert default_provider({"docker": {}, "mock": {}}) is None
    assert default_provider({"docker": {}, "mock": {}, "default_provider": "mock"}) == "mock"
    assert default_provider({}) is None
    with pytest.raises(ConfigError, match="not configured"):
        default_provider({"mock": {}, "default_provider": "docker"})
