"""What the deployment serves: the handler modules it imports and the Restate services it
builds from the registered handlers (the catalog and control objects beside them).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from datetime import timedelta

import restate

from landlord_restate.restate.naming import check_service_name
from services.catalog import catalog, records
from services.control import control
from services.registry import HandlerFn
from services.settings import DEFAULT_RETENTION, handler_modules
from services.shim import build_workflow


def import_handler_modules(modules: str | Iterable[str]) -> None:
    """Import each module (or each of a comma-separated list); their @handler decorators
    register them."""
    for module in handler_modules(modules) if isinstance(modules, str) else modules:
        importlib.import_module(module)


def build_services(
    handlers: Mapping[str, HandlerFn],
    service_name: str | None,
    retention: timedelta = DEFAULT_RETENTION,
) -> list[restate.Workflow | restate.VirtualObject | restate.Service]:
    """The catalog and the control object, plus the workflow services that host `handlers`."""
    workflows: list[restate.Workflow | restate.VirtualObject | restate.Service] = [
        catalog, records, control]
    if service_name:
        workflows.append(
            build_workflow(check_service_name(service_name), handlers, retention=retention)
        )
    else:
        workflows.extend(
            build_workflow(name, {name: fn}, retention=retention) for name, fn in handlers.items()
        )
    return workflows
