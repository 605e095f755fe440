"""`make run`: a local Restate stack, one TenantProvisioning execution, then serve until Ctrl-C.

The tenant is provisioned through Landlord's in-memory `mock` compute provider, and the
compute result printed. With `LANDLORD_RESTATE_DEMO_COMPUTE=docker` it goes through the
`docker` provider to the machine's Docker (DOCKER_HOST, else the default socket): a real
container, whose endpoint is printed, destroyed (a `delete` run) on Ctrl-C.
`LANDLORD_RESTATE_DEMO_IMAGE` names another image than busybox. With
`LANDLORD_RESTATE_DEMO_MECHANISM=lambda` the handlers run as an AWS Lambda function, which
restate-server invokes through its own Lambda client (a local Invoke API and STS:
nothing calls AWS), in request/response mode.

This is an application entry point, so unlike the library it configures loguru's sink.
Ctrl-C, SIGTERM and SIGHUP (a closed terminal) stop it the same way: the server and the
deployment are stopped cleanly. When it dies without a chance to (`kill -9`), they end with
it anyway (see `landlord_restate.testing._processes`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from loguru import logger
from rich.console import Console

from landlord_restate.rendering import status_view
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.provider import RestateProvider
from landlord_restate.testing import (
    DeploymentProcess,
    LambdaProcess,
    LocalCluster,
    ServerProcess,
)
from landlord_restate.testing._binaries import project_root
from landlord_restate.testing._ports import PortInUseError, check_ports_free
from landlord_restate.trace_tree import TraceCollector, render_tree
from landlord_restate.workflow.types import (
    ExecutionInput,
    ExecutionState,
    ExecutionStatus,
    ProvisionRequest,
    WorkflowSpec,
)

INGRESS_PORT, ADMIN_PORT, DEPLOYMENT_PORT, NODE_PORT = 8080, 9070, 9080, 5122
#: `LANDLORD_RESTATE_DEMO_PORTS=ingress,admin,deployment,node-to-node` moves `make run` off
#: its default ports (when another process holds them)
PORTS_ENV = "LANDLORD_RESTATE_DEMO_PORTS"
#: `make cluster`: node i listens on these plus i (ingress, admin, node-to-node)
CLUSTER_PORTS = (28080, 29070, 25122)
DEMO_SPEC = WorkflowSpec(
    workflow_id="tenant-provisioning",
    provider_type="restate",
    name="Tenant provisioning",
    description="Provision, update or remove a tenant's compute (Landlord's built-in workflow)",
    definition={"handler": "TenantProvisioning"},
)
#: `mock` (the default) or `docker`: the compute provider the demo tenant is provisioned on
COMPUTE_ENV = "LANDLORD_RESTATE_DEMO_COMPUTE"
#: the image of the demo tenant's container (docker)
IMAGE_ENV = "LANDLORD_RESTATE_DEMO_IMAGE"
DEFAULT_IMAGE = "busybox:1.36"
COMPUTE_CHOICES = ("mock", "docker")
#: `self-hosted` (the default) or `lambda`: how restate-server reaches the handlers
MECHANISM_ENV = "LANDLORD_RESTATE_DEMO_MECHANISM"
MECHANISM_CHOICES = ("self-hosted", "lambda")
DEMO_TENANT = "acme"


def demo_compute(env: Mapping[str, str] | None = None) -> str:
    """The compute provider the demo uses: $LANDLORD_RESTATE_DEMO_COMPUTE, else mock."""
    chosen = (os.environ if env is None else env).get(COMPUTE_ENV, "").strip() or "mock"
    if chosen not in COMPUTE_CHOICES:
        raise SystemExit(f"{COMPUTE_ENV}={chosen!r}: want one of {', '.join(COMPUTE_CHOICES)}")
    return chosen


def demo_mechanism(env: Mapping[str, str] | None = None) -> str:
    """How the demo's handlers are deployed: $LANDLORD_RESTATE_DEMO_MECHANISM, else
    self-hosted (hypercorn)."""
    chosen = (os.environ if env is None else env).get(MECHANISM_ENV, "").strip() or "self-hosted"
    if chosen not in MECHANISM_CHOICES:
        raise SystemExit(f"{MECHANISM_ENV}={chosen!r}: want one of {', '.join(MECHANISM_CHOICES)}")
    return chosen


def desired_config(compute: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The demo tenant's desired configuration: for docker, a busybox (or
    $LANDLORD_RESTATE_DEMO_IMAGE) serving a page on port 8080, published on a free port."""
    if compute != "docker":
        return {"image": "ghcr.io/acme/app:1.4.2", "replicas": 2}
    page = f"hello from tenant {DEMO_TENANT}"
    return {
        "image": (os.environ if env is None else env).get(IMAGE_ENV) or DEFAULT_IMAGE,
        "command": ["sh", "-c", f"mkdir -p /www && echo '{page}' > /www/index.html && "
                                "exec httpd -f -p 8080 -h /www"],
        "ports": [{"container_port": 8080}],
    }


async def docker_problem() -> str | None:
    """Why the machine's Docker cannot be used (no daemon answers), or None."""
    from landlord_restate.compute.docker import create
    from landlord_restate.compute.errors import ComputeError

    async with create({}) as docker:
        try:
            await docker.ping()
        except ComputeError as exc:
            return exc.message
    return None


def worker_env(compute: str, folder: Path) -> dict[str, str]:
    """What the demo's worker is told about compute: the provider, and for docker a
    Landlord config file whose `compute.docker` publishes ports on 127.0.0.1 only."""
    env = {"WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": compute}
    if compute == "docker":
        folder.mkdir(parents=True, exist_ok=True)
        config = folder / "demo-config.yaml"
        config.write_text(yaml.safe_dump({"compute": {"docker": {"host_ip": "127.0.0.1"}}}))
        env["LANDLORD_CONFIG"] = str(config)
    return env


#: fields every provider line carries; printed once at start instead
_QUIET_FIELDS = frozenset({"provider", "endpoint", "admin"})


def _log_format(record: Any) -> str:
    fields = " ".join(
        f"{k}={v}" for k, v in record["extra"].items() if k not in _QUIET_FIELDS
    ).replace("{", "{{").replace("}", "}}")
    return "<green>{time:HH:mm:ss}</green> {level:<7} {message} <dim>" + fields + "</dim>\n"


class _Interrupts:
    """SIGINT, SIGTERM and SIGHUP: while starting, cancel the start (what started is stopped
    on the way out); while serving, end the serving, which stops the stack."""

    def __init__(self) -> None:
        self._task = asyncio.current_task()
        self._serving = False
        self._stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._received)

    def _received(self) -> None:
        if self._serving:
            self._stop.set()
        elif self._task is not None:
            self._task.cancel()

    async def serve(self) -> None:
        """Wait for a signal."""
        self._serving = True
        await self._stop.wait()


def demo_ports(env: Mapping[str, str] | None = None) -> tuple[int, int, int, int]:
    """(ingress, admin, deployment, node-to-node): the defaults, or $LANDLORD_RESTATE_DEMO_PORTS."""
    raw = (os.environ if env is None else env).get(PORTS_ENV, "").strip()
    if not raw:
        return INGRESS_PORT, ADMIN_PORT, DEPLOYMENT_PORT, NODE_PORT
    parts = [part.strip() for part in raw.split(",")]
    if len(parts) != 4 or not all(p.isdigit() and 0 < int(p) < 65536 for p in parts):
        raise SystemExit(f"{PORTS_ENV}={raw!r}: want four ports, ingress,admin,deployment,node "
                         f"(e.g. 18080,19070,19080,15122)")
    ingress, admin, deployment, node = (int(p) for p in parts)
    return ingress, admin, deployment, node


def _ports_taken(error: PortInUseError, other_ports: str | None) -> str:
    """What to print when a port is taken: which, by whom, and how to get past it."""
    stop = f"stop it (kill {error.pid})" if error.pid else "stop what holds it"
    instead = f", or run on other ports: {PORTS_ENV}={other_ports} make run" if other_ports else ""
    return f"cannot start: {error}\n{stop}{instead}"


def _configure_logging() -> None:
    logger.remove()
    logger.add(sys.stderr, level="INFO", format=_log_format)
    logger.enable("landlord_restate")


def _caller_tracing() -> Any:
    """The demo as an application that traces: an SDK tracer provider keeping its spans in
    memory (None when the dev extras with the OpenTelemetry SDK are not installed)."""
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
            InMemorySpanExporter,
        )
    except ImportError:
        return None
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "make-run"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


def _as_dicts(exporter: Any) -> list[dict[str, Any]]:
    return [{
        "name": s.name, "service": "make-run", "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent": format(s.parent.span_id, "016x") if s.parent else "",
        "start": s.start_time, "end": s.end_time,
    } for s in exporter.get_finished_spans()]


async def run_demo(
    config: RestateConfig, started: float, collector: TraceCollector | None = None,
    compute: str = "mock",
) -> ExecutionStatus:
    """Create the demo workflow, run one execution to its end, print status and history,
    the compute result and, when spans were collected, the execution's trace as a tree."""
    exporter = _caller_tracing() if collector is not None else None
    if exporter is None:
        return await _run_execution(config, started, compute)
    from opentelemetry import trace

    with trace.get_tracer("make-run").start_as_current_span("make run demo"):
        status = await _run_execution(config, started, compute)
    trace_id = status.metadata.get("trace_id")
    if collector is not None and trace_id:
        await asyncio.sleep(1.0)  # the server and the deployment export in batches
        collector.add(_as_dicts(exporter))
        print(f"\ntrace {trace_id}")
        print(render_tree(collector.spans, trace_id))
    return status


async def _run_execution(config: RestateConfig, started: float, compute: str) -> ExecutionStatus:
    async with RestateProvider(config) as provider:
        await provider.create_workflow(DEMO_SPEC)
        request = {
            "tenant_id": DEMO_TENANT,
            "operation": "provision",
            "desired_config": desired_config(compute),
        }
        result = await provider.start_execution(
            DEMO_SPEC.workflow_id,
            ExecutionInput(
                execution_name=f"demo-{int(time.time())}-{uuid.uuid4().hex[:6]}",
                input=request,
                trigger_source="make-run",
            ),
        )
        status = await provider.wait_execution(result.execution_id, timeout=120)
    print()
    Console(highlight=False, soft_wrap=True).print(status_view(status))
    print(f"\nend to end (stack start to terminal status): {time.monotonic() - started:.1f}s")
    if status.state is ExecutionState.SUCCEEDED:
        print(f"\ncompute result ({compute}):")
        print(json.dumps(status.output, indent=2))
        for endpoint in (status.output or {}).get("endpoints") or []:
            print(f"tenant {DEMO_TENANT} answers at http://{endpoint['address']}:"
                  f"{endpoint['port']}/")
    return status


async def destroy_tenant(config: RestateConfig) -> ExecutionStatus:
    """A `delete` run for the demo tenant, to its end: its container goes."""
    async with RestateProvider(config) as provider:
        started = await provider.invoke(DEMO_SPEC.workflow_id, ProvisionRequest(
            tenant_id=DEMO_TENANT, operation="delete"), trigger_source="make-run")
        status = await provider.wait_execution(started.execution_id, timeout=120)
    if status.state is ExecutionState.SUCCEEDED:
        print(f"tenant {DEMO_TENANT} destroyed: {json.dumps(status.output)}", flush=True)
    else:
        error = status.error.message if status.error else status.state.value
        print(f"tenant {DEMO_TENANT} not destroyed: {error}", file=sys.stderr, flush=True)
    return status


async def main() -> int:
    """Run the demo on one server; the exit status is 0 when the execution succeeded, 1 when
    it did not or the stack could not start, 130 when a signal ended the start-up."""
    _configure_logging()
    interrupts = _Interrupts()
    ingress, admin, deployment_port, node = demo_ports()
    compute = demo_compute()
    if compute == "docker":
        problem = await docker_problem()
        if problem is not None:
            print(f"cannot run the docker demo: {problem}\nstart Docker (or point DOCKER_HOST "
                  f"at a daemon), or run without {COMPUTE_ENV} to provision through mock",
                  file=sys.stderr)
            return 1
    try:
        check_ports_free({ingress: "restate-server ingress", admin: "restate-server admin",
                          node: "restate-server node-to-node",
                          deployment_port: "the handler deployment"})
    except PortInUseError as error:
        print(_ports_taken(error, "18080,19070,19080,15122"), file=sys.stderr)
        return 1
    try:
        return await _main(interrupts, ingress, admin, deployment_port, node, compute,
                           demo_mechanism())
    except asyncio.CancelledError:
        print("interrupted while starting; stopped", file=sys.stderr)
        return 130


async def _main(interrupts: _Interrupts, ingress: int, admin: int, deployment_port: int,
                node: int, compute: str, mechanism: str) -> int:
    root = project_root()
    data = root / ".restate"
    collector = TraceCollector()
    async with collector.serving():
        # the server and the deployment export their spans to this process, which prints
        # the demo execution's trace
        traced = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
                  "OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "landlord-deployment",
                  **worker_env(compute, data)}
        deployment: DeploymentProcess
        server_env = {"RESTATE_TRACING_ENDPOINT": collector.url.replace("http://", "otlp+http://"),
                      "OTEL_BSP_SCHEDULE_DELAY": "200"}
        if mechanism == "lambda":
            function = LambdaProcess(data / "lambda.log", port=deployment_port, env=traced)
            deployment, server_env = function, server_env | function.server_env()
            # a data dir of its own: runs pinned to the function must never meet a server
            # started without the local Lambda endpoint (it would call AWS)
            server_data = data / "data-lambda"
        else:
            deployment, server_data = DeploymentProcess(
                data / "hypercorn.log", port=deployment_port, env=traced), data / "data"
        server = ServerProcess(
            server_data, ingress_port=ingress, admin_port=admin, node_port=node,
            config_file=root / "restate.toml", env=server_env,
        )
        return await _serve_demo(server, deployment, collector, interrupts, compute)


async def _serve_demo(
    server: ServerProcess, deployment: DeploymentProcess, collector: TraceCollector,
    interrupts: _Interrupts, compute: str,
) -> int:
    started = time.monotonic()
    async with server, deployment:
        print(f"restate-server  ingress {server.ingress_url}  admin {server.admin_url}")
        print(f"Restate UI      {server.admin_url}/ui/")
        if isinstance(deployment, LambdaProcess):
            print("mechanism       lambda: restate-server invokes services.app:app as an AWS "
                  "Lambda function through its own Lambda client (a local Invoke API and STS; "
                  "nothing calls AWS)")
            print(f"deployment      {deployment.function_arn}  (Invoke API {deployment.url}, "
                  f"compute: {compute})")
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   **deployment.provider_settings())
        else:
            print(f"deployment      {deployment.url}  (hypercorn services.app:app, compute: "
                  f"{compute})")
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   deployment_url=deployment.url)
        status = await run_demo(config, started, collector, compute)
        print("serving; press Ctrl-C to stop restate-server and the deployment", flush=True)
        await interrupts.serve()
        if compute == "docker" and status.state is ExecutionState.SUCCEEDED:
            await destroy_tenant(config)
    print("stopped")
    return 0 if status.state is ExecutionState.SUCCEEDED else 1


async def main_cluster() -> int:
    """`make cluster`: the demo on three restate-server nodes, through all three."""
    _configure_logging()
    interrupts = _Interrupts()
    ports = {port + i: f"node n{i + 1} {what}" for i in range(3) for port, what in
             zip(CLUSTER_PORTS, ("ingress", "admin", "node-to-node"), strict=True)}
    try:
        check_ports_free({**ports, DEPLOYMENT_PORT: "the handler deployment"})
    except PortInUseError as error:
        print(_ports_taken(error, None), file=sys.stderr)
        return 1
    try:
        return await _main_cluster(interrupts)
    except asyncio.CancelledError:
        print("interrupted while starting; stopped", file=sys.stderr)
        return 130


async def _main_cluster(interrupts: _Interrupts) -> int:
    data = project_root() / ".restate"
    cluster = LocalCluster(data / "cluster", first_ports=CLUSTER_PORTS)
    deployment = DeploymentProcess(data / "hypercorn-cluster.log", port=DEPLOYMENT_PORT)
    started = time.monotonic()
    async with cluster, deployment:
        for i, node in enumerate(cluster.nodes, start=1):
            print(f"node n{i}         ingress {node.ingress_url}  admin {node.admin_url}  "
                  f"node-to-node {cluster.fabric_urls[i - 1]}")
        print(f"Restate UI      {cluster.nodes[0].admin_url}/ui/  (any node's admin serves it)")
        print(f"deployment      {deployment.url}  (hypercorn services.app:app)")
        config = RestateConfig(
            endpoint=",".join(cluster.ingress_urls),
            admin_endpoint=",".join(cluster.admin_urls),
            deployment_url=deployment.url,
        )
        print(f"provider        endpoint={config.endpoint}")
        status = await run_demo(config, started)
        print("serving; press Ctrl-C to stop the cluster and the deployment", flush=True)
        await interrupts.serve()
    print("stopped")
    return 0 if status.state is ExecutionState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main_cluster() if "--cluster" in sys.argv[1:] else main()))
