"""The handler deployment: Go-style handlers hosted as durable Restate Workflows.

Write a handler with `@handler("GoName")`; `hypercorn services.app:app` serves it.
"""

from services.context import HandlerContext
from services.errors import HandlerError
from services.registry import handler

__all__ = ["HandlerContext", "HandlerError", "handler"]
