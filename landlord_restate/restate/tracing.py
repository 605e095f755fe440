"""OpenTelemetry for the provider: a span per operation, W3C trace context on every request.

Optional (`pip install landlord-restate[otel]`), and free when unused: nothing here imports
OpenTelemetry unless the application already has (`opentelemetry.trace` is in
`sys.modules`, as it is once a tracer provider is configured). Then each provider
operation is a span carrying the ids an operator searches by, errors are recorded on it,
and the `traceparent` of the current span goes with every admin and ingress request, so
restate-server's ingress and invocation spans join the caller's trace.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, TypeVar

_TRACER_NAME = "landlord_restate"
#: span attribute names, in OpenTelemetry's dotted style
ATTRIBUTES = {
    "workflow_id": "landlord.workflow_id",
    "execution_id": "landlord.execution_id",
    "service": "restate.service",
    "key": "restate.key",
    "invocation_id": "restate.invocation.id",
}


def _api() -> Any | None:
    """The OpenTelemetry API module, only when the application has loaded it."""
    return sys.modules.get("opentelemetry.trace")


@contextlib.contextmanager
def span(operation: str, **ids: str | None) -> Iterator[Any | None]:
    """A span named `landlord_restate.<operation>` around the block (None when tracing is
    off); ids given become attributes, and an exception is recorded on the span."""
    trace = _api()
    if trace is None:
        yield None
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(f"landlord_restate.{operation}") as current:
        annotate(**ids)
        yield current


def annotate(**ids: str | None) -> None:
    """Add ids learnt during the operation (service, key, invocation id) to its span."""
    trace = _api()
    if trace is None:
        return
    current = trace.get_current_span()
    for name, value in ids.items():
        if value:
            current.set_attribute(ATTRIBUTES.get(name, f"landlord.{name}"), value)


F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def traced(operation: str) -> Callable[[F], F]:
    """Make a provider method a span; its `workflow_id`/`execution_id` (or a spec's
    workflow id) become attributes. With tracing off it is one dictionary lookup."""

    def wrap(method: F) -> F:
        signature = inspect.signature(method)

        @functools.wraps(method)
        async def run(*args: Any, **kwargs: Any) -> Any:
            if _api() is None:
                return await method(*args, **kwargs)
            bound = signature.bind_partial(*args, **kwargs).arguments
            spec = bound.get("spec")
            ids = {
                "workflow_id": bound.get("workflow_id") or getattr(spec, "workflow_id", None),
                "execution_id": bound.get("execution_id"),
            }
            with span(operation, **{k: v for k, v in ids.items() if isinstance(v, str)}):
                result = await method(*args, **kwargs)
                annotate(execution_id=getattr(result, "execution_id", None))
                return result

        return run  # type: ignore[return-value]

    return wrap


def add_trace_ids(record: Any) -> None:
    """A loguru patcher: a line written inside a span carries its `trace_id` and `span_id`."""
    trace = _api()
    if trace is None:
        return
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        record["extra"]["trace_id"] = format(context.trace_id, "032x")
        record["extra"]["span_id"] = format(context.span_id, "016x")


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's W3C trace context (`traceparent`) to request headers."""
    if _api() is None:
        return
    # the API is loaded already, so this import only finds it
    propagate: Any = importlib.import_module("opentelemetry.propagate")
    propagate.inject(headers)
    parent = headers.get("traceparent")
    if parent and len(parent) == 55:
        # W3C level 2 adds a "random" flag (0x02) that the OpenTelemetry SDK sets and
        # restate-server 1.7.12 refuses (it then starts a trace of its own): keep only
        # the level 1 "sampled" bit, which is all a receiver acts on
        flags = int(parent[53:], 16) & 0x01
        headers["traceparent"] = f"{parent[:53]}{flags:02x}"
