"""Compute providers for test deployments, registered on import (name this module in
LANDLORD_RESTATE_HANDLERS): what `register_factory` is for.

- `alpha`, `beta`, `gamma`, `delta`: Landlord's mock under another name, so a test sees
  which provider a request resolved to (`provider_type` of the output).
- `slow-docker`: the docker provider, whose provision of a tenant whose desired config asks
  for it (`delay_seconds`) waits that long after Docker made the container (or until the
  `release` file of its section exists), so a test can kill the worker while the step is
  in flight. Every provision call appends a line to the
  `marks` file of its section: `provision <tenant>` before Docker, `provisioned <tenant>
  <container id>` after.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from landlord_restate.compute import (
    ContainerSpec,
    MockProvider,
    ProvisionResult,
    TenantComputeSpec,
    UpdateResult,
    register_factory,
)
from landlord_restate.compute.docker import DockerProvider
from landlord_restate.compute.docker import create as create_docker

NAMES = ("alpha", "beta", "gamma", "delta")


class NamedMock(MockProvider):
    """Landlord's mock, answering under its own name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name

    @property
    def name(self) -> str:
        """The name it was made under."""
        return self._name

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """The mock's provision, its result naming this provider."""
        return attrs.evolve(await super().provision(spec), provider_type=self._name)

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """The mock's update, its result naming this provider."""
        return attrs.evolve(await super().update(tenant_id, spec), provider_type=self._name)


def _named(name: str) -> Any:
    def create(config: Mapping[str, Any]) -> NamedMock:
        return NamedMock(name)

    create.__qualname__ = f"create_{name}"
    return create


for _name in NAMES:
    register_factory(_name, _named(_name))


class SlowDocker:
    """The docker provider under the name `slow-docker`, slow where a tenant asks."""

    def __init__(self, inner: DockerProvider, marks: Path, release: Path | None = None) -> None:
        self.inner = inner
        self.marks = marks
        #: once this file exists, no provision waits any more
        self.release = release

    @property
    def name(self) -> str:
        """Always "slow-docker"."""
        return "slow-docker"

    def _docker_spec(self, spec: TenantComputeSpec) -> TenantComputeSpec:
        # Landlord's handler gives a docker spec one container named "app"; this name is
        # not "docker", so this wrapper does
        return attrs.evolve(spec, provider_type="docker", containers=[ContainerSpec(name="app")])

    def _mark(self, line: str) -> None:
        with self.marks.open("a") as out:
            out.write(line + "\n")

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """Docker's provision, then the tenant's delay."""
        self._mark(f"provision {spec.tenant_id}")
        result = await self.inner.provision(self._docker_spec(spec))
        self._mark(f"provisioned {spec.tenant_id} {result.resource_ids['container_id']}")
        config = spec.provider_config if isinstance(spec.provider_config, dict) else {}
        for _ in range(int(float(config.get("delay_seconds", 0)) / 0.05)):
            if self.release is not None and self.release.exists():
                break
            await asyncio.sleep(0.05)
        return result

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """Docker's update."""
        return await self.inner.update(tenant_id, self._docker_spec(spec))

    async def destroy(self, tenant_id: str) -> None:
        """Docker's destroy."""
        await self.inner.destroy(tenant_id)

    async def get_status(self, tenant_id: str) -> Any:
        """Docker's status."""
        return await self.inner.get_status(tenant_id)

    async def validate(self, spec: TenantComputeSpec) -> None:
        """Docker's checks."""
        await self.inner.validate(self._docker_spec(spec))

    def validate_config(self, config: Any) -> None:
        """Docker's checks of a config."""
        self.inner.validate_config(config)

    def config_schema(self) -> dict[str, Any]:
        """Docker's schema."""
        return self.inner.config_schema()

    def config_defaults(self) -> dict[str, Any] | None:
        """Docker's defaults."""
        return self.inner.config_defaults()

    async def aclose(self) -> None:
        """Close Docker's client."""
        await self.inner.aclose()


def create_slow_docker(config: Mapping[str, Any]) -> SlowDocker:
    """`compute.slow-docker`: docker's section plus `marks` and `release` (file paths)."""
    docker_section = {k: v for k, v in config.items() if k not in ("marks", "release")}
    release = config.get("release")
    return SlowDocker(create_docker(docker_section, env={}), Path(str(config["marks"])),
                      Path(str(release)) if release else None)


register_factory("slow-docker", create_slow_docker)
