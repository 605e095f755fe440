"""Landlord's docker compute provider, on a real Docker Engine through aiodocker.

One container per tenant, named `landlord-tenant-<tenant>`. Landlord's provider keeps its
tenants in a map and forgets them when it restarts; this one keeps the tenant's state in
Docker: labels on the container record the plan it was made from (`<prefix>.spec`,
`<prefix>.spec_hash`), so every call reads what is there, several providers may share a
daemon, and a call retried after a crash finds what the first attempt left:

- `provision` answers a container that runs the same plan as it is (starting it if it is
  stopped); concurrent provisions of one tenant meet at Docker's name conflict and end with
  one container. Another plan is Landlord's error, "tenant <t> already provisioned".
- `update` replaces the container only when the plan changed: the old one is renamed
  `landlord-tenant-<tenant>-replaced`, the new one is created with the list of changes in a
  label (`<prefix>.changes`), the old one is stopped, the new one started, the old one
  removed last. A retry after a crash part way finds one of these states and finishes the
  same update with the same answer. An update to the plan the container already runs is
  `no_changes`, as in Landlord, also right after an update made it: a retry after a crash
  that had completed the recreate answers `no_changes` too (the container is right).
- `destroy` removes the tenant's containers, found by name and by the `landlord.tenant_id`
  label; nothing to remove is success.

Config (`compute.docker`, Landlord's keys): `host` (else `DOCKER_HOST`, else the default
socket), `network_name` (default "bridge"), `network_driver` (read, unused, as Landlord's),
`label_prefix` (default "landlord"); this project's: `host_ip` (the address published ports
bind to, default "0.0.0.0" as Landlord's), `allowed_volume_roots` (host paths every volume
must lie under; unset: any, as Landlord's), `stop_timeout` (seconds a container gets to stop,
default 10 as Landlord's). Every other key is a default of the tenants' config, merged under
each spec's `provider_config` (Landlord's `Defaults ,remain` and `MergeConfigJSON`).

Errors: a daemon that does not answer is `ComputeUnavailableError` (retryable, naming the
host and where it came from); Docker refusing (4xx, a failed pull) is
`ProvisionFailedError` / `UpdateFailedError` / `ComputeBackendError` carrying Docker's
status and message, retryable only for 5xx. Env values may be secrets: they are never
logged and labels hold only their digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiodocker
import aiohttp
from attrs import field, frozen
from loguru import logger

from landlord_restate.compute._docker_plan import (
    CONFIG_SCHEMA,
    NAME,
    ContainerPlan,
    PlannedPort,
    Planner,
    changes_label,
    check_host_ip,
    container_name,
    describe_changes,
    read_changes,
    read_record,
    replaced_name,
    spec_hash_label,
    tenant_labels,
)
from landlord_restate.compute.errors import (
    ComputeBackendError,
    ComputeError,
    ComputeUnavailableError,
    ProvisionFailedError,
    TenantAlreadyProvisionedError,
    TenantNotFoundError,
    UpdateFailedError,
)
from landlord_restate.compute.metadata import METADATA_OWNER_KEY, METADATA_TENANT_ID_KEY
from landlord_restate.compute.types import (
    ComputeState,
    ComputeStatus,
    ContainerStatus,
    Endpoint,
    HealthStatus,
    JSONValue,
    ProvisionResult,
    ProvisionStatus,
    TenantComputeSpec,
    UpdateResult,
    UpdateStatus,
)
from landlord_restate.compute.validation import Problem, raise_problems
from landlord_restate.workflow.convert import parse_rfc3339
from landlord_restate.workflow.errors import ConfigError

__all__ = ["DockerProvider", "DockerSettings", "create", "read_settings"]

DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_NETWORK_NAME = "bridge"
DEFAULT_LABEL_PREFIX = "landlord"
DEFAULT_HOST_IP = "0.0.0.0"  # noqa: S104 - Landlord's default: published on every address
DEFAULT_STOP_TIMEOUT = 10
#: the provider's own keys of `compute.docker`; every other key is a tenant config default
SETTING_KEYS = frozenset({
    "host", "network_name", "network_driver", "label_prefix", "host_ip",
    "allowed_volume_roots", "stop_timeout",
})
#: how long a call keeps looking again when a concurrent call changes what it finds (a
#: racing create holds the name before the container can be inspected)
_RACE_WINDOW = 30.0
#: requests answer within this (a stop, a removal or a pull may take longer: no read limit)
_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10, sock_read=60)
#: aiodocker's status for a connection it could not make
_NOT_CONNECTED = 900
_HTTP_NOT_FOUND = 404
_HTTP_CONFLICT = 409


@frozen(kw_only=True)
class DockerSettings:
    """The provider's `compute.docker` section, read (Landlord's `DockerProviderConfig`)."""

    #: the Docker API address: unix://, tcp://, http(s):// or ssh://
    host: str = DEFAULT_HOST
    #: where `host` came from: "compute.docker.host", "DOCKER_HOST" or "the default socket"
    host_source: str = "the default socket"
    network_name: str = DEFAULT_NETWORK_NAME
    network_driver: str = "bridge"
    label_prefix: str = DEFAULT_LABEL_PREFIX
    host_ip: str = DEFAULT_HOST_IP
    allowed_volume_roots: tuple[str, ...] | None = None
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    #: defaults of every tenant's config (`image`, `env`, ...)
    defaults: dict[str, Any] = field(factory=dict)


def read_settings(
    config: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> DockerSettings:
    """Read `compute.docker`; a wrong value is a `ConfigError` naming its key. The host is
    `host`, else `DOCKER_HOST` from `env` (default: the process environment), else the
    default socket."""
    env = os.environ if env is None else env

    def text(key: str, default: str) -> str:
        value = config.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise ConfigError(
                f"compute.docker.{key} must be a string, got {value!r}",
                key=f"compute.docker.{key}",
            )
        return value

    host = text("host", "")
    source = "compute.docker.host"
    if not host and env.get("DOCKER_HOST"):
        host, source = env["DOCKER_HOST"], "DOCKER_HOST"
    if not host:
        host, source = DEFAULT_HOST, "the default socket"
    if urlsplit(host).scheme not in ("unix", "tcp", "http", "https", "ssh"):
        raise ConfigError(
            f"Docker host {host!r} (from {source}) needs a scheme: unix://, tcp://, "
            "http(s):// or ssh://", key="compute.docker.host",
        )
    host_ip = text("host_ip", DEFAULT_HOST_IP)
    reason = check_host_ip(host_ip)
    if reason:
        raise ConfigError(f"compute.docker.host_ip {reason}", key="compute.docker.host_ip")
    roots = config.get("allowed_volume_roots")
    if roots is not None and (
        not isinstance(roots, list)
        or not all(isinstance(root, str) and root.startswith("/") for root in roots)
    ):
        raise ConfigError(
            f"compute.docker.allowed_volume_roots must be a list of absolute host paths, "
            f"got {roots!r}", key="compute.docker.allowed_volume_roots",
        )
    stop_timeout = config.get("stop_timeout", DEFAULT_STOP_TIMEOUT)
    if isinstance(stop_timeout, bool) or not isinstance(stop_timeout, int) or stop_timeout < 0:
        raise ConfigError(
            f"compute.docker.stop_timeout must be a whole number of seconds >= 0, got "
            f"{stop_timeout!r}", key="compute.docker.stop_timeout",
        )
    settings = DockerSettings(
        host=host, host_source=source,
        network_name=text("network_name", DEFAULT_NETWORK_NAME),
        network_driver=text("network_driver", "bridge"),
        label_prefix=text("label_prefix", DEFAULT_LABEL_PREFIX),
        host_ip=host_ip,
        allowed_volume_roots=None if roots is None else tuple(roots),
        stop_timeout=stop_timeout,
        defaults={k: v for k, v in config.items() if k not in SETTING_KEYS},
    )
    problems: list[Problem] = []
    _planner(settings).read_config(settings.defaults, "", problems)
    if problems:
        path = problems[0][0]
        key = f"compute.docker.{path}" if path and path != "$" else "compute.docker"
        raise ConfigError(
            "compute.docker defaults: " + "; ".join(f"{p}: {m}" for p, m in problems), key=key,
        )
    return settings


def _planner(settings: DockerSettings) -> Planner:
    return Planner(
        defaults=settings.defaults, network_name=settings.network_name,
        host_ip=settings.host_ip, allowed_volume_roots=settings.allowed_volume_roots,
    )


def create(config: Mapping[str, Any], *, env: Mapping[str, str] | None = None) -> DockerProvider:
    """The entry point: a provider for the `compute.docker` section (no connection yet: the
    first call opens it)."""
    return DockerProvider(read_settings(config, env))


class DockerProvider:
    """Tenants as containers on one Docker Engine; an async context manager owning one
    aiodocker client (one aiohttp session), opened on first use."""

    def __init__(self, settings: DockerSettings | None = None) -> None:
        self.settings = settings or DockerSettings()
        self._planner = _planner(self.settings)
        self._client: aiodocker.Docker | None = None

    @property
    def name(self) -> str:
        """Always "docker"."""
        return NAME

    async def __aenter__(self) -> DockerProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client session; safe to call twice."""
        client, self._client = self._client, None
        if client is not None:
            await client.close()

    # -- the contract ---------------------------------------------------------------------

    async def validate(self, spec: TenantComputeSpec) -> None:
        """Landlord's checks and ours, without Docker: raises `InvalidComputeConfigError`
        whose `field` is the JSON path in the spec (`provider_config.ports[0].host_port`)."""
        self._plan(spec)

    def validate_config(self, config: JSONValue) -> None:
        """Check a tenant's config (JSON text or data) merged over the defaults; the
        problems' paths are relative to the config (`ports[1].container_port`)."""
        problems: list[Problem] = []
        merged = self._planner.merge(config, "", problems)
        # Landlord: neither config nor defaults is valid (the spec may carry the image)
        if merged:
            parsed = self._planner.structure(merged, "", problems)
            if parsed is not None and not parsed.image:
                problems.append(("image", "image is required"))
        raise_problems(problems, provider=NAME)

    def config_schema(self) -> dict[str, Any]:
        """The JSON Schema of a tenant's Docker config."""
        schema: dict[str, Any] = json.loads(json.dumps(CONFIG_SCHEMA))  # the caller's copy
        return schema

    def config_defaults(self) -> dict[str, Any] | None:
        """The defaults of every tenant's config (the extra keys of `compute.docker`)."""
        return dict(self.settings.defaults) or None

    async def ping(self) -> None:
        """Check that the daemon answers; `ComputeUnavailableError` when it does not."""
        with self._docker_errors(None, ComputeBackendError, "answer a ping"):
            await (await self._docker()).version()

    async def provision(self, spec: TenantComputeSpec) -> ProvisionResult:
        """Create and start the tenant's container, or answer the one that runs this plan."""
        plan = self._plan(spec)
        tenant = plan.tenant_id
        log = logger.bind(tenant_id=tenant, provider=NAME)
        async for _ in _attempts():
            info = await self._inspect(plan.container_name, tenant, ProvisionFailedError)
            if info is None:
                replaced = await self._inspect(replaced_name(tenant), tenant, ProvisionFailedError)
                if replaced is not None:  # an update was cut short after the rename
                    self._check_same_plan(replaced, plan)
                    await self._rename(replaced["Id"], plan.container_name, tenant)
                    continue
                await self._ensure_image(plan.image, tenant, ProvisionFailedError)
                created = await self._create(plan, tenant_labels(plan, self._prefix), tenant,
                                             ProvisionFailedError)
                if created is None:  # a concurrent provision made it first: look again
                    continue
                log.bind(container_id=created).info("created container {}", plan.container_name)
                info, made_here = {"Id": created, "State": {"Running": False}}, True
            else:
                self._check_same_plan(info, plan)
                made_here = False
                log.bind(container_id=info["Id"]).debug("container already provisioned")
            if not info["State"].get("Running") and not await self._start(
                info["Id"], tenant, ProvisionFailedError, remove_on_failure=made_here,
            ):
                continue  # removed under us (a failed concurrent start): look again
            running = await self._inspect(info["Id"], tenant, ProvisionFailedError)
            if running is None:
                continue
            log.bind(container_id=running["Id"]).info("container provisioned")
            return ProvisionResult(
                tenant_id=tenant, provider_type=NAME, status=ProvisionStatus.SUCCESS,
                resource_ids={"container_id": running["Id"]},
                endpoints=self._endpoints(plan.ports, running),
                message="Container provisioned successfully",
                provisioned_at=_docker_time(running.get("Created")),
            )
        raise ComputeError(
            f"tenant {tenant}: its container kept changing during provision (racing calls)",
            tenant_id=tenant, provider=NAME, retryable=True,
        )

    async def update(self, tenant_id: str, spec: TenantComputeSpec) -> UpdateResult:
        """Bring the tenant's container to the spec's plan (see the module docstring for
        how a crash part way is finished by a retry)."""
        plan = self._plan(spec, tenant_id)
        log = logger.bind(tenant_id=tenant_id, provider=NAME)
        main_name, old_name = plan.container_name, replaced_name(tenant_id)
        async for _ in _attempts():
            main = await self._inspect(main_name, tenant_id, UpdateFailedError)
            old = await self._inspect(old_name, tenant_id, UpdateFailedError)
            if main is None and old is None:
                raise TenantNotFoundError(tenant_id, provider=NAME)
            for info in (main, old):
                if info is not None and _labels(info).get(METADATA_TENANT_ID_KEY) != tenant_id:
                    raise ComputeError(
                        f"container {info.get('Name', '').lstrip('/')} is not one Landlord "
                        f"made for tenant {tenant_id}; it is left alone", tenant_id=tenant_id,
                        provider=NAME,
                    )
            if main is not None and old is not None and self._hash(main) != plan.digest():
                # an earlier update was cut short and this one asks for another plan: the
                # container that runs is the one to start from, the other one goes
                running = main["State"].get("Running")
                await self._remove(old["Id"] if running else main["Id"], tenant_id)
                continue
            if old is None:
                assert main is not None
                if self._hash(main) == plan.digest():
                    # Landlord's answer for the spec it runs, also right after an update
                    # made it (a retry after a crash that completed the recreate too: the
                    # container is right either way)
                    return UpdateResult(
                        tenant_id=tenant_id, provider_type=NAME,
                        status=UpdateStatus.NO_CHANGES, changes=[],
                        message="No changes detected", updated_at=_now(),
                    )
                changes = describe_changes(read_record(_labels(main), self._prefix), plan)
                await self._ensure_image(plan.image, tenant_id, UpdateFailedError)
                if not await self._rename(main["Id"], old_name, tenant_id):
                    continue
                log.bind(container_id=main["Id"]).info("replacing container: {}", changes)
                old, main = main, None
            elif main is not None:
                changes = read_changes(_labels(main), self._prefix) or describe_changes(
                    read_record(_labels(old), self._prefix), plan,
                )
            elif self._hash(old) == plan.digest():
                # cut short after the rename, and asked now for the plan it already ran
                await self._restore(old["Id"], main_name, tenant_id)
                continue
            else:
                changes = describe_changes(read_record(_labels(old), self._prefix), plan)
            if main is None:
                try:
                    await self._ensure_image(plan.image, tenant_id, UpdateFailedError)
                    labels = tenant_labels(plan, self._prefix) | {
                        changes_label(self._prefix): json.dumps(changes),
                    }
                    created = await self._create(plan, labels, tenant_id, UpdateFailedError)
                except ComputeBackendError:
                    await self._restore(old["Id"], main_name, tenant_id)
                    raise
                if created is None:
                    continue
                main = {"Id": created, "State": {"Running": False}}
            await self._stop(old["Id"], tenant_id)
            if not main["State"].get("Running"):
                try:
                    started = await self._start(
                        main["Id"], tenant_id, UpdateFailedError, remove_on_failure=True,
                    )
                except ComputeBackendError:
                    await self._restore(old["Id"], main_name, tenant_id)
                    raise
                if not started:
                    continue
            await self._remove(old["Id"], tenant_id)
            new = await self._inspect(main["Id"], tenant_id, UpdateFailedError)
            if new is None:
                continue
            log.bind(container_id=new["Id"]).info("container updated: {}", changes)
            return self._updated(tenant_id, changes, new)
        raise ComputeError(
            f"tenant {tenant_id}: its containers kept changing during update (racing calls)",
            tenant_id=tenant_id, provider=NAME, retryable=True,
        )

    async def destroy(self, tenant_id: str) -> None:
        """Stop and remove every container of the tenant; none is success."""
        log = logger.bind(tenant_id=tenant_id, provider=NAME)
        ids: list[str] = []
        for name in (container_name(tenant_id), replaced_name(tenant_id)):
            info = await self._inspect(name, tenant_id, ComputeBackendError)
            if info is not None:
                ids.append(info["Id"])
        docker = await self._docker()
        with self._docker_errors(tenant_id, ComputeBackendError, "list containers"):
            labelled = await docker.containers.list(all=True, filters={"label": [
                f"{METADATA_TENANT_ID_KEY}={tenant_id}", f"{METADATA_OWNER_KEY}=landlord",
            ]})
        ids += [c.id for c in labelled if c.id not in ids]
        for container_id in ids:
            await self._stop(container_id, tenant_id)
            await self._remove(container_id, tenant_id)
            log.bind(container_id=container_id).info("container destroyed")

    async def get_status(self, tenant_id: str) -> ComputeStatus:
        """The tenant's container as Docker sees it now (the old one mid-update)."""
        info = await self._inspect(container_name(tenant_id), tenant_id, ComputeBackendError)
        if info is None:
            info = await self._inspect(replaced_name(tenant_id), tenant_id, ComputeBackendError)
        if info is None:
            raise TenantNotFoundError(tenant_id, provider=NAME)
        return _status(tenant_id, info)

    # -- plans and answers ----------------------------------------------------------------

    @property
    def _prefix(self) -> str:
        return self.settings.label_prefix

    def _plan(self, spec: TenantComputeSpec, tenant_id: str | None = None) -> ContainerPlan:
        plan, problems = self._planner.plan(spec, tenant_id)
        raise_problems(problems, tenant_id=tenant_id or spec.tenant_id, provider=NAME)
        assert plan is not None
        return plan

    def _hash(self, info: Mapping[str, Any]) -> str | None:
        return _labels(info).get(spec_hash_label(self._prefix))

    def _check_same_plan(self, info: Mapping[str, Any], plan: ContainerPlan) -> None:
        labels = _labels(info)
        if labels.get(METADATA_TENANT_ID_KEY) != plan.tenant_id:
            raise TenantAlreadyProvisionedError(
                plan.tenant_id, provider=NAME,
                message=f"container name {plan.container_name} is taken by a container "
                "Landlord did not make",
            )
        if self._hash(info) != plan.digest():
            raise TenantAlreadyProvisionedError(plan.tenant_id, provider=NAME)

    def _updated(self, tenant_id: str, changes: list[str], info: Mapping[str, Any]) -> UpdateResult:
        return UpdateResult(
            tenant_id=tenant_id, provider_type=NAME, status=UpdateStatus.SUCCESS,
            changes=list(changes), message="Container updated successfully",
            updated_at=_docker_time(info.get("Created")),
        )

    def _endpoints(
        self, ports: tuple[PlannedPort, ...], info: Mapping[str, Any]
    ) -> list[Endpoint]:
        published = (info.get("NetworkSettings") or {}).get("Ports") or {}
        network_mode = (info.get("HostConfig") or {}).get("NetworkMode", "")
        endpoints = []
        for port in ports:
            bindings = published.get(port.key) or []
            binding = next(
                (b for b in bindings if b.get("HostIp") == port.host_ip),
                bindings[0] if bindings else None,
            )
            if binding is not None and binding.get("HostPort"):
                address, number = self._address(binding.get("HostIp", "")), int(binding["HostPort"])
            elif network_mode == "host":
                address, number = self._address(port.host_ip), port.container_port
            elif port.host_port:
                address, number = self._address(port.host_ip), port.host_port
            else:
                continue
            host = f"[{address}]" if ":" in address else address
            endpoints.append(Endpoint(
                type=port.name or port.protocol, address=address, port=number,
                url=f"{port.protocol}://{host}:{number}",
            ))
        return endpoints

    def _address(self, host_ip: str) -> str:
        """Where a port published on `host_ip` is reached: that address, or for every
        address ("0.0.0.0") the daemon's host (localhost for a local socket)."""
        if host_ip not in ("", "0.0.0.0", "::"):  # noqa: S104 - comparing, not binding
            return host_ip
        parts = urlsplit(self.settings.host)
        if parts.scheme in ("tcp", "http", "https", "ssh") and parts.hostname:
            return parts.hostname
        return "localhost"

    # -- Docker calls ---------------------------------------------------------------------

    async def _docker(self) -> aiodocker.Docker:
        if self._client is None:
            self._client = aiodocker.Docker(url=self.settings.host, timeout=_TIMEOUT)
        return self._client

    @contextlib.contextmanager
    def _docker_errors(
        self, tenant_id: str | None, failure: type[ComputeBackendError], doing: str
    ) -> Iterator[None]:
        """Docker's failures as compute errors: not answering is retryable and names the
        host; a refusal carries Docker's status and message."""
        host = f"{self.settings.host} (from {self.settings.host_source})"
        try:
            yield
        except aiodocker.DockerError as exc:
            if exc.status == _NOT_CONNECTED:
                raise ComputeUnavailableError(
                    f"Docker daemon at {host} does not answer: {exc.message}; check that "
                    "dockerd runs there, or set compute.docker.host or DOCKER_HOST",
                    host=self.settings.host, tenant_id=tenant_id, provider=NAME,
                ) from exc
            raise failure(
                f"Docker refused to {doing}: {exc.message}", status=exc.status,
                backend_message=exc.message, tenant_id=tenant_id, provider=NAME,
            ) from exc
        except TimeoutError as exc:
            raise ComputeUnavailableError(
                f"Docker daemon at {host} did not answer in time while trying to {doing}",
                host=self.settings.host, tenant_id=tenant_id, provider=NAME,
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise ComputeUnavailableError(
                f"Docker daemon at {host} does not answer: {exc}",
                host=self.settings.host, tenant_id=tenant_id, provider=NAME,
            ) from exc

    async def _inspect(
        self, ref: str, tenant_id: str, failure: type[ComputeBackendError]
    ) -> dict[str, Any] | None:
        """The container's inspect data, or None when there is none by that name or id."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, failure, f"inspect container {ref}"):
                return await docker.containers.container(ref).show()
        except ComputeBackendError as exc:
            if exc.status == _HTTP_NOT_FOUND:
                return None
            raise

    async def _ensure_image(
        self, image: str, tenant_id: str, failure: type[ComputeBackendError]
    ) -> None:
        """The image locally; one pull when it is not (a failed pull is not retryable)."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, failure, f"inspect image {image}"):
                await docker.images.inspect(image)
        except ComputeBackendError as exc:
            if exc.status != _HTTP_NOT_FOUND:
                raise
        else:
            return
        logger.bind(tenant_id=tenant_id, provider=NAME).info("pulling image {}", image)
        try:
            with self._docker_errors(tenant_id, failure, f"pull image {image}"):
                await docker.images.pull(image)
        except ComputeBackendError as exc:
            raise failure(
                f"image {image} is not on the Docker host and pulling it failed: "
                f"{exc.backend_message}", status=exc.status, backend_message=exc.backend_message,
                tenant_id=tenant_id, provider=NAME, retryable=False,
            ) from exc

    async def _create(
        self,
        plan: ContainerPlan,
        labels: Mapping[str, str],
        tenant_id: str,
        failure: type[ComputeBackendError],
    ) -> str | None:
        """Create the tenant's container; None when the name is taken (a racing call)."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, failure, f"create container {plan.container_name}"):
                container = await docker.containers.create(
                    plan.container_config(labels=labels), name=plan.container_name,
                )
        except ComputeBackendError as exc:
            if exc.status == _HTTP_CONFLICT:
                return None
            raise
        return container.id

    async def _start(
        self,
        container_id: str,
        tenant_id: str,
        failure: type[ComputeBackendError],
        *,
        remove_on_failure: bool,
    ) -> bool:
        """Start the container (already running is fine); False when it is gone. When
        Docker refuses (a bad command, a taken port), a container this call made is removed:
        nothing stays half made."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, failure, "start the container"):
                await docker.containers.container(container_id).start()
        except ComputeBackendError as exc:
            if exc.status == _HTTP_NOT_FOUND:
                return False
            if remove_on_failure:
                await self._remove(container_id, tenant_id)
            raise
        return True

    async def _stop(self, container_id: str, tenant_id: str) -> None:
        """Stop within `stop_timeout` (then Docker kills it); stopped or gone is fine."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, ComputeBackendError, "stop the container"):
                await docker.containers.container(container_id).stop(t=self.settings.stop_timeout)
        except ComputeBackendError as exc:
            if exc.status != _HTTP_NOT_FOUND:
                raise

    async def _remove(self, container_id: str, tenant_id: str) -> None:
        """Remove (killing it if it still runs); gone already is fine."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, ComputeBackendError, "remove the container"):
                await docker.containers.container(container_id).delete(force=True)
        except ComputeBackendError as exc:
            if exc.status != _HTTP_NOT_FOUND:
                raise

    async def _rename(self, container_id: str, new_name: str, tenant_id: str) -> bool:
        """Rename; False when the name is taken or the container gone (a racing call)."""
        docker = await self._docker()
        try:
            with self._docker_errors(tenant_id, UpdateFailedError, f"rename to {new_name}"):
                container = docker.containers.container(container_id)
                await container.rename(new_name)
        except ComputeBackendError as exc:
            if exc.status in (_HTTP_NOT_FOUND, _HTTP_CONFLICT):
                return False
            raise
        return True

    async def _restore(self, old_id: str, main_name: str, tenant_id: str) -> None:
        """After a failed replacement: the new container goes, the old one gets its name
        back and runs again. Best effort: a retry of the update finishes what is left."""
        try:
            new = await self._inspect(main_name, tenant_id, UpdateFailedError)
            if new is not None and new["Id"] != old_id:
                await self._remove(new["Id"], tenant_id)
            if await self._rename(old_id, main_name, tenant_id):
                await self._start(old_id, tenant_id, UpdateFailedError, remove_on_failure=False)
        except ComputeError as exc:
            logger.bind(tenant_id=tenant_id, provider=NAME, container_id=old_id).warning(
                "could not restore the old container after a failed update: {}", exc.message,
            )


async def _attempts() -> AsyncIterator[int]:
    """Attempt numbers for a call that looks again when a racing call changed what it found:
    the first at once, then after growing pauses, within `_RACE_WINDOW`."""
    deadline = time.monotonic() + _RACE_WINDOW
    attempt, pause = 0, 0.02
    while True:
        yield attempt
        attempt += 1
        if time.monotonic() + pause > deadline:
            return
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)


def _labels(info: Mapping[str, Any]) -> dict[str, str]:
    return dict((info.get("Config") or {}).get("Labels") or {})


def _now() -> datetime:
    return datetime.now(UTC)


def _docker_time(value: Any) -> datetime:
    """Docker's RFC 3339 time with nanoseconds; now when absent."""
    if isinstance(value, str) and value and not value.startswith("0001-"):
        with contextlib.suppress(ValueError):
            return parse_rfc3339(value)
    return _now()


def _status(tenant_id: str, info: Mapping[str, Any]) -> ComputeStatus:
    """Docker's container state and health in Landlord's words."""
    state = info.get("State") or {}
    docker_status = str(state.get("Status", ""))
    running = bool(state.get("Running"))
    health = (state.get("Health") or {}).get("Status")
    if running:
        compute_state, container_state = ComputeState.RUNNING, "running"
    elif docker_status in ("exited", "dead"):
        compute_state, container_state = ComputeState.STOPPED, "stopped"
    elif docker_status == "restarting":
        compute_state, container_state = ComputeState.STARTING, "unknown"
    elif docker_status == "removing":
        compute_state, container_state = ComputeState.STOPPING, "unknown"
    else:  # created, paused
        compute_state, container_state = ComputeState.UNKNOWN, "unknown"
    if not running:
        overall = HealthStatus.UNKNOWN
    elif health is None:
        overall = HealthStatus.HEALTHY
    else:
        overall = {
            "healthy": HealthStatus.HEALTHY, "unhealthy": HealthStatus.UNHEALTHY,
        }.get(health, HealthStatus.UNKNOWN)
    message = docker_status
    if docker_status in ("exited", "dead"):
        message += f" (exit code {state.get('ExitCode', 0)})"
    if state.get("Error"):
        message += f": {state['Error']}"
    if health is not None:
        message += f", health {health}"
    metadata = {
        "container_id": str(info.get("Id", "")),
        "image": str((info.get("Config") or {}).get("Image", "")),
        "docker_state": docker_status,
    }
    if health is not None:
        metadata["docker_health"] = str(health)
    return ComputeStatus(
        tenant_id=tenant_id, provider_type=NAME, state=compute_state,
        containers=[ContainerStatus(
            name=str(info.get("Name", "")).lstrip("/"), state=container_state,
            ready=running and overall is HealthStatus.HEALTHY,
            restart_count=int(info.get("RestartCount") or 0), message=message,
        )],
        health=overall, last_updated=_now(), metadata=metadata,
    )

