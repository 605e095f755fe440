"""The handler deployment: `hypercorn services.app:app` serves it; so does AWS Lambda.

Hosts the built-in handlers plus the modules named in LANDLORD_RESTATE_HANDLERS
(comma-separated module paths). Each handler gets a Restate Workflow service of its own name,
or, when `service_name` is configured, one service of that name hosts them all. With
LANDLORD_RESTATE_IDENTITY_KEYS set, only requests signed by those Restate servers are served.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import restate
from attrs import frozen
from restate.aws_lambda import is_running_on_lambda

import services.handlers  # noqa: F401  (registers the built-in handlers)
from landlord_restate.restate.naming import check_service_name
from landlord_restate.restate.settings import load_settings
from landlord_restate.workflow.convert import parse_go_duration
from landlord_restate.workflow.errors import ConfigError, WorkflowError
from services import tracing
from services.catalog import catalog
from services.control import control
from services.registration import SelfRegistration, register_when_serving
from services.registry import HandlerFn, registered_handlers
from services.shim import build_workflow

HANDLER_MODULES_ENV = "LANDLORD_RESTATE_HANDLERS"
#: public keys (publickeyv1_...) of the Restate servers allowed to invoke this deployment
IDENTITY_KEYS_ENV = "LANDLORD_RESTATE_IDENTITY_KEYS"
#: how long status and history of a finished execution stay queryable (Go duration)
RETENTION_ENV = "LANDLORD_RESTATE_RETENTION"
DEFAULT_RETENTION = timedelta(days=1)


def handler_modules(spec: str) -> tuple[str, ...]:
    """The module paths of a comma-separated LANDLORD_RESTATE_HANDLERS value."""
    return tuple(part.strip() for part in spec.split(",") if part.strip())


def import_handler_modules(modules: str | Iterable[str]) -> None:
    """Import each module (or each of a comma-separated list); their @handler decorators
    register them."""
    for module in handler_modules(modules) if isinstance(modules, str) else modules:
        importlib.import_module(module)


def build_services(
    handlers: Mapping[str, HandlerFn],
    service_name: str | None,
    retention: timedelta = DEFAULT_RETENTION,
) -> list[restate.Workflow | restate.VirtualObject]:
    """The catalog and the control object, plus the workflow services that host `handlers`."""
    workflows: list[restate.Workflow | restate.VirtualObject] = [catalog, control]
    if service_name:
        workflows.append(
            build_workflow(check_service_name(service_name), handlers, retention=retention)
        )
    else:
        workflows.extend(
            build_workflow(name, {name: fn}, retention=retention) for name, fn in handlers.items()
        )
    return workflows


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
        settings = load_settings(env=env)
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


def create_app(env: Mapping[str, str] = os.environ) -> Any:
    """Build the ASGI app from `env` (injectable for tests)."""
    settings = DeploymentSettings.load(env)
    tracing.configure(env)  # only when an OTLP endpoint is set
    import_handler_modules(settings.handler_modules)
    services = build_services(registered_handlers(), settings.service_name, settings.retention)
    served = restate.app(services=services, identity_keys=list(settings.identity_keys) or None)
    if is_running_on_lambda():
        return served  # the SDK's Lambda handler, not an ASGI app
    return answer_lifespan(served, settings.self_registration)


def answer_lifespan(inner: Any, registration: SelfRegistration | None = None) -> Any:
    """The ASGI app, answering the lifespan protocol itself.

    hypercorn asks every app about lifespan at start; the SDK refuses, and hypercorn logs
    a warning each time. With `registration`, startup begins registering this deployment
    (in the background: Restate's discovery calls back into this very server, which only
    serves once startup is complete); shutdown stops that if it is still trying.
    """

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await inner(scope, receive, send)
            return
        task: asyncio.Task[str | None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if registration is not None:
                    task = asyncio.get_running_loop().create_task(
                        register_when_serving(registration)
                    )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task is not None:
                    task.cancel()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


app = create_app()
