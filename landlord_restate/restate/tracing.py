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
import re
import sys
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any, TypeVar

from loguru import logger

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
    # attributes given at the start: each later set_attribute takes the span's lock
    attributes = {ATTRIBUTES.get(name, f"landlord.{name}"): value
                  for name, value in ids.items() if value}
    with _tracer(trace).start_as_current_span(
            f"landlord_restate.{operation}", attributes=attributes) as current:
        yield current


#: the tracer of the tracer provider last seen: asking the provider for it on every span
#: cost a tenth of a start's time (the SDK builds a scope and sets warning filters each time)
_cached: tuple[Any, Any] | None = None


def _tracer(trace: Any) -> Any:
    """This library's tracer from the application's current tracer provider."""
    global _cached
    provider = trace.get_tracer_provider()
    if _cached is None or _cached[0] is not provider:
        _cached = (provider, provider.get_tracer(_TRACER_NAME))
    return _cached[1]


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
        #: where each id arrives when passed by position
        position = {name: i for i, name in enumerate(inspect.signature(method).parameters)}

        def given(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            if name in kwargs:
                return kwargs[name]
            at = position.get(name)
            return args[at] if at is not None and at < len(args) else None

        @functools.wraps(method)
        async def run(*args: Any, **kwargs: Any) -> Any:
            if _api() is None:
                return await method(*args, **kwargs)
            ids = {
                "workflow_id": given("workflow_id", args, kwargs)
                or getattr(given("spec", args, kwargs), "workflow_id", None),
                "execution_id": given("execution_id", args, kwargs),
            }
            with span(operation, **{k: v for k, v in ids.items() if isinstance(v, str)}) as current:
                result = await method(*args, **kwargs)
                learnt = getattr(result, "execution_id", None)
                if current is not None and learnt and learnt != ids["execution_id"]:
                    current.set_attribute(ATTRIBUTES["execution_id"], learnt)
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


#: a W3C traceparent this provider passes on: version, trace id, parent id, flags
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_warned = False


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current span's W3C trace context (`traceparent`) to request headers.

    What the application's propagator writes is checked first: a malformed `traceparent`
    (or any header value an HTTP request cannot carry, or a propagator that raises) leaves
    that request without trace context, with one warning per process, never an error."""
    if _api() is None:
        return
    # the API is loaded already, so this import only finds it
    propagate: Any = importlib.import_module("opentelemetry.propagate")
    carrier: dict[str, Any] = {}
    try:
        propagate.inject(carrier)
    except Exception as exc:  # the application's propagator: any failure is its own
        _untraced(f"its propagator raised {type(exc).__name__}")
        return
    bad = [str(name)[:40] for name, value in carrier.items() if not _carriable(name, value)]
    parent = carrier.get("traceparent")
    match = _TRACEPARENT.fullmatch(parent) if isinstance(parent, str) else None
    if parent is not None and (match is None or not _valid_parent(*match.groups())):
        bad.append("traceparent")
    if bad:
        _untraced(f"its propagator wrote a malformed {', '.join(sorted(set(bad)))}")
        return
    if match is not None:
        version, trace_id, parent_id, flags = match.groups()
        # W3C level 2 adds a "random" flag (0x02) that the OpenTelemetry SDK sets and
        # restate-server 1.7.12 refuses (it then starts a trace of its own): keep only
        # the level 1 "sampled" bit, which is all a receiver acts on
        carrier["traceparent"] = f"{version}-{trace_id}-{parent_id}-{int(flags, 16) & 1:02x}"
    headers.update(carrier)


def _valid_parent(version: str, trace_id: str, parent_id: str, flags: str) -> bool:
    """W3C's rules beyond the shape: version ff and all-zero ids are invalid."""
    return version != "ff" and trace_id != "0" * 32 and parent_id != "0" * 16


def _carriable(name: Any, value: Any) -> bool:
    """A header an HTTP request can carry: string name and value, no control characters."""
    return (isinstance(name, str) and isinstance(value, str) and name.isascii()
            and name.isprintable() and " " not in name
            and _CONTROL.search(value) is None)


#: a control character a header value cannot carry (tab is allowed)
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


def _untraced(why: str) -> None:
    """Note that a request goes without trace context: a warning the first time, then
    debug lines (a propagator that fails, fails on every request)."""
    global _warned
    log = logger.bind(component="tracing")
    if _warned:
        log.debug("request sent without trace context: {}", why)
        return
    _warned = True
    log.warning("requests to Restate go without trace context while the application's "
                "OpenTelemetry propagator fails: {} (warned once)", why)
