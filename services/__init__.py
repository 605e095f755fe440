"""The handler deployment: Go-style handlers hosted as durable Restate Workflows.

Write a handler with `@handler("GoName")`; `hypercorn services.app:app` serves it.

- `app` (the ASGI and Lambda entry), `__main__` (`python -m services`: hypercorn with
  `hypercorn_config`, the settings Restate's own harness serves with), `settings` (what it
  reads from its environment), `assembly` (the services it builds), `registration`
  (registering itself with Landlord's worker keys).
- `shim` (a Go-style handler as a Restate Workflow's `run`), `context` (`HandlerContext`:
  steps, sleeps, the compute callback, redrive reuse), `errors` (`HandlerError` and the one
  classification of handler failures), `registry` (`@handler`).
- `catalog` (the spec catalog object), `control` (per-execution records and the callback
  relay), `compute` (the worker's compute providers, resolved in Landlord's order),
  `tracing` (handler spans), `handlers/` (the built-in TenantProvisioning).
"""

from services.context import HandlerContext
from services.errors import HandlerError
from services.registry import handler

__all__ = ["HandlerContext", "HandlerError", "handler"]
