"""The docker provider's checks: Landlord's, Docker's reference grammar, string env values,
allowed volume roots; each problem named by its JSON path, and nothing created."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiodocker
import pytest

from landlord_restate.compute import (
    ContainerSpec,
    InvalidComputeConfigError,
    PortMapping,
    ResourceRequirements,
    TenantComputeSpec,
    validate_compute_spec,
)
from landlord_restate.compute._docker_plan import image_reference_problem
from landlord_restate.compute.docker import DockerProvider, create
from landlord_restate.testing._docker import DockerDaemon
from tests.compute.conftest import busybox_spec, new_tenant, provider_config, tenant_containers

#: a provider that is never connected: validation needs no daemon
OFFLINE = create({"host": "unix:///nowhere/docker.sock", "image": "nginx:latest"}, env={})


@pytest.mark.parametrize("config", [
    None,
    "",
    '{"env": {"PORT": "8080", "DEBUG": "true"}}',
    {"volumes": ["/data:/app/data", "/logs:/app/logs:ro"]},
    {"network_mode": "host"},
    {"network_mode": "container:mycontainer"},
    {"ports": [{"container_port": 8080, "host_port": 8080, "protocol": "tcp"}]},
    {"restart_policy": "always"},
    {"env": {"PORT": "8080"}, "volumes": ["/data:/app/data"], "network_mode": "bridge",
     "ports": [{"container_port": 8080}], "restart_policy": "unless-stopped"},
    {"image": "registry.example.com:5000/team/app:v1.2@sha256:" + "a" * 64},
    {"command": ["sh"], "args": ["-c", "true"], "cpu": 500, "memory": 128},
    {"compute_provider": "docker", "unrelated": {"keys": "are ignored, as Go's decoder does"}},
])
def test_landlord_valid_configs(config: Any) -> None:
    """Landlord's valid configs (its validate_test.go) and ours pass."""
    OFFLINE.validate_config(config)


@pytest.mark.parametrize(("config", "problem"), [
    ("{invalid json}", "$: invalid JSON structure"),
    ({"volumes": ["/data"]}, "volumes[0]: invalid format '/data'"),
    ({"volumes": ["/data:relative/path"]}, "volumes[0]: container path must be absolute"),
    ({"volumes": ["/data:/x:sometimes"]}, "volumes[0]: unknown mode 'sometimes'"),
    ({"network_mode": "invalid"}, "network_mode: invalid value 'invalid'"),
    ({"ports": [{"container_port": 0}]},
     "ports[0].container_port: must be between 1 and 65535, got 0"),
    ({"ports": [{"container_port": 80}, {"container_port": 70000}]},
     "ports[1].container_port: must be between 1 and 65535, got 70000"),
    ({"ports": [{"container_port": 8080, "host_port": 70000}]},
     "ports[0].host_port: must be between 1 and 65535, got 70000"),
    ({"ports": [{"container_port": 8080, "protocol": "http"}]},
     "ports[0].protocol: must be 'tcp' or 'udp', got 'http'"),
    ({"ports": [{"container_port": "8080"}]},
     "ports[0].container_port: expected an integer, got '8080'"),
    ({"ports": [{"container_port": 80, "name": "web"}]}, "ports[0]: extra fields found (name)"),
    ({"network_mode": "none", "ports": [{"container_port": 80}]},
     "ports: cannot publish ports with network_mode 'none'"),
    ({"restart_policy": "sometimes"}, "restart_policy: invalid value 'sometimes'"),
    ({"env": {"KEY=VALUE": "test"}}, "env.KEY=VALUE: environment variable name cannot contain '='"),
    ({"env": {"PORT": 8080}}, "env.PORT: expected a string, got int"),
    ({"env": {"DEBUG": True}}, "env.DEBUG: expected a string, got bool"),
    ({"command": "httpd -f"}, "command: expected a list"),
    ({"memory": 2}, "memory: must be 0 (no limit) or at least 6 MB, got 2"),
    ({"image": "Acme/App"}, "image: invalid reference format: repository name must be lowercase"),
    ({"image": "nginx:"}, "image: invalid reference format, got 'nginx:'"),
    ({"image": ""}, "image: image is required"),
])
def test_landlord_invalid_configs(config: Any, problem: str) -> None:
    """Each wrong field is named by its path in the config, with what is wrong."""
    with pytest.raises(InvalidComputeConfigError) as caught:
        OFFLINE.validate_config(config)
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
    assert caught.value.provider == "docker"
    assert not caught.value.retryable


def test_every_problem_is_listed() -> None:
    """All problems are reported at once; `field` is the first one's path."""
    with pytest.raises(InvalidComputeConfigError) as caught:
        OFFLINE.validate_config({
            "ports": [{"container_port": 80}, {"container_port": 70000}],
            "env": {"A": 1},
            "restart_policy": "sometimes",
        })
    assert caught.value.field == "env.A"
    assert caught.value.problems == (
        "env.A: expected a string, got int",
    )  # the converter stops before the semantic checks when a type is wrong
    with pytest.raises(InvalidComputeConfigError) as caught:
        OFFLINE.validate_config({
            "ports": [{"container_port": 80}, {"container_port": 70000}],
            "restart_policy": "sometimes",
        })
    assert caught.value.problems == (
        "ports[1].container_port: must be between 1 and 65535, got 70000",
        "restart_policy: invalid value 'sometimes', must be one of: no, always, on-failure, "
        "unless-stopped",
    )
    assert str(caught.value).startswith("invalid docker compute config: ports[1]")


@pytest.mark.parametrize("image", [
    "Acme/App", "nginx:", "nginx@sha256:short", ":latest", "-nginx",
    "registry:5000/UPPER/app", "nginx:tag with space",
])
async def test_image_references_docker_refuses(
    image: str, docker_daemon: DockerDaemon, docker_client: aiodocker.Docker,
) -> None:
    """What the grammar refuses, Docker refuses too (with the same words)."""
    problem = image_reference_problem(image)
    assert problem is not None
    with pytest.raises(aiodocker.DockerError) as refused:
        await docker_client.containers.create({"Image": image})
    assert refused.value.status == 400
    assert problem.split(":")[0] in refused.value.message


@pytest.mark.parametrize("image", [
    "nginx", "nginx:1.25", "library/nginx:latest", "localhost:5000/a/b:c",
    "[::1]:5000/app", "a__b.c-d/e", "nginx@sha256:" + "0" * 64, "f" * 64,
])
def test_image_references_docker_accepts(image: str) -> None:
    """Docker's own grammar: domains with ports, separators, digests."""
    assert image_reference_problem(image) is None


def spec_with(tenant_id: str = "acme", **config: Any) -> TenantComputeSpec:
    """A handler-shaped spec whose provider_config is `config`."""
    return TenantComputeSpec(
        tenant_id=tenant_id, provider_type="docker", containers=[ContainerSpec(name="app")],
        provider_config=config,
    )


async def test_spec_paths_name_the_spec() -> None:
    """In a spec, paths run from the spec (`provider_config.…`, `containers[0].…`)."""
    with pytest.raises(InvalidComputeConfigError) as caught:
        await OFFLINE.validate(spec_with(ports=[{"container_port": 1}, {"container_port": 70000}]))
    assert caught.value.field == "provider_config.ports[1].container_port"
    bad = TenantComputeSpec(
        tenant_id="Acme_1", provider_type="docker",
        containers=[ContainerSpec(name="app", image="Bad/Image", ports=[
            PortMapping(container_port=99999),
        ])],
        resources=ResourceRequirements(cpu=5),
    )
    with pytest.raises(InvalidComputeConfigError) as caught:
        await OFFLINE.validate(bad)
    assert caught.value.problems == (
        "tenant_id: must match pattern ^[a-z0-9-]+$, got 'Acme_1'",
        "containers[0].ports[0].container_port: must be between 1 and 65535, got 99999",
        "resources.cpu: must be 0 (no limit) or at least 10 millicores, got 5",
    )  # the config's default image wins over the container's, so its image is not checked
    with pytest.raises(InvalidComputeConfigError) as caught:
        await OFFLINE.validate(TenantComputeSpec(tenant_id="acme", provider_type="docker"))
    assert caught.value.problems == (
        "containers: docker provider requires exactly 1 container, got 0",
    )
    with pytest.raises(InvalidComputeConfigError, match="provider_config: must be a JSON object"):
        await OFFLINE.validate(TenantComputeSpec(
            tenant_id="acme", provider_type="docker", containers=[ContainerSpec(name="app")],
            provider_config=["image"],
        ))


def test_landlord_validate_compute_spec() -> None:
    """Landlord's ValidateComputeSpec: every structural problem, by path."""
    spec = TenantComputeSpec(
        tenant_id="acme", provider_type="",
        containers=[ContainerSpec(name="web", image="nginx"), ContainerSpec(name="web")],
        resources=ResourceRequirements(cpu=100, memory=512),
    )
    with pytest.raises(InvalidComputeConfigError) as caught:
        validate_compute_spec(spec)
    assert caught.value.problems == (
        "provider_type: required",
        "containers[1].image: required",
        "containers[1].name: duplicate container name 'web'",
        "resources.cpu: must be at least 128 millicores, got 100",
    )


@pytest.fixture(scope="module")
async def bystander(docker_daemon: DockerDaemon) -> AsyncIterator[tuple[str, str]]:
    """Another tenant's running container (tenant id, container id), for the module."""
    async with create(provider_config(docker_daemon), env={}) as provider:
        tenant = new_tenant()
        made = await provider.provision(busybox_spec(docker_daemon, tenant))
        yield tenant, made.resource_ids["container_id"]
        await provider.destroy(tenant)


@pytest.mark.parametrize(("config", "field"), [
    ({"ports": [{"container_port": 8080}, {"container_port": 70000}]},
     "provider_config.ports[1].container_port"),
    ({"env": {"TOKEN": 12345}}, "provider_config.env.TOKEN"),
    ({"image": "Landlord-Test-Busybox:1"}, "provider_config.image"),
    ({"volumes": ["/etc:/host-etc"]}, "provider_config.volumes[0]"),
    ({"volumes": ["/srv/tenants/../../etc:/data"]}, "provider_config.volumes[0]"),
    ({"volumes": ["named:/data"]}, "provider_config.volumes[0]"),
])
async def test_bad_input_creates_nothing(
    config: dict[str, Any], field: str, bystander: tuple[str, str],
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker,
) -> None:
    """Provision and update refuse a bad config before Docker sees it: nothing is created,
    and another tenant's container stays as it was."""
    other, other_container = bystander
    async with create(
        provider_config(docker_daemon, allowed_volume_roots=["/srv/tenants"]), env={},
    ) as provider:
        tenant = new_tenant()
        with pytest.raises(InvalidComputeConfigError) as caught:
            await provider.provision(busybox_spec(docker_daemon, tenant, **config))
        assert caught.value.field == field
        assert caught.value.tenant_id == tenant
        with pytest.raises(InvalidComputeConfigError):
            await provider.update(other, busybox_spec(docker_daemon, other, **config))
    assert await tenant_containers(docker_client, tenant) == []
    (kept,) = await tenant_containers(docker_client, other)
    assert kept["Id"] == other_container
    assert kept["State"]["Running"]


async def test_volumes_under_allowed_roots_mount(
    docker_daemon: DockerDaemon, docker_client: aiodocker.Docker, tmp_path: Any,
) -> None:
    """A host path under an allowed root is mounted with its mode."""
    (tmp_path / "page.txt").write_text("from the host")
    async with create(
        provider_config(docker_daemon, allowed_volume_roots=[str(tmp_path)]), env={},
    ) as provider:
        tenant = new_tenant()
        await provider.provision(busybox_spec(
            docker_daemon, tenant, volumes=[f"{tmp_path}:/www/host:ro"],
        ))
        (container,) = await tenant_containers(docker_client, tenant)
        assert container["HostConfig"]["Binds"] == [f"{tmp_path}:/www/host:ro"]
        assert json.loads(container["Config"]["Labels"]["landlord.spec"])["volumes"] == [
            f"{tmp_path}:/www/host:ro",
        ]
        await provider.destroy(tenant)


def test_no_config_and_no_defaults_is_valid() -> None:
    """As Landlord's: with neither config nor defaults, the spec's image is relied on; a
    config without an image over no defaults is refused."""
    bare = create({"host": "unix:///nowhere/docker.sock"}, env={})
    bare.validate_config(None)
    bare.validate_config({})
    with pytest.raises(InvalidComputeConfigError, match="image: image is required"):
        bare.validate_config({"env": {"A": "1"}})


def test_docker_provider_is_a_compute_provider() -> None:
    """The schema and defaults come from the config; the class fits the protocol."""
    assert isinstance(OFFLINE, DockerProvider)
    assert OFFLINE.config_defaults() == {"image": "nginx:latest"}
    assert OFFLINE.config_schema()["required"] == ["image"]
