"""What tracing costs: starts with the provider's spans on and off, shim completions with
the deployment's spans on and off (lines 10 and 11, last: a tracer provider stays set)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import attrs

from landlord_restate import ExecutionInput, RestateConfig, RestateProvider
from landlord_restate.testing import DeploymentProcess
from tests.bench import ROOT, SERVICE, Bench, Run, gated, line
from tests.bench.core import completions


async def tracing_cost(bench: Bench, config: RestateConfig, base: Path, n: int = 500) -> None:
    """Lines 10 and 11: starts through the provider and shim completions, with tracing off
    and on (the provider's spans to an in-memory SDK exporter; the deployment's over OTLP
    to a receiver), in one run. Last: a tracer provider, once set, stays set."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from landlord_restate.trace_tree import TraceCollector

    workflow_id = await bench.workflow("Noop")
    run = uuid.uuid4().hex[:6]

    async def start(i: int, prefix: str) -> Any:
        return await bench.provider.start_execution(
            workflow_id, ExecutionInput(execution_name=f"{prefix}{run}{i}", input={}))

    off = 2000 / await gated(2000, lambda i: start(i, "off"))
    await bench.drain()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter()))
    trace.set_tracer_provider(provider)
    on = 2000 / await gated(2000, lambda i: start(i, "on"))
    await bench.drain()
    bench.add("10. starts/s, provider tracing off / on", f"{on:.0f}/s (on)", f"{off:.0f}/s (off)",
              f"{on / off:.2f}x")
    plain = await completions(bench, SERVICE, bench.provider, n)
    collector = TraceCollector()
    async with collector.serving():
        env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": "BenchTraced",
               "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces"}
        traced = DeploymentProcess(base / "hypercorn-traced.log", env=env,
                                   app="tests.bench_app:app")
        async with traced, RestateProvider(attrs.evolve(
            config, deployment_url=traced.url, service_name="BenchTraced")) as other:
            with_spans = await completions(bench, "BenchTraced", other, n)
    bench.add("11. shim completions/s, deployment tracing off / on", f"{with_spans:.0f}/s (on)",
              f"{plain:.0f}/s (off)", f"{with_spans / plain:.2f}x ({len(collector.spans)} spans)")




@line("10", order=1000)  # last on the shared stack: it leaves a tracer provider set
async def _line_10(run: Run) -> None:
    await tracing_cost(run.bench, run.config, run.base)


line("11", order=1000)(_line_10)  # line 10's run prints line 11 too
