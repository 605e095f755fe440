"""What the handler deployment is configured with: its environment variables, loaded and
checked in one place (`DeploymentSettings.load`), and their names, which the test harness
reads from here too.

It reads the environment it is given and, for `service_name` and the worker keys, the
provider's own sources: `$LANDLORD_CONFIG` when set, never a `./config.yaml` that happens to
be in the working directory.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta

from attrs import frozen

from landlord_restate.restate.naming import check_service_name
from landlord_restate.restate.settings import env_name, load_settings
from landlord_restate.workflow.convert import parse_go_duration
from landlord_restate.workflow.errors import ConfigError, WorkflowError
from services.registration import SelfRegistration

#: comma-separated module paths whose @handler functions the deployment hosts
HANDLER_MODULES_ENV = "LANDLORD_RESTATE_HANDLERS"
#: the provider's `service_name`: one service hosting every handler
SERVICE_NAME_ENV = env_name("service_name")
#: public keys (publickeyv1_...) of the Restate servers allowed to invoke this deployment
IDENTITY_KEYS_ENV = "LANDLORD_RESTATE_IDENTITY_KEYS"
#: how long status and history of a finished execution stay queryable (Go duration)
RETENTION_ENV = "LANDLORD_RESTATE_RETENTION"
DEFAULT_RETENTION = timedelta(days=1)


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
    WORKFLOW_RESTATE_SERVICE_NAME), so both sides agree on where handlers live.
    """

    handler_modules: tuple[str, ...] = ()
    service_name: str | None = None
    identity_keys: tuple[str, ...] = ()
    retention: timedelta = DEFAULT_RETENTION
    #: Landlord's worker keys: register this deployment with Restate once serving
    self_registration: SelfRegistration | None = None

    @classmethod
    def load(cls, env: Mapping[str, str] = os.environ) -> DeploymentSettings:
        """Read the settings from `env`; ConfigError naming the variable when one is wrong."""
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
        settings = load_settings(env=env, working_directory=False)
        service_name = settings.get("service_name")
        if service_name is not None:
            try:
                check_service_name(service_name)
            except WorkflowError as exc:
                raise ConfigError(exc.message, key="service_name") from None
        return cls(
            handler_modules=modules, service_name=service_name,
            identity_keys=tuple(identity_keys_from(env)), retention=retention,
            self_registration=SelfRegistration.load(env, settings),
        )
