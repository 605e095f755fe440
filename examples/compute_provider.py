"""A compute provider of one's own: each tenant is a JSON file in a folder.

A complete `ComputeProvider` (see docs/compute.md), small enough to read in one go, that
keeps what it made where it makes it (the folder), so it survives a restart of the worker
and a step retried after a crash finds what the first attempt did:

- `provision` writes `<root>/<tenant>.json` (atomically: a crash leaves the old file or
  the new one); the same spec again answers the same; another spec is refused (update it);
- `update` rewrites the file when the config changed and lists what changed, else
  `no_changes`;
- `destroy` removes the file; a tenant that is not there is fine;
- `get_status` reads the file.

Its config (a tenant's `desired_config`): `size` (1-10, default 1) and `owner` (a string).
Settings (`compute.files` in Landlord's config): `root`, the folder (default: `./tenants`).

Use it by naming this module in `LANDLORD_RESTATE_HANDLERS` (it registers itself under
"files"), or from a package of your own through an entry point:

    [project.entry-points."landlord_restate.compute_providers"]
    files = "compute_provider:create"
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from landlord_restate.compute import (
    ComputeState,
    ComputeStatus,
    HealthStatus,
    InvalidComputeConfigError,
    ProvisionResult,
    ProvisionStatus,
    TenantAlreadyProvisionedError,
    TenantComputeSpec,
    TenantNotFoundError,
    UpdateResult,
    UpdateStatus,
    register_factory,
)

NAME = "files"
#: the keys of a tenant's config, and their defaults
DEFAULTS: dict[str, Any] = {"size": 1, "owner": ""}


class FilesProvider:
    """Tenants as JSON files under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def name(self) -> str:
        """The name Landlord selects this provider by."""
        return NAME

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """Write the tenant's file; the same spec again answers what the first wrote."""
        config = self._config(spec)
        existing = await self._read(spec.tenant_id)
        if existing is not None and existing["config"] != config:
            raise TenantAlreadyProvisionedError(spec.tenant_id, provider=NAME)
        if existing is None:
            existing = {"config": config, "created": _now()}
            await self._write(spec.tenant_id, existing)
        return ProvisionResult(
            tenant_id=spec.tenant_id, provider_type=NAME, status=ProvisionStatus.SUCCESS,
            resource_ids={"file": str(self._path(spec.tenant_id))},
            message="tenant file written", provisioned_at=_time(existing["created"]),
        )

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """Rewrite the file with the new config; `no_changes` when it is the same."""
        config = self._config(spec)
        existing = await self._read(tenant_id)
        if existing is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)
        changes = [f"{key} changed" for key in sorted(config)
                   if existing["config"].get(key) != config[key]]
        if changes:
            await self._write(tenant_id, existing | {"config": config})
        return UpdateResult(
            tenant_id=tenant_id, provider_type=NAME,
            status=UpdateStatus.SUCCESS if changes else UpdateStatus.NO_CHANGES,
            changes=changes, message="tenant file updated" if changes else "No changes detected",
            updated_at=datetime.now(UTC),
        )

    async def destroy(self, tenant_id: str) -> None:
        """Remove the file; none is fine (idempotent, as the contract asks)."""
        await asyncio.to_thread(self._path(tenant_id).unlink, missing_ok=True)

    async def get_status(self, tenant_id: str) -> ComputeStatus:
        """Running while the file is there."""
        existing = await self._read(tenant_id)
        if existing is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)
        return ComputeStatus(
            tenant_id=tenant_id, provider_type=NAME, state=ComputeState.RUNNING,
            health=HealthStatus.HEALTHY, last_updated=datetime.now(UTC),
            metadata={"size": str(existing["config"]["size"])},
        )

    async def validate(self, spec: TenantComputeSpec) -> None:
        """The tenant id and config, without writing anything."""
        self._config(spec)

    def validate_config(self, config: Any) -> None:
        """A tenant's config (JSON text or data), every problem named by its field."""
        _checked(json.loads(config) if isinstance(config, str | bytes) else config, "")

    def config_schema(self) -> dict[str, Any]:
        """The JSON Schema of a tenant's config."""
        return {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10},
                           "owner": {"type": "string"}},
        }

    def config_defaults(self) -> dict[str, Any] | None:
        """What a tenant's config starts from."""
        return dict(DEFAULTS)

    async def aclose(self) -> None:
        """Nothing held open."""

    # -- files ----------------------------------------------------------------------------

    def _config(self, spec: TenantComputeSpec) -> dict[str, Any]:
        problems = []
        if not spec.tenant_id or not spec.tenant_id.replace("-", "").isalnum():
            problems.append(f"tenant_id: must be letters, digits and '-', got {spec.tenant_id!r}")
        try:
            config = _checked(spec.provider_config, "provider_config")
        except InvalidComputeConfigError as exc:
            problems += exc.problems
            config = {}
        if problems:
            raise InvalidComputeConfigError(problems, field=problems[0].split(":")[0],
                                            tenant_id=spec.tenant_id, provider=NAME)
        return config

    def _path(self, tenant_id: str) -> Path:
        return self.root / f"{tenant_id}.json"

    async def _read(self, tenant_id: str) -> dict[str, Any] | None:
        try:
            text = await asyncio.to_thread(self._path(tenant_id).read_text)
        except FileNotFoundError:
            return None
        record: dict[str, Any] = json.loads(text)
        return record

    async def _write(self, tenant_id: str, record: dict[str, Any]) -> None:
        def write() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", dir=self.root, delete=False) as out:
                json.dump(record, out)
            os.replace(out.name, self._path(tenant_id))  # atomic: old or new, never half

        await asyncio.to_thread(write)


def _checked(raw: Any, path: str) -> dict[str, Any]:
    """`raw` over the defaults, checked; InvalidComputeConfigError naming each field."""

    def where(key: str) -> str:
        return f"{path}.{key}" if path else key

    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise InvalidComputeConfigError([f"{path or '$'}: must be a JSON object"],
                                        field=path or "$", provider=NAME)
    config = DEFAULTS | {k: v for k, v in raw.items() if k in DEFAULTS}
    problems = []
    size = config["size"]
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 10:
        problems.append(f"{where('size')}: must be a whole number from 1 to 10, got {size!r}")
    if not isinstance(config["owner"], str):
        problems.append(f"{where('owner')}: must be a string, got {config['owner']!r}")
    if problems:
        raise InvalidComputeConfigError(problems, field=problems[0].split(":")[0],
                                        provider=NAME)
    return config


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def create(config: Mapping[str, Any]) -> FilesProvider:
    """The factory (an entry point names it): the `compute.files` section in, a provider
    out, without I/O."""
    root = config.get("root", "tenants")
    if not isinstance(root, str) or not root:
        from landlord_restate.workflow.errors import ConfigError

        raise ConfigError(f"compute.files.root must be a folder, got {root!r}",
                          key="compute.files.root")
    return FilesProvider(Path(root))


# a module named in LANDLORD_RESTATE_HANDLERS is imported by the worker at start: this
# makes "files" a provider there, as an entry point would
register_factory(NAME, create)
