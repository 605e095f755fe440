"""Handler spans: `run`, each step, each durable sleep and the compute-callback wait.

Off unless the deployment's environment names an OTLP endpoint
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, with the other
standard `OTEL_*` variables: protocol, service name, headers); then `services.app` sets up
the SDK and an OTLP/HTTP exporter once, and spans are parented on Restate's invocation
attempt through restate-sdk's `RestateTracer`, which also emits nothing while a journal
is replayed (work already journaled gets no second span). Off, nothing of OpenTelemetry is
imported: on Lambda every import is cold-start time.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from landlord_restate.workflow.errors import ConfigError

_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_tracer: Any | None = None


def configure(env: Mapping[str, str] = os.environ) -> bool:
    """Set up span export when the environment asks for it; answer whether it did."""
    global _tracer
    if not any(env.get(name) for name in _ENDPOINT_VARIABLES):
        return False
    if _tracer is not None:
        return True
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from restate.ext.tracing import RestateTracer

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME",
                                                        "landlord-restate-deployment")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
    trace.set_tracer_provider(provider)
    # restate-sdk leaves RestateTracer unannotated
    _tracer = RestateTracer(provider.get_tracer("landlord_restate.services"))  # type: ignore[no-untyped-call]
    return True


def _exporter(env: Mapping[str, str]) -> Any:
    """The OTLP exporter the standard variables ask for: http/protobuf (the default, in the
    `otel` extra) or grpc (needs opentelemetry-exporter-otlp-proto-grpc)."""
    protocol = (env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf")
    if protocol == "grpc":
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
        return grpc.OTLPSpanExporter()
    if protocol != "http/protobuf":
        raise ConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL {protocol!r}: this deployment exports "
            "http/protobuf or grpc", key="OTEL_EXPORTER_OTLP_PROTOCOL",
        )
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


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
