"""The handler deployment: `hypercorn services.app:app` serves it; so does AWS Lambda, and
`python -m services` (the same app, taking Landlord's `--workflow.restate.*` flags).

Hosts the built-in handlers plus the modules named in LANDLORD_RESTATE_HANDLERS
(comma-separated module paths). Each handler gets a Restate Workflow service of its own name,
or, when `service_name` is configured, one service of that name hosts them all; Landlord's
`worker_namespace` and `worker_service_prefix` go in front of those names. With
LANDLORD_RESTATE_IDENTITY_KEYS set, only requests signed by those Restate servers are served.
What it reads is `services.settings`; what it serves, `services.assembly`; its compute
providers, `services.compute`; this module is the ASGI entry (and Lambda's).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import restate
from loguru import logger
from restate.aws_lambda import is_running_on_lambda

import services.handlers  # noqa: F401  (registers the built-in handlers)
from landlord_restate.restate.config import WorkerConfig
from services import compute, tracing
from services.assembly import build_services, import_handler_modules
from services.registration import SelfRegistration, register_when_serving
from services.registry import HandlerFn, registered_handlers
from services.settings import DeploymentSettings
from services.shim import build_workflow

__all__ = ["DeploymentSettings", "answer_lifespan", "app", "build_services", "create_app",
           "import_handler_modules", "worker_services"]


def create_app(env: Mapping[str, str] = os.environ, argv: tuple[str, ...] | None = None) -> Any:
    """Build the ASGI app from `env` and `argv` (Landlord's `--workflow.restate.*` flags;
    default: those in LANDLORD_RESTATE_FLAGS), both injectable for tests."""
    settings = DeploymentSettings.load(env, argv)
    tracing.configure(env)  # only when an OTLP endpoint is set
    import_handler_modules(settings.handler_modules)
    # after the handler modules: one may add a compute provider (register_factory)
    worker_compute = compute.WorkerCompute.load(settings.worker, settings.compute)
    compute.configure(worker_compute)
    services = worker_services(registered_handlers(), settings.service_name, settings.retention,
                               settings.worker)
    served = restate.app(services=services, identity_keys=list(settings.identity_keys) or None)
    if is_running_on_lambda():
        if settings.self_registration() is not None:
            # Lambda runs no ASGI lifespan, and a function cannot call Restate back at start
            logger.warning(
                "worker_register_on_startup does nothing on AWS Lambda: register the "
                "function's ARN with create_workflow or register_deployment "
                "(execution_mechanism lambda)"
            )
        return served  # the SDK's Lambda handler, not an ASGI app
    return answer_lifespan(served, settings.self_registration(), worker_compute)


def worker_services(
    handlers: Mapping[str, HandlerFn],
    service_name: str | None,
    retention: timedelta,
    worker: WorkerConfig,
) -> list[restate.Workflow | restate.VirtualObject | restate.Service]:
    """`build_services`, with the worker's namespace and prefix in front of each workflow
    service's name (Landlord's `WorkerServiceName`); the catalog and control objects keep
    theirs (the provider finds them by name)."""
    if service_name or not (worker.worker_namespace or worker.worker_service_prefix):
        return build_services(handlers, worker.qualified(service_name) if service_name else None,
                              retention)
    return [
        *build_services({}, None, retention),
        *(build_workflow(worker.qualified(name), {name: fn}, retention=retention)
          for name, fn in handlers.items()),
    ]


def answer_lifespan(
    inner: Any,
    registration: SelfRegistration | None = None,
    worker_compute: compute.WorkerCompute | None = None,
) -> Any:
    """The ASGI app, answering the lifespan protocol itself.

    hypercorn asks every app about lifespan at start; the SDK refuses, and hypercorn logs
    a warning each time. With `registration`, startup begins registering this deployment
    (in the background: Restate's discovery calls back into this very server, which only
    serves once startup is complete); shutdown stops that if it is still trying, and
    closes the compute providers' sessions.
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
                if worker_compute is not None:
                    await worker_compute.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    return app


app = create_app()
