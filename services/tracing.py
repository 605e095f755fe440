"""Handler spans: `run`, each step, each durable sleep and the compute-callback wait.

Off unless the deployment's environment names an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with the other
standard `OTEL_*` variables: protocol, service name, headers); then `services.app` sets up
the SDK and an OTLP/HTTP exporter once, and spans are parented on Restate's invocation
attempt through restate-sdk's `RestateTracer`, which also emits nothing while a journal
is replayed (work already journaled gets no second span). Off, nothing of OpenTelemetry is
imported: on Lambda every import is cold-start time.

The rule for the variables it reads: empty is unset (OpenTelemetry's own rule); any other
value it cannot use (a blank or malformed endpoint, an unknown protocol, a batch setting
that is not a positive integer, ...) refuses to start the app with a `ConfigError` naming
the variable, checked before anything is set up. A deployment asked to trace never starts
without tracing, nor with an exporter that fails on every batch.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import frozen

from landlord_restate.restate.config import url_problem
from landlord_restate.workflow.errors import ConfigError

TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
_ENDPOINT_VARIABLES = (TRACES_ENDPOINT, ENDPOINT)
#: batch span processor settings: (variable, the SDK's default, smallest allowed)
_BATCH = {
    "schedule_delay_millis": ("OTEL_BSP_SCHEDULE_DELAY", 5000, 1),
    "max_queue_size": ("OTEL_BSP_MAX_QUEUE_SIZE", 2048, 1),
    "max_export_batch_size": ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, 1),
    "export_timeout_millis": ("OTEL_BSP_EXPORT_TIMEOUT", 30000, 0),
}
_PROTOCOLS = ("http/protobuf", "grpc")
_COMPRESSIONS = ("none", "gzip", "deflate")
_tracer: Any | None = None


@frozen(kw_only=True)
class ExportSettings:
    """What the OTLP exporter and batch processor are built with, read from the `OTEL_*`
    variables and checked."""

    protocol: str
    endpoint: str
    timeout: float | None
    compression: str | None
    batch: dict[str, int]
    service_name: str


def _set(env: Mapping[str, str], name: str) -> str | None:
    """The variable's value; empty counts as unset, as OpenTelemetry's spec says."""
    value = env.get(name)
    return value if value else None


def _first(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    """The first of `names` that is set, and its value."""
    for name in names:
        value = _set(env, name)
        if value is not None:
            return name, value
    return None


def read_settings(env: Mapping[str, str]) -> ExportSettings | None:
    """The export settings `env` asks for, or None when no endpoint is set (tracing off);
    ConfigError naming the variable for a value that cannot work."""
    found = _first(env, *_ENDPOINT_VARIABLES)
    if found is None:
        return None
    name, endpoint = found
    if not endpoint.strip():
        raise ConfigError(
            f"{name} is blank: give the collector's http(s) URL, or leave it empty to turn "
            "tracing off", key=name,
        )
    why = url_problem(endpoint)
    if why is not None:
        raise ConfigError(f"{name} {endpoint[:200]!r} {why}", key=name)
    chosen = _first(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
    protocol = "http/protobuf"
    if chosen is not None:
        variable, protocol = chosen
        if protocol not in _PROTOCOLS:
            raise ConfigError(
                f"{variable} {protocol[:80]!r}: this deployment exports "
                f"{' or '.join(_PROTOCOLS)}", key=variable,
            )
    if name == ENDPOINT and protocol == "http/protobuf":
        # the base endpoint names the collector; the traces path goes after it
        endpoint = f"{endpoint.removesuffix('/')}/v1/traces"
    timeout: float | None = None
    chosen = _first(env, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT")
    if chosen is not None:
        variable, text = chosen
        try:
            timeout = float(text)
        except ValueError:
            timeout = math.nan
        if not math.isfinite(timeout) or timeout <= 0:
            raise ConfigError(f"{variable} {text[:80]!r} must be a positive number of seconds",
                              key=variable)
    compression: str | None = None
    chosen = _first(env, "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                    "OTEL_EXPORTER_OTLP_COMPRESSION")
    if chosen is not None:
        variable, compression = chosen[0], chosen[1].strip().lower()
        if compression not in _COMPRESSIONS:
            raise ConfigError(f"{variable} {chosen[1][:80]!r} must be one of: "
                              f"{', '.join(_COMPRESSIONS)}", key=variable)
    batch = {key: _batch_value(env, variable, default, least)
             for key, (variable, default, least) in _BATCH.items()}
    if batch["max_export_batch_size"] > batch["max_queue_size"]:
        queue, size = _BATCH["max_queue_size"][0], _BATCH["max_export_batch_size"][0]
        raise ConfigError(
            f"{size} ({batch['max_export_batch_size']}) must not exceed {queue} "
            f"({batch['max_queue_size']})", key=size if _set(env, size) else queue,
        )
    return ExportSettings(
        protocol=protocol, endpoint=endpoint, timeout=timeout, compression=compression,
        batch=batch,
        service_name=_set(env, "OTEL_SERVICE_NAME") or "landlord-restate-deployment",
    )


def _batch_value(env: Mapping[str, str], variable: str, default: int, least: int) -> int:
    text = _set(env, variable)
    if text is None:
        return default
    try:
        value = int(text.strip())
    except ValueError:
        value = least - 1
    if value < least:
        kind = "a positive integer" if least > 0 else "zero or a positive integer"
        raise ConfigError(f"{variable} {text[:80]!r} must be {kind}", key=variable)
    return value


def configure(env: Mapping[str, str] = os.environ) -> bool:
    """Set up span export when the environment asks for it; answer whether it did.

    ConfigError naming the variable, before anything is set up, when one cannot work."""
    global _tracer
    settings = read_settings(env)
    if settings is None:
        return False
    if _tracer is not None:
        return True
    exporter = _exporter(settings)
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from restate.ext.tracing import RestateTracer

    resource = Resource.create({"service.name": settings.service_name})
    provider = TracerProvider(resource=resource)
    batch = settings.batch
    provider.add_span_processor(BatchSpanProcessor(
        exporter, max_queue_size=batch["max_queue_size"],
        schedule_delay_millis=batch["schedule_delay_millis"],
        max_export_batch_size=batch["max_export_batch_size"],
        export_timeout_millis=batch["export_timeout_millis"],
    ))
    trace.set_tracer_provider(provider)
    # restate-sdk leaves RestateTracer unannotated
    _tracer = RestateTracer(provider.get_tracer("landlord_restate.services"))  # type: ignore[no-untyped-call]
    return True


def _exporter(settings: ExportSettings) -> Any:
    """The OTLP exporter the settings ask for: http/protobuf (the default, in the `otel`
    extra) or grpc (needs opentelemetry-exporter-otlp-proto-grpc)."""
    if settings.protocol == "grpc":
        try:
            grpc: Any = importlib.import_module(
                "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"
            )
        except ImportError:
            raise ConfigError(
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc needs opentelemetry-exporter-otlp-proto-grpc "
                "installed (or use http/protobuf, which the otel extra brings)",
                key="OTEL_EXPORTER_OTLP_PROTOCOL",
            ) from None
        return grpc.OTLPSpanExporter(endpoint=settings.endpoint, timeout=settings.timeout)
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    compression = Compression(settings.compression) if settings.compression else None
    return OTLPSpanExporter(endpoint=settings.endpoint, timeout=settings.timeout,
                            compression=compression)


@contextlib.contextmanager
def span(name: str, **attributes: str) -> Iterator[None]:
    """A span under the invocation attempt (nothing when tracing is off or replaying)."""
    if _tracer is None:
        yield
        return
    with _tracer.start_as_current_span(
        name, attributes={f"landlord.{k}": v for k, v in attributes.items() if v}
    ):
        yield
