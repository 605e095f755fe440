"""Go-style handlers by their exported name: what a workflow definition's `handler` names.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from landlord_restate.restate.naming import GO_EXPORTED

if TYPE_CHECKING:
    from services.context import HandlerContext

#: a handler: `async def h(ctx, request) -> output` or `-> (output, error)` like Go
HandlerFn = Callable[["HandlerContext", Any], Awaitable[Any]]
F = TypeVar("F", bound=HandlerFn)

_HANDLERS: dict[str, HandlerFn] = {}


def handler(name: str) -> Callable[[F], F]:
    """Register an async function as the Python shim of the Go handler `name`."""
    if not GO_EXPORTED.fullmatch(name):
        raise ValueError(f"handler name {name!r} must be a Go exported identifier")

    def register(fn: F) -> F:
        existing = _HANDLERS.get(name)
        if existing is not None and existing is not fn:
            raise ValueError(f"handler {name!r} is already registered by {existing.__module__}")
        _HANDLERS[name] = fn
        return fn

    return register


def registered_handlers() -> dict[str, HandlerFn]:
    """A snapshot of every registered handler, by name."""
    return dict(_HANDLERS)
