"""A tiny OTLP/HTTP receiver and a text rendering of one trace: what `make run` shows.

It receives what restate-server and the handler deployment export, decodes it with the
official `opentelemetry-proto` types, and prints the demo execution's trace as a tree.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web


class TraceCollector:
    """Spans received over OTLP/HTTP (protobuf), kept as plain dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.url = ""

    async def _receive(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        message = ExportTraceServiceRequest.FromString(await request.read())
        for resource in message.resource_spans:
            service = next((a.value.string_value for a in resource.resource.attributes
                            if a.key == "service.name"), "")
            for scope in resource.scope_spans:
                for span in scope.spans:
                    self.spans.append({
                        "name": span.name, "service": service,
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent": span.parent_span_id.hex(),
                        "start": span.start_time_unix_nano, "end": span.end_time_unix_nano,
                    })
        return web.Response(status=200, content_type="application/x-protobuf")

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[TraceCollector]:
        """Listen on a free loopback port (`self.url`) while the block runs."""
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._receive)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield self
        finally:
            await runner.cleanup()

    def add(self, spans: list[dict[str, Any]]) -> None:
        """Spans collected elsewhere (the caller's own, from its SDK)."""
        self.spans.extend(spans)


def render_tree(spans: list[dict[str, Any]], trace_id: str) -> str:
    """The spans of one trace as an indented tree, children in start order."""
    ours = [s for s in spans if s["trace_id"] == trace_id]
    ids = {s["span_id"] for s in ours}
    children: dict[str, list[dict[str, Any]]] = {}
    for span in ours:
        parent = span["parent"] if span["parent"] in ids else ""
        children.setdefault(parent, []).append(span)
    lines: list[str] = []

    def walk(parent: str, depth: int) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s["start"]):
            took = (span["end"] - span["start"]) / 1e6
            lines.append(f"{'  ' * depth}{span['name']}  [{span['service']}, {took:.1f} ms]")
            walk(span["span_id"], depth + 1)

    walk("", 0)
    return "\n".join(lines)
