"""What the handler deployment is configured with: its environment variables, loaded and
checked in one place (`DeploymentSettings.load`), and their names, which the test harness
reads from here too.

It reads the environment it is given and, for `service_name`, Landlord's worker keys
(`worker_*`) and the `compute:` section, the provider's own sources: `$LANDLORD_CONFIG`
when set (never a `./config.yaml` that happens to be in the working directory), the
`WORKFLOW_RESTATE_*` environment, and `--workflow.restate.<key>` flags, which
`python -m services` hands to the app in `LANDLORD_RESTATE_FLAGS` (hypercorn starts the
app in a process of its own, so an argument list cannot reach it).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import field, frozen

from landlord_restate.restate.config import WorkerConfig
from landlord_restate.restate.naming import check_service_name
from landlord_restate.restate.settings import (
    FLAG_PREFIX,
    env_name,
    load_settings,
    load_worker_config,
    read_compute_config,
)
from landlord_restate.workflow.convert import parse_go_duration
from landlord_restate.workflow.errors import ConfigError, WorkflowError
from services.registration import SelfRegistration

#: hypercorn's settings for a Restate deployment (`--config`; services/hypercorn_config.py)
HYPERCORN_CONFIG = "python:services.hypercorn_config"
#: comma-separated module paths whose @handler functions the deployment hosts
HANDLER_MODULES_ENV = "LANDLORD_RESTATE_HANDLERS"
#: the provider's `service_name`: one service hosting every handler
SERVICE_NAME_ENV = env_name("service_name")
#: public keys (publickeyv1_...) of the Restate servers allowed to invoke this deployment
IDENTITY_KEYS_ENV = "LANDLORD_RESTATE_IDENTITY_KEYS"
#: how long status and history of a finished execution stay queryable (Go duration)
RETENTION_ENV = "LANDLORD_RESTATE_RETENTION"
DEFAULT_RETENTION = timedelta(days=1)
#: the `--workflow.restate.*` flags `python -m services` was given, as a JSON list
FLAGS_ENV = "LANDLORD_RESTATE_FLAGS"


def flags_from(env: Mapping[str, str]) -> tuple[str, ...]:
    """The `--workflow.restate.*` flags in `env[FLAGS_ENV]`; ConfigError when it is not a JSON
    list of such flags."""
    raw = env.get(FLAGS_ENV)
    if not raw:
        return ()
    try:
        flags = json.loads(raw)
    except ValueError:
        flags = None
    if not isinstance(flags, list) or not all(
        isinstance(flag, str) and flag.startswith(FLAG_PREFIX) for flag in flags
    ):
        raise ConfigError(
            f"{FLAGS_ENV} must be a JSON list of {FLAG_PREFIX}<key>=<value> flags "
            "(python -m services sets it)", key=FLAGS_ENV,
        )
    return tuple(flags)


def handler_modules(spec: str) -> tuple[str, ...]:
    """The module paths of a comma-separated LANDLORD_RESTATE_HANDLERS value."""
    return tuple(part.strip() for part in spec.split(",") if part.strip())


#: what restate-server prints as its request identity public key
_PUBLIC_KEY = re.compile(r"publickeyv1_[1-9A-HJ-NP-Za-km-z]{20,128}")


def identity_keys_from(env: Mapping[str, str]) -> list[str]:
    """The identity keys to trust; a setting that is present but names no valid key refuses
    to start the app, since an empty list would mean: accept unsigned requests."""
    raw = env.get(IDENTITY_KEYS_ENV)
    if raw is None:
        return []
    keys = [part.strip() for part in raw.split(",")]
    bad = [key for key in keys if key and not _PUBLIC_KEY.fullmatch(key)]
    if bad or not any(keys):
        raise ConfigError(
            f"{IDENTITY_KEYS_ENV} must list restate-server public keys (publickeyv1_...), "
            f"comma-separated; {'it has none' if not bad else f'{len(bad)} entries are not keys'}"
            ". Unset it to serve unsigned requests.",
            key=IDENTITY_KEYS_ENV,
        )
    return [key for key in keys if key]


@frozen(kw_only=True)
class DeploymentSettings:
    """What the deployment is configured with, loaded and checked in one place.

    `service_name` comes from the provider's own sources (config file, then
    WORKFLOW_RESTATE_SERVICE_NAME, then flags), so both sides agree on where handlers live;
    so do Landlord's worker keys and the `compute:` section.
    """

    handler_modules: tuple[str, ...] = ()
    service_name: str | None = None
    identity_keys: tuple[str, ...] = ()
    retention: timedelta = DEFAULT_RETENTION
    #: Landlord's worker keys (compute resolution, self-registration, service names)
    worker: WorkerConfig = field(factory=WorkerConfig)
    #: Landlord's `compute:` section: compute providers by name, `default_provider`
    compute: dict[str, Any] = field(factory=dict)
    #: the provider settings of every source (file < env < flags), keyed like
    #: RestateConfig's fields
    provider_settings: dict[str, Any] = field(factory=dict)

    @classmethod
    def load(
        cls, env: Mapping[str, str] = os.environ, argv: tuple[str, ...] | None = None
    ) -> DeploymentSettings:
        """Read the settings from `env` and `argv` (default: the flags in
        LANDLORD_RESTATE_FLAGS); ConfigError naming the variable or key when one is wrong."""
        if argv is None:
            argv = flags_from(env)
        modules = handler_modules(env.get(HANDLER_MODULES_ENV, ""))
        retention = DEFAULT_RETENTION
        if env.get(RETENTION_ENV):
            try:
                retention = parse_go_duration(env[RETENTION_ENV])
            except ValueError as exc:
                raise ConfigError(f"{RETENTION_ENV}: {exc}", key=RETENTION_ENV) from None
            if retention <= timedelta(0):
                raise ConfigError(
                    f"{RETENTION_ENV} must be positive, got {env[RETENTION_ENV]!r}",
                    key=RETENTION_ENV,
                )
        settings = load_settings(env=env, argv=argv, working_directory=False)
        service_name = settings.get("service_name")
        if service_name is not None:
            try:
                check_service_name(service_name)
            except WorkflowError as exc:
                raise ConfigError(exc.message, key="service_name") from None
        return cls(
            handler_modules=modules, service_name=service_name,
            identity_keys=tuple(identity_keys_from(env)), retention=retention,
            worker=load_worker_config(env=env, argv=argv, working_directory=False),
            compute=read_compute_config(env=env, working_directory=False),
            provider_settings=settings,
        )

    def self_registration(self) -> SelfRegistration | None:
        """Where to register this deployment once it serves, or None (off, or no address:
        logged); ConfigError naming the key when a setting cannot work."""
        return SelfRegistration.load(self.worker, self.provider_settings)
