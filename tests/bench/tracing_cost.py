"""What tracing costs: starts with the provider's spans on and off, shim completions with
the deployment's spans on and off (lines 10 and 11, last: a tracer provider stays set).

Both sides run in alternating rounds, as every other line does, so a machine that slows
down during the line slows both alike."""

from __future__ import annotations

import contextlib
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs

from landlord_restate import ExecutionInput, RestateConfig, RestateProvider
from landlord_restate.testing import DeploymentProcess
from tests.bench import ROOT, SERVICE, Bench, Run, gated, line
from tests.bench.core import completions

#: rounds a side; a round of 500 starts lasts under a second, so line 10 takes 8 a side
ROUNDS = 4


@contextlib.contextmanager
def tracing_off() -> Iterator[None]:
    """The provider as an application without OpenTelemetry sees it: its tracing looks for
    `opentelemetry.trace` among the loaded modules, so the round hides that module (a
    tracer provider, once set, cannot be unset)."""
    hidden = sys.modules.pop("opentelemetry.trace", None)
    try:
        yield
    finally:
        if hidden is not None:
            sys.modules["opentelemetry.trace"] = hidden


def _counting_exporter() -> Any:
    """An exporter that counts spans and drops them, as an application's exporter sends
    them away (the SDK's in-memory exporter keeps every span alive, a growing heap no
    application has)."""
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

    class Counting(SpanExporter):
        exported = 0

        def export(self, spans: Any) -> SpanExportResult:
            self.exported += len(spans)
            return SpanExportResult.SUCCESS

    return Counting()


async def tracing_cost(bench: Bench, config: RestateConfig, base: Path, n: int = 500) -> None:
    """Lines 10 and 11: starts through the provider and shim completions, with tracing off
    and on (the provider's spans through the SDK's batch processor to an exporter that
    drops them; the deployment's over OTLP to a receiver), in alternating rounds."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from landlord_restate.trace_tree import TraceCollector

    provider = TracerProvider()
    exporter = _counting_exporter()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    workflow_id = await bench.workflow("Noop")
    run = uuid.uuid4().hex[:6]

    async def starts(prefix: str) -> float:
        async def start(i: int) -> Any:
            return await bench.provider.start_execution(
                workflow_id, ExecutionInput(execution_name=f"{prefix}{run}{i}", input={}))

        rate = n / await gated(n, start)
        await bench.drain()
        return rate

    off: list[float] = []
    on: list[float] = []
    for r in range(2 * ROUNDS):
        with tracing_off():
            off.append(await starts(f"off{r}-"))
        on.append(await starts(f"on{r}-"))
    provider.force_flush()
    on_rate, off_rate = sum(on) / len(on), sum(off) / len(off)
    bench.add("10. starts/s, provider tracing off / on", f"{on_rate:.0f}/s (on)",
              f"{off_rate:.0f}/s (off)",
              f"{on_rate / off_rate:.2f}x ({exporter.exported} spans)")

    collector = TraceCollector()
    async with collector.serving():
        env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": "BenchTraced",
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces"}
        traced = DeploymentProcess(base / "hypercorn-traced.log", env=env,
                                   app="tests.bench_app:app")
        async with traced, RestateProvider(attrs.evolve(
            config, deployment_url=traced.url, service_name="BenchTraced")) as other:
            plain: list[float] = []
            with_spans: list[float] = []
            for _ in range(ROUNDS - 1):
                with tracing_off():
                    plain.append(await completions(bench, SERVICE, bench.provider, n))
                    with_spans.append(await completions(bench, "BenchTraced", other, n))
    plain_rate, spans_rate = sum(plain) / len(plain), sum(with_spans) / len(with_spans)
    bench.add("11. shim completions/s, deployment tracing off / on", f"{spans_rate:.0f}/s (on)",
              f"{plain_rate:.0f}/s (off)",
              f"{spans_rate / plain_rate:.2f}x ({len(collector.spans)} spans)")


@line("10", order=1000)  # last on the shared stack: it leaves a tracer provider set
async def _line_10(run: Run) -> None:
    await tracing_cost(run.bench, run.config, run.base)


line("11", order=1000)(_line_10)  # line 10's run prints line 11 too
