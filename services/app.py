"""The handler deployment: `hypercorn services.app:app` serves it; so does AWS Lambda.

Hosts the built-in handlers plus the modules named in LANDLORD_RESTATE_HANDLERS
(comma-separated module paths). Each handler gets a Restate Workflow service of its own name,
or, when `service_name` is configured, one service of that name hosts them all. With
LANDLORD_RESTATE_IDENTITY_KEYS set, only requests signed by those Restate servers are served.
What it reads is `services.settings`; what it serves, `services.assembly`; this module is the
ASGI entry (and Lambda's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import restate
from restate.aws_lambda import is_running_on_lambda

import services.handlers  # noqa: F401  (registers the built-in handlers)
from services import tracing
from services.assembly import build_services, import_handler_modules
from services.registration import SelfRegistration, register_when_serving
from services.registry import registered_handlers
from services.settings import DeploymentSettings

__all__ = ["DeploymentSettings", "answer_lifespan", "app", "build_services", "create_app",
           "import_handler_modules"]


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
