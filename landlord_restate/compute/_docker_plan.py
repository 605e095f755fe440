"""What a tenant's compute spec means for Docker: the config, its checks, the container plan.

No Docker calls here (that is `docker.py`): this module reads Landlord's
`DockerComputeConfig` from `spec.provider_config` over the provider's defaults, checks it
(Landlord's `ValidateConfig` and `validation.go`, plus Docker's image reference grammar,
string env values and allowed volume roots), and turns the result into a `ContainerPlan`:
the container to create, the labels that record it, and the words for what changed since
another plan.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from attrs import field, frozen

from landlord_restate.compute.config_merge import merge_config
from landlord_restate.compute.metadata import default_metadata, merge_labels
from landlord_restate.compute.types import ContainerSpec, HealthCheckConfig, TenantComputeSpec
from landlord_restate.compute.validation import (
    Problem,
    container_problems,
    join_path,
    port_problems,
    tenant_id_problems,
)
from landlord_restate.workflow.convert import (
    converter,
    register_go_type,
    structure_problems,
)

NAME = "docker"
#: Landlord names a tenant's container `landlord-tenant-<tenant>` (its fixed label prefix)
CONTAINER_NAME_PREFIX = "landlord-tenant-"
#: the name an update moves the old container to until the new one runs
REPLACED_SUFFIX = "-replaced"
DEFAULT_RESTART_POLICY = "unless-stopped"
RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
NETWORK_MODES = ("bridge", "host", "none")
#: bind-mount options Docker accepts after the container path
VOLUME_OPTIONS = frozenset({
    "ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated",
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
})
#: Docker's floors: 0.01 CPU (`NanoCpus`), 6 MB of memory
MIN_CPU_MILLICORES = 10
MIN_MEMORY_MB = 6
#: bumped when the plan's meaning changes, so older containers read as changed
PLAN_VERSION = 1


@frozen(kw_only=True)
class DockerPortConfig:
    """One published port of Landlord's `DockerComputeConfig` (`PortConfig`)."""

    container_port: int
    #: 0: Docker picks a free port
    host_port: int = 0
    #: "tcp" (the default) or "udp"
    protocol: str = ""


@frozen(kw_only=True)
class DockerComputeConfig:
    """A tenant's Docker config: Landlord's `DockerComputeConfig`, with extensions.

    Landlord's fields: `image`, `env`, `volumes` ("host:container[:options]"),
    `network_mode` (bridge, host, none, container:<name>), `ports`, `restart_policy`
    (no, always, on-failure, unless-stopped), `labels`.

    Extensions of this project (Landlord's handler never fills `ContainerSpec`, and a
    busybox needs a command): `command` and `args` (the container's command line is
    command + args, as Landlord joins them), `cpu` in millicores and `memory` in MB (over
    the spec's `resources`).
    """

    image: str = ""
    env: dict[str, str] = field(factory=dict)
    volumes: list[str] = field(factory=list)
    network_mode: str = ""
    ports: list[DockerPortConfig] = field(factory=list)
    restart_policy: str = ""
    labels: dict[str, str] = field(factory=dict)
    command: list[str] = field(factory=list)
    args: list[str] = field(factory=list)
    cpu: int = 0
    memory: int = 0


# Landlord's schema refuses unknown keys in a port and allows them in the config: a
# tenant's desired_config carries keys of other layers (compute_provider, ...)
register_go_type(DockerPortConfig, omit_empty=("host_port", "protocol"))
register_go_type(
    DockerComputeConfig,
    omit_empty=(
        "image", "env", "volumes", "network_mode", "ports", "restart_policy", "labels",
        "command", "args", "cpu", "memory",
    ),
    forbid_extra_keys=False,
)

#: the JSON Schema of the config (Landlord's, plus this project's extensions)
CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "image": {"type": "string"},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "volumes": {"type": "array", "items": {"type": "string"}},
        "network_mode": {"type": "string"},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "container_port": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "host_port": {"type": "integer", "minimum": 0, "maximum": 65535},
                    "protocol": {"type": "string", "enum": ["tcp", "udp"]},
                },
                "required": ["container_port"],
                "additionalProperties": False,
            },
        },
        "restart_policy": {"type": "string", "enum": list(RESTART_POLICIES)},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "command": {"type": "array", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "cpu": {"type": "integer", "minimum": 0, "description": "millicores"},
        "memory": {"type": "integer", "minimum": 0, "description": "MB"},
    },
    "required": ["image"],
    "additionalProperties": True,
}


# Docker's reference grammar (distribution/reference, regexp.go), ASCII as Go's regexps
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?")
_NAME_TOTAL_LENGTH_MAX = 255
#: a named volume (a host part that is no path), as Docker's local driver accepts it
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")


def image_reference_problem(image: str) -> str | None:
    """What Docker would say of `image` as a reference (its own words), or None if valid.
    (64 hex digits pass: Docker reads them as an image id when it creates a container.)"""
    match = _REFERENCE.fullmatch(image)
    if match is None:
        if _REFERENCE.fullmatch(image.lower()) is not None:
            return "invalid reference format: repository name must be lowercase"
        return "invalid reference format"
    name = match.group(1)
    if len(name) > _NAME_TOTAL_LENGTH_MAX:
        return f"repository name must not be more than {_NAME_TOTAL_LENGTH_MAX} characters"
    return None


@frozen(kw_only=True)
class PlannedPort:
    """A port to publish: container port and protocol, host address and port (0: any)."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int
    #: Landlord's port name, used as the endpoint type when set
    name: str = ""

    @property
    def key(self) -> str:
        """Docker's name of the port: "8080/tcp"."""
        return f"{self.container_port}/{self.protocol}"


@frozen(kw_only=True)
class ContainerPlan:
    """Everything the tenant's container is made of, after defaults and overrides."""

    tenant_id: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: dict[str, str]
    ports: tuple[PlannedPort, ...]
    volumes: tuple[str, ...]
    #: Docker's network mode: bridge, host, none, container:<name> or a network name
    network_mode: str
    restart_policy: str
    #: the spec's and the config's labels (Landlord's metadata and ours are added on top)
    labels: dict[str, str]
    cpu: int
    memory: int
    #: Docker's `Healthcheck` object, for an exec health check
    health_check: dict[str, Any] | None

    @property
    def container_name(self) -> str:
        """`landlord-tenant-<tenant>`."""
        return container_name(self.tenant_id)

    def record(self) -> dict[str, Any]:
        """The plan as stored in a label: env values only as a digest (they may be
        secrets, and a label is shown to anyone who may inspect the container)."""
        return {
            "version": PLAN_VERSION,
            "image": self.image,
            "command": list(self.command),
            "args": list(self.args),
            "env": {"names": sorted(self.env), "sha256": _digest(self.env)},
            "ports": [
                {"container_port": p.container_port, "protocol": p.protocol,
                 "host_ip": p.host_ip, "host_port": p.host_port}
                for p in self.ports
            ],
            "volumes": list(self.volumes),
            "network_mode": self.network_mode,
            "restart_policy": self.restart_policy,
            "labels": dict(sorted(self.labels.items())),
            "cpu": self.cpu,
            "memory": self.memory,
            "health_check": self.health_check,
        }

    def digest(self) -> str:
        """sha256 of the whole plan, env values included: equal digests, same container."""
        return _digest(self.record() | {"env": dict(sorted(self.env.items()))})

    def container_config(
        self, *, labels: Mapping[str, str]
    ) -> dict[str, Any]:
        """The body of Docker's `POST /containers/create`."""
        bindings: dict[str, list[dict[str, str]]] = {}
        for port in self.ports:
            bindings.setdefault(port.key, []).append(
                {"HostIp": port.host_ip, "HostPort": str(port.host_port)}
            )
        host_config: dict[str, Any] = {
            "PortBindings": bindings,
            "RestartPolicy": {"Name": self.restart_policy, "MaximumRetryCount": 0},
            "NetworkMode": self.network_mode,
        }
        if self.volumes:
            host_config["Binds"] = list(self.volumes)
        if self.cpu:
            host_config["NanoCpus"] = self.cpu * 1_000_000  # millicores -> 1e-9 CPUs
        if self.memory:
            host_config["Memory"] = self.memory * 1024 * 1024
        config: dict[str, Any] = {
            "Image": self.image,
            "Env": [f"{key}={value}" for key, value in sorted(self.env.items())],
            "Labels": dict(labels),
            "ExposedPorts": {key: {} for key in bindings},
            "HostConfig": host_config,
        }
        if self.command or self.args:
            config["Cmd"] = [*self.command, *self.args]
        if self.health_check is not None:
            config["Healthcheck"] = self.health_check
        return config


def container_name(tenant_id: str) -> str:
    """The tenant's container: `landlord-tenant-<tenant>`."""
    return f"{CONTAINER_NAME_PREFIX}{tenant_id}"


def replaced_name(tenant_id: str) -> str:
    """Where an update keeps the tenant's old container until the new one runs."""
    return container_name(tenant_id) + REPLACED_SUFFIX


def _digest(value: Any) -> str:
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: what changed, in Landlord's words, by the field of the plan's record
_CHANGE_WORDS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("image",), "container image changed"),
    (("command", "args"), "container command changed"),
    (("env",), "environment variables changed"),
    (("ports",), "port mappings changed"),
    (("volumes",), "volumes changed"),
    (("network_mode",), "network mode changed"),
    (("restart_policy",), "restart policy changed"),
    (("labels",), "labels changed"),
    (("cpu", "memory"), "resource limits changed"),
    (("health_check",), "health check changed"),
)


def describe_changes(old_record: Mapping[str, Any] | None, new: ContainerPlan) -> list[str]:
    """What differs between a stored plan record and `new`, in words like Landlord's
    ("container image changed", "environment variables changed", ...)."""
    new_record = new.record()
    if old_record is None or old_record.get("version") != PLAN_VERSION:
        return ["provider config changed"]
    return [
        words for keys, words in _CHANGE_WORDS
        if any(old_record.get(key) != new_record[key] for key in keys)
    ]


class Planner:
    """Turns specs and configs into plans for one provider's settings."""

    def __init__(
        self,
        *,
        defaults: Mapping[str, Any],
        network_name: str,
        host_ip: str,
        allowed_volume_roots: Sequence[str] | None,
    ) -> None:
        self.defaults = dict(defaults)
        self.network_name = network_name
        self.host_ip = host_ip
        self.allowed_volume_roots = (
            None if allowed_volume_roots is None
            else tuple(posixpath.normpath(root) for root in allowed_volume_roots)
        )

    def merge(self, raw: Any, path: str, problems: list[Problem]) -> dict[str, Any] | None:
        """`raw` (a JSON object, JSON text, or None) over the defaults (Landlord's
        `MergeConfigJSON`); None, with the reason in `problems`, when it is no object."""
        if isinstance(raw, bytes | str):
            try:
                raw = json.loads(raw) if raw.strip() else None
            except ValueError as exc:
                problems.append((path or "$", f"invalid JSON structure: {exc}"))
                return None
        if raw is not None and not isinstance(raw, Mapping):
            problems.append((path or "$", f"must be a JSON object, got {type(raw).__name__}"))
            return None
        return merge_config(self.defaults, raw)

    def read_config(
        self, raw: Any, path: str, problems: list[Problem]
    ) -> DockerComputeConfig | None:
        """`raw` over the defaults, structured and checked; what is wrong goes to
        `problems` under `path`."""
        merged = self.merge(raw, path, problems)
        return None if merged is None else self.structure(merged, path, problems)

    def structure(
        self, merged: Mapping[str, Any], path: str, problems: list[Problem]
    ) -> DockerComputeConfig | None:
        """A merged config as `DockerComputeConfig`, checked."""
        try:
            config: DockerComputeConfig = converter.structure(merged, DockerComputeConfig)
        except Exception as exc:
            problems += [
                (join_path(path, where) if where else (path or "$"), message)
                for where, message in structure_problems(exc)
            ]
            return None
        problems += self.config_problems(config, path)
        return config

    def config_problems(self, config: DockerComputeConfig, path: str) -> list[Problem]:
        """Landlord's `ValidateConfig` checks, and ours, of a structured config."""
        problems: list[Problem] = []

        def at(child: str) -> str:
            return join_path(path, child)

        if config.image:
            reason = image_reference_problem(config.image)
            if reason:
                problems.append((at("image"), f"{reason}, got {config.image!r}"))
        problems += env_problems(config.env, at("env"))
        for i, volume in enumerate(config.volumes):
            problems += self.volume_problems(volume, at(f"volumes[{i}]"))
        mode = config.network_mode
        if mode and mode not in NETWORK_MODES and not (
            mode.startswith("container:") and len(mode) > len("container:")
        ):
            problems.append((
                at("network_mode"),
                f"invalid value {mode!r}, must be one of: bridge, host, none, or "
                "container:<name>",
            ))
        if config.ports and (mode == "none" or mode.startswith("container:")):
            problems.append((
                at("ports"), f"cannot publish ports with network_mode {mode!r}",
            ))
        for i, port in enumerate(config.ports):
            problems += port_problems(
                port.container_port, port.host_port, port.protocol, at(f"ports[{i}]"),
            )
        if config.restart_policy and config.restart_policy not in RESTART_POLICIES:
            problems.append((
                at("restart_policy"),
                f"invalid value {config.restart_policy!r}, must be one of: "
                + ", ".join(RESTART_POLICIES),
            ))
        for key in config.labels:
            if not key:
                problems.append((at("labels"), "label name cannot be empty"))
        problems += resource_problems(config.cpu, config.memory, path)
        return problems

    def volume_problems(self, volume: str, path: str) -> list[Problem]:
        """"host:container[:options]", the container path absolute; under an allowed root
        when roots are configured."""
        parts = volume.split(":")
        if len(parts) not in (2, 3):
            return [(path, (
                f"invalid format {volume!r}, expected 'host_path:container_path' or "
                "'host_path:container_path:mode'"
            ))]
        host, target = parts[0], parts[1]
        problems: list[Problem] = []
        if not target.startswith("/"):
            problems.append((path, f"container path must be absolute, got {target!r}"))
        if len(parts) == 3:
            unknown = [opt for opt in parts[2].split(",") if opt not in VOLUME_OPTIONS]
            if unknown:
                problems.append((path, (
                    f"unknown mode {','.join(unknown)!r}, expected options among: "
                    + ", ".join(sorted(VOLUME_OPTIONS))
                )))
        if not host.startswith("/") and _VOLUME_NAME.fullmatch(host) is None:
            problems.append((path, (
                f"host part {host!r} is neither an absolute path nor a volume name"
            )))
        elif self.allowed_volume_roots is not None:
            if not host.startswith("/"):
                problems.append((path, (
                    f"named volume {host!r} is not allowed: volumes must be host paths "
                    "under " + ", ".join(self.allowed_volume_roots)
                )))
            else:
                normal = posixpath.normpath(host)
                if not any(
                    normal == root or normal.startswith(root.rstrip("/") + "/")
                    for root in self.allowed_volume_roots
                ):
                    problems.append((path, (
                        f"host path {host!r} is outside the allowed volume roots ("
                        + ", ".join(self.allowed_volume_roots) + ")"
                    )))
        return problems

    def plan(self, spec: TenantComputeSpec, tenant_id: str | None = None) -> tuple[
        ContainerPlan | None, list[Problem]
    ]:
        """The plan for `spec` (for `tenant_id` when an update names it), or the problems
        that keep it from being one."""
        tenant_id = spec.tenant_id if tenant_id is None else tenant_id
        problems = tenant_id_problems(tenant_id)
        if spec.tenant_id and spec.tenant_id != tenant_id:
            problems.append(("tenant_id", f"must be {tenant_id!r}, the tenant updated"))
        if len(spec.containers) != 1:
            problems.append((
                "containers",
                f"docker provider requires exactly 1 container, got {len(spec.containers)}",
            ))
        config = self.read_config(spec.provider_config, "provider_config", problems)
        if len(spec.containers) != 1 or config is None:
            return None, problems
        container = spec.containers[0]
        problems += container_problems(container, "containers[0]", require_image=False)
        image, image_path = (
            (config.image, "provider_config.image") if config.image
            else (container.image, "containers[0].image")
        )
        if not image:
            problems.append(("provider_config.image", "image is required"))
        elif image_path.startswith("containers"):
            reason = image_reference_problem(image)
            if reason:
                problems.append((image_path, f"{reason}, got {image!r}"))
        env = config.env or container.env
        if not config.env:
            problems += env_problems(container.env, "containers[0].env")
        cpu, memory, resource_path = self._resources(spec, container, config)
        if resource_path:
            problems += resource_problems(cpu, memory, resource_path)
        ports = self._ports(container, config)
        mode = config.network_mode or self.network_name
        if ports and not config.ports and (mode == "none" or mode.startswith("container:")):
            problems.append((
                "containers[0].ports", f"cannot publish ports with network_mode {mode!r}",
            ))
        if problems:
            return None, problems
        labels = merge_labels(spec.labels, config.labels)
        return ContainerPlan(
            tenant_id=tenant_id,
            image=image,
            command=tuple(config.command or container.command),
            args=tuple(config.args or container.args),
            env=dict(env),
            ports=ports,
            volumes=tuple(config.volumes),
            network_mode=mode,
            restart_policy=config.restart_policy or DEFAULT_RESTART_POLICY,
            labels=labels,
            cpu=cpu,
            memory=memory,
            health_check=_docker_health_check(container.health_check),
        ), []

    def _ports(
        self, container: ContainerSpec, config: DockerComputeConfig
    ) -> tuple[PlannedPort, ...]:
        if config.ports:  # Landlord: the config's ports replace the container's
            return tuple(
                PlannedPort(
                    container_port=p.container_port, protocol=p.protocol or "tcp",
                    host_ip=self.host_ip, host_port=p.host_port,
                )
                for p in config.ports
            )
        return tuple(
            PlannedPort(
                container_port=p.container_port, protocol=p.protocol or "tcp",
                host_ip=self.host_ip, host_port=p.host_port, name=p.name,
            )
            for p in container.ports
        )

    @staticmethod
    def _resources(
        spec: TenantComputeSpec, container: ContainerSpec, config: DockerComputeConfig
    ) -> tuple[int, int, str]:
        """CPU and memory: the config's (an extension), else the container's, else the
        spec's; and the path they were read from ("" when from the config, checked
        already)."""
        if config.cpu or config.memory:
            return config.cpu, config.memory, ""
        if container.resources is not None and (
            container.resources.cpu or container.resources.memory
        ):
            return container.resources.cpu, container.resources.memory, "containers[0].resources"
        return spec.resources.cpu, spec.resources.memory, "resources"


def env_problems(env: Mapping[str, str], path: str) -> list[Problem]:
    """Names non-empty and without '=' (values are strings: the converter saw to that)."""
    problems: list[Problem] = []
    for key in env:
        if not key:
            problems.append((path, "environment variable name cannot be empty"))
        elif "=" in key:
            problems.append((
                join_path(path, key),
                f"environment variable name cannot contain '=', got {key!r}",
            ))
    return problems


def resource_problems(cpu: int, memory: int, path: str) -> list[Problem]:
    """0 (no limit) or at least Docker's floor."""
    problems: list[Problem] = []
    if cpu < 0 or 0 < cpu < MIN_CPU_MILLICORES:
        problems.append((
            join_path(path, "cpu"),
            f"must be 0 (no limit) or at least {MIN_CPU_MILLICORES} millicores, got {cpu}",
        ))
    if memory < 0 or 0 < memory < MIN_MEMORY_MB:
        problems.append((
            join_path(path, "memory"),
            f"must be 0 (no limit) or at least {MIN_MEMORY_MB} MB, got {memory}",
        ))
    return problems


def _docker_health_check(check: HealthCheckConfig | None) -> dict[str, Any] | None:
    """Docker's `Healthcheck` for an exec check; http and tcp checks need a tool inside the
    image that Docker cannot assume, so they are left to the image."""
    if check is None or check.type != "exec":
        return None
    seconds = 1_000_000_000
    health: dict[str, Any] = {
        "Test": ["CMD", *check.command],
        "Interval": check.interval_seconds * seconds,
        "Timeout": check.timeout_seconds * seconds,
    }
    if check.unhealthy_threshold:
        health["Retries"] = check.unhealthy_threshold
    return health


def tenant_labels(plan: ContainerPlan, label_prefix: str) -> dict[str, str]:
    """The container's labels: the spec's and config's, Landlord's metadata over them
    (`landlord.owner`, `landlord.tenant_id`, `landlord.provider`), ours last:
    `<prefix>.spec` (the plan, env values as a digest) and `<prefix>.spec_hash`."""
    spec = TenantComputeSpec(tenant_id=plan.tenant_id, provider_type=NAME)
    return merge_labels(plan.labels, default_metadata(spec), {
        spec_label(label_prefix): json.dumps(plan.record(), sort_keys=True, separators=(",", ":")),
        spec_hash_label(label_prefix): plan.digest(),
    })


def spec_label(prefix: str) -> str:
    """The label holding the plan's record."""
    return f"{prefix}.spec"


def spec_hash_label(prefix: str) -> str:
    """The label holding the plan's digest."""
    return f"{prefix}.spec_hash"


def changes_label(prefix: str) -> str:
    """The label of a container made by an update: what that update changed (JSON list)."""
    return f"{prefix}.changes"


def read_record(labels: Mapping[str, str], prefix: str) -> dict[str, Any] | None:
    """The plan record stored on a container, or None (not ours, or unreadable)."""
    text = labels.get(spec_label(prefix))
    if not text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def read_changes(labels: Mapping[str, str], prefix: str) -> list[str] | None:
    """The changes recorded on a container made by an update, or None."""
    text = labels.get(changes_label(prefix))
    if text is None:
        return None
    try:
        changes = json.loads(text)
    except ValueError:
        return None
    if isinstance(changes, list) and all(isinstance(c, str) for c in changes):
        return changes
    return None


def check_host_ip(value: str) -> str | None:
    """Why `value` cannot be an address to publish ports on, or None."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IP address, got {value!r}"
    return None
