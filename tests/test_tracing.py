"""OpenTelemetry from the provider's side: spans per operation, and the caller's trace
continued by restate-server (it records the trace id of every invocation it was given).

Each case runs in a fresh interpreter: configuring a tracer provider is process-wide.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from landlord_restate import ExecutionInput, ExecutionState, RestateConfig, RestateProvider
from landlord_restate.testing import DeploymentProcess, LocalRestate
from tests.conftest import (
    ROOT,
    SHARED_SERVICE,
    TEST_HANDLERS,
    deployment_env,
    spec_for,
    unique_id,
)
from tests.fakes import serve
from tests.waiting import wait_for, wait_marks

pytestmark = pytest.mark.timeout(120)

TRACED = textwrap.dedent("""
    import asyncio, json, os, sys, uuid
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)

    from landlord_restate import (
        ExecutionInput, RestateConfig, RestateProvider, WorkflowSpec, ExecutionNotFoundError)
    from loguru import logger

    logger.remove()
    logger.enable("landlord_restate")
    logged = []
    logger.add(lambda m: logged.append((m.record["message"], m.record["extra"].get("trace_id"),
                                        m.record["extra"].get("span_id"))), level="INFO")

    async def main():
        config = RestateConfig(
            endpoint=os.environ["ENDPOINT"], admin_endpoint=os.environ["ADMIN"],
            deployment_url=os.environ["DEPLOYMENT"], service_name=os.environ["SERVICE"])
        workflow_id = "traced-" + uuid.uuid4().hex[:8]
        async with RestateProvider(config) as restate:
            with trace.get_tracer("caller").start_as_current_span("reconcile") as caller:
                await restate.create_workflow(WorkflowSpec(
                    workflow_id=workflow_id, definition={"handler": "FiveSteps"}))
                started = await restate.start_execution(workflow_id, ExecutionInput(input={}))
                status = await restate.wait_execution(started.execution_id, timeout=30)
                try:
                    await restate.get_execution_status("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
                except ExecutionNotFoundError:
                    pass
            rows = await restate.admin.query(
                "SELECT trace_id FROM sys_invocation WHERE id = '%s'" % started.execution_id)
            rows = rows or [{}]
        trace_id = format(caller.get_span_context().trace_id, "032x")
        spans = [{"name": s.name, "trace_id": format(s.context.trace_id, "032x"),
                  "parent": format(s.parent.span_id, "016x") if s.parent else None,
                  "span_id": format(s.context.span_id, "016x"),
                  "attributes": dict(s.attributes), "status": s.status.status_code.name,
                  "events": [e.name for e in s.events]}
                 for s in exporter.get_finished_spans()]
        print(json.dumps({"caller": trace_id, "server_trace_id": rows[0].get("trace_id"),
                          "execution_id": started.execution_id, "state": status.state.value,
                          "status_trace_id": status.metadata.get("trace_id"), "logged": logged,
                          "spans": spans}))

    asyncio.run(main())
""")

UNTRACED = textwrap.dedent("""
    import asyncio, os, sys
    from landlord_restate import RestateConfig, RestateProvider

    async def main():
        config = RestateConfig(endpoint=os.environ["ENDPOINT"], admin_endpoint=os.environ["ADMIN"])
        async with RestateProvider(config) as restate:
            await restate.list_executions(limit=1)
    asyncio.run(main())
    print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
""")


def run_script(script: str, config: RestateConfig) -> str:
    """Run `script` in a fresh interpreter against the session's server; answer stdout."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ENDPOINT": config.endpoint,
           "ADMIN": config.admin_endpoint, "DEPLOYMENT": str(config.deployment_url),
           "SERVICE": SHARED_SERVICE}
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@attrs.frozen
class TracedStack:
    """A server and deployment exporting spans, and the span batches received so far."""

    config: RestateConfig
    batches: list[bytes]
    deployment: DeploymentProcess


@pytest.fixture
async def traced_stack(tmp_path: Path) -> AsyncIterator[TracedStack]:
    """restate-server and the deployment, both exporting OTLP/HTTP spans to a receiver of
    this test; answers their config and the span batches the receiver got."""
    batches: list[bytes] = []

    async def receive(request: web.Request) -> web.Response:
        batches.append(await request.read())
        return web.Response(status=200, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", receive)  # /v1/traces, or as configured
    async with serve(app) as receiver, LocalRestate(
        handlers=[TEST_HANDLERS], service_name=SHARED_SERVICE, base_dir=tmp_path,
        config_file=ROOT / "restate.toml",
        server_env={
            "RESTATE_TRACING_ENDPOINT": receiver.replace("http://", "otlp+http://"),
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
        env=deployment_env(
            OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=f"{receiver}/v1/traces",
            OTEL_BSP_SCHEDULE_DELAY="100", OTEL_SERVICE_NAME="landlord-deployment",
        ),
    ) as local:
        yield TracedStack(local.config(), batches, local.deployment)


def decoded(batches: list[bytes]) -> list[dict[str, Any]]:
    """Every span in the batches, decoded with the official OTLP protobuf types."""
    spans = []
    for body in batches:
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                for one in scope.spans:
                    spans.append({
                        "name": one.name, "trace_id": one.trace_id.hex(),
                        "span_id": one.span_id.hex(), "parent": one.parent_span_id.hex(),
                        "start": one.start_time_unix_nano,
                        "attributes": {a.key: a.value.string_value for a in one.attributes},
                    })
    return spans


def span_names(batches: list[bytes], execution_id: str) -> list[str]:
    """The names of the exported spans of one execution."""
    return [x["name"] for x in decoded(batches)
            if x["attributes"].get("landlord.execution_id") == execution_id]


async def test_one_trace_from_the_caller_into_restate(traced_stack: TracedStack) -> None:
    """Inside a caller's span: each operation is a child span with its ids, and
    restate-server records (and exports) the caller's trace for the invocation it started."""
    config, batches = traced_stack.config, traced_stack.batches
    result = json.loads(await asyncio.to_thread(run_script, TRACED, config))
    spans = {s["name"]: s for s in result["spans"]}
    caller = spans["reconcile"]
    for operation in ("create_workflow", "start_execution", "wait_execution",
                      "get_execution_status"):
        child = spans[f"landlord_restate.{operation}"]
        assert child["trace_id"] == result["caller"], operation
    start = spans["landlord_restate.start_execution"]
    assert start["parent"] == caller["span_id"]
    assert start["attributes"]["landlord.execution_id"] == result["execution_id"]
    assert start["attributes"]["restate.invocation.id"] == result["execution_id"]
    assert start["attributes"]["restate.service"] == SHARED_SERVICE
    workflow_id = start["attributes"]["landlord.workflow_id"]
    assert start["attributes"]["restate.key"].startswith(f"{workflow_id}.")
    # the unknown id's status call failed: the span records the error
    failed = [s for s in result["spans"] if s["name"] == "landlord_restate.get_execution_status"
              and s["status"] == "ERROR"]
    assert failed
    assert "exception" in failed[0]["events"]
    assert result["state"] == "succeeded"
    # restate-server continued the caller's trace (W3C traceparent on the ingress request)
    assert result["server_trace_id"] == result["caller"]
    assert result["status_trace_id"] == result["caller"]  # status shows it too
    # the provider's log lines written inside a span point at it
    started_lines = [line for line in result["logged"] if line[0] == "execution started"]
    assert started_lines
    assert started_lines[0][1] == result["caller"]
    assert started_lines[0][2] == start["span_id"]
    # restate-server's spans and the shim's, exported to the receiver, join the same trace
    expected_steps = [f"step step-{i}" for i in range(1, 6)]

    def arrived(exported: list[dict[str, Any]]) -> bool:
        """Everything arrived, the attempt spans the handler spans hang from too."""
        names = {x["name"] for x in exported}
        known = {x["span_id"] for x in exported}
        handler_spans = [x for x in exported if x["name"] == "run" or x["name"].startswith("step ")]
        return ({"run", *expected_steps} <= names and any(n.startswith("ingress") for n in names)
                and all(x["parent"] in known for x in handler_spans))

    exported = await wait_for(
        lambda: [x for x in decoded(batches) if x["trace_id"] == result["caller"]], arrived,
        within=10, what="the run's spans exported",
    )
    names = {x["name"] for x in exported}
    assert any(n.startswith("ingress") for n in names), names
    assert any(n.startswith("invocation") for n in names), names
    assert "run" in names, names
    steps = sorted((x for x in exported if x["name"].startswith("step ")),
                   key=lambda x: x["start"])
    assert [x["name"] for x in steps] == expected_steps  # journal order, one span each
    run = next(x for x in exported if x["name"] == "run")
    assert run["attributes"]["landlord.execution_id"] == result["execution_id"]
    # parented correctly: the ingress span of the start under the provider's span, the
    # handler spans under the invocation attempt that ran them
    by_id = {x["span_id"]: x for x in exported}
    ingress = next(x for x in exported if x["name"].startswith("ingress")
                   and x["name"].endswith("/run"))
    assert ingress["parent"] == start["span_id"]
    attempt = by_id[run["parent"]]
    assert attempt["name"].startswith("invocation-attempt"), attempt["name"]
    assert all(by_id[x["parent"]]["name"].startswith("invocation-attempt") for x in steps)
    assert all(x["attributes"]["landlord.execution_id"] == result["execution_id"]
               for x in steps)


def test_without_tracing_nothing_is_imported(shared_config: RestateConfig) -> None:
    """An application that never loaded OpenTelemetry: the provider imports none of it."""
    assert run_script(UNTRACED, shared_config) == "[]"


async def test_a_crash_gives_each_journaled_step_one_span(
    traced_stack: TracedStack, tmp_path: Path,
) -> None:
    """kill -9 of the deployment mid-run: on replay the journaled steps emit no second span."""
    config, batches = traced_stack.config, traced_stack.batches
    async with RestateProvider(config) as provider:
        spec = spec_for("SlowSteps", unique_id("crash-spans"))
        await provider.create_workflow(spec)
        marks = tmp_path / "marks"
        started = await provider.start_execution(spec.workflow_id, ExecutionInput(
            input={"step_seconds": 0.6, "steps": 3, "marks": str(marks)}))
        await wait_marks(marks, "start slow-2")  # slow-1 journaled, slow-2 in flight
        await wait_for(lambda: "step slow-1" in span_names(batches, started.execution_id),
                       what="slow-1's span exported")  # before the crash, not by the replay
        traced_stack.deployment.kill()
        await traced_stack.deployment.start()
        status = await provider.wait_execution(started.execution_id, timeout=60)
    assert status.state is ExecutionState.SUCCEEDED
    names = await wait_for(lambda: span_names(batches, started.execution_id),
                           lambda names: names.count("step slow-3") == 1,
                           within=5, what="slow-3's span exported")
    assert names.count("step slow-1") == 1, names  # journaled before the crash: replayed
    assert names.count("step slow-3") == 1, names


def test_the_deployment_refuses_an_export_protocol_it_cannot_speak() -> None:
    """An OTLP protocol the deployment has no exporter for is a ConfigError naming it."""
    from landlord_restate import ConfigError
    from services import tracing

    for protocol in ("http/json", "carrier-pigeon"):
        with pytest.raises(ConfigError) as caught:
            tracing.read_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                                   "OTEL_EXPORTER_OTLP_PROTOCOL": protocol})
        assert caught.value.key == "OTEL_EXPORTER_OTLP_PROTOCOL"


@pytest.mark.parametrize(
    ("variables", "named", "words"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "garbage"}, "OTEL_EXPORTER_OTLP_ENDPOINT",
         "no scheme"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://collector:4318"},
         "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "only http and https"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "   "}, "OTEL_EXPORTER_OTLP_ENDPOINT", "blank"),
        ({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf or grpc"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "-5"}, "OTEL_BSP_MAX_QUEUE_SIZE", "positive integer"),
        ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY", "positive integer"),
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, "OTEL_BSP_MAX_QUEUE_SIZE", "must not exceed"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-1"}, "OTEL_EXPORTER_OTLP_TIMEOUT",
         "positive number"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, "OTEL_EXPORTER_OTLP_COMPRESSION",
         "none, gzip, deflate"),
    ],
)
def test_the_deployment_refuses_tracing_settings_it_cannot_use(
    variables: dict[str, str], named: str, words: str
) -> None:
    """A tracing variable that cannot work stops create_app with a ConfigError naming it,
    before anything of OpenTelemetry is set up (empty counts as unset: tracing off)."""
    from landlord_restate import ConfigError
    from services import app, tracing

    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"} | variables
    with pytest.raises(ConfigError) as caught:
        app.create_app(env)
    assert caught.value.key == named
    assert named in str(caught.value)
    assert words in str(caught.value)
    assert tracing._tracer is None  # nothing was set up
    assert tracing.read_settings({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}) is None


class _MalformedPropagator:
    """A propagator that writes a `traceparent` no receiver can read (as a broken or
    hostile one might): a 55-character one with non-hex flags, or one with a line break."""

    def __init__(self, value: str) -> None:
        self.value = value

    def inject(self, carrier: Any, context: Any = None, setter: Any = None) -> None:
        """Write the malformed header."""
        carrier["traceparent"] = self.value

    def extract(self, carrier: Any, context: Any = None, getter: Any = None) -> Any:
        """Nothing to extract."""
        from opentelemetry.context import get_current

        return context or get_current()

    @property
    def fields(self) -> set[str]:
        """The header it writes."""
        return {"traceparent"}


@pytest.mark.parametrize("value", [
    "00-" + "a" * 32 + "-" + "b" * 16 + "-zz",  # 55 characters, flags not hex
    "00-" + "a" * 32 + "-" + "b" * 16 + "-01\r\nx-injected: 1",
])
async def test_a_malformed_traceparent_leaves_requests_untraced_not_failing(
    shared_provider: RestateProvider, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A propagator writing a malformed traceparent: every provider call still works
    against the real server, without trace context, and the log warns once."""
    import opentelemetry.trace  # noqa: F401  (the provider traces once the API is loaded)
    from loguru import logger
    from opentelemetry import propagate

    from landlord_restate.restate import tracing

    monkeypatch.setattr(tracing, "_warned", False)
    warnings: list[str] = []
    sink = logger.add(lambda m: warnings.append(m.record["message"]), level="WARNING",
                      filter=lambda r: "trace context" in r["message"])
    previous = propagate.get_global_textmap()
    propagate.set_global_textmap(_MalformedPropagator(value))  # type: ignore[arg-type]
    try:
        headers: dict[str, str] = {}
        tracing.inject(headers)
        assert headers == {}
        spec = spec_for("GoPair", unique_id("bad-parent"))
        await shared_provider.create_workflow(spec)
        started = await shared_provider.start_execution(spec.workflow_id, ExecutionInput(
            input={}))
        status = await shared_provider.wait_execution(started.execution_id, timeout=30)
        assert status.state is ExecutionState.SUCCEEDED
        assert await shared_provider.list_executions(spec.workflow_id)
    finally:
        propagate.set_global_textmap(previous)
        logger.remove(sink)
    assert len(warnings) == 1, warnings
    assert "malformed traceparent" in warnings[0]
