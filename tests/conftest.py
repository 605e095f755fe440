"""Real restate-servers and hypercorn deployments, built with the public harness
(`landlord_restate.testing.LocalRestate`) like users build theirs.

Two stacks for the whole session (one service per handler, and one service for every
handler), and one per test that crashes things. All bind 127.0.0.1 on free ports with a
temporary data dir, and are stopped at the end, also when tests fail. Tests isolate
themselves with uuid-based workflow ids.

Tests that must hold under every execution mechanism take `mechanism_provider` (or
`mechanism_private_stack`): they run once on the hypercorn deployment (`self-hosted`) and
once on a local AWS Lambda the server invokes through its own Lambda client (`lambda`,
request/response mode: every step suspends and the next invocation replays).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import io
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from loguru import logger

from landlord_restate import RestateConfig, RestateProvider, WorkflowSpec
from landlord_restate.cli import main as cli_main
from landlord_restate.testing import DeploymentProcess, LocalRestate, ServerProcess
from landlord_restate.testing._binaries import describe_machine, project_root

ROOT = project_root(Path(__file__).parent)
#: handler modules the test deployment hosts besides the built-in ones
TEST_HANDLERS = "tests.handlers"


def deployment_env(**extra: str) -> dict[str, str]:
    """Environment for a test deployment: test handlers importable and registered, and
    TenantProvisioning on Landlord's in-memory `mock` compute provider (Landlord's worker
    key), unless a test names another."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    return {"PYTHONPATH": pythonpath, "LANDLORD_RESTATE_HANDLERS": TEST_HANDLERS,
            "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "mock", **extra}


@pytest.fixture(scope="session", autouse=True)
def _library_logs() -> Iterator[None]:
    """Let the library's log lines reach pytest's captured output."""
    logger.enable("landlord_restate")
    yield
    logger.disable("landlord_restate")


def local_stack(
    base_dir: Path, service_name: str | None = None, mechanism: str = "local", *,
    handlers: str = TEST_HANDLERS, **options: Any,
) -> LocalRestate:
    """restate-server (configured by the repo's restate.toml, with its own ports and data
    dir) and a deployment hosting the test handlers: the public harness, as users run it.
    `mechanism` "lambda": the handlers on a local Lambda instead of hypercorn; `handlers`:
    the handler modules (comma-separated)."""
    return LocalRestate(
        handlers=handlers.split(","), service_name=service_name, base_dir=base_dir,
        config_file=ROOT / "restate.toml", env=deployment_env(LANDLORD_RESTATE_HANDLERS=handlers),
        execution_mechanism=mechanism, **options,
    )


@pytest.fixture(scope="session")
async def session_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalRestate]:
    """The session's server and its one-service-per-handler deployment."""
    async with local_stack(tmp_path_factory.mktemp("restate")) as local:
        yield local


@pytest.fixture(scope="session")
def restate_server(session_stack: LocalRestate) -> ServerProcess:
    """The session's restate-server."""
    return session_stack.server


@pytest.fixture(scope="session")
def deployment(session_stack: LocalRestate) -> DeploymentProcess:
    """`hypercorn services.app:app` with the test handlers, one service per handler."""
    return session_stack.deployment


@pytest.fixture(scope="session")
def config(restate_server: ServerProcess, deployment: DeploymentProcess) -> RestateConfig:
    """Provider config pointing at the session's server and deployment."""
    return RestateConfig(
        endpoint=restate_server.ingress_url,
        admin_endpoint=restate_server.admin_url,
        deployment_url=deployment.url,
    )


@pytest.fixture
async def provider(config: RestateConfig) -> AsyncIterator[RestateProvider]:
    """An open provider, one service per handler (the default), closed after the test."""
    async with RestateProvider(config) as opened:
        yield opened


#: the one service that hosts every handler in the shared deployment
SHARED_SERVICE = "LandlordTests"


@pytest.fixture(scope="session")
async def shared_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalRestate]:
    """A server and a deployment hosting every handler in one service: any workflow id can
    use it. A stack of its own: its catalog and services never mix with the other's."""
    async with local_stack(tmp_path_factory.mktemp("restate-shared"), SHARED_SERVICE) as local:
        yield local


@pytest.fixture(scope="session")
def shared_deployment(shared_stack: LocalRestate) -> DeploymentProcess:
    """The deployment hosting every handler in the one service `SHARED_SERVICE`."""
    return shared_stack.deployment


@pytest.fixture(scope="session")
def shared_config(shared_stack: LocalRestate) -> RestateConfig:
    """Provider config with `service_name` set: every workflow runs on one service."""
    return shared_stack.config()


@pytest.fixture
async def shared_provider(shared_config: RestateConfig) -> AsyncIterator[RestateProvider]:
    """An open provider on the shared service: tests use unique workflow ids with it."""
    async with RestateProvider(shared_config) as opened:
        yield opened


#: the mechanisms the core and durability cases run under: hypercorn at a URL, and a
#: local AWS Lambda reached through restate-server's Lambda client
MECHANISMS = ("self-hosted", "lambda")
#: for a test taking `mechanism_provider` or `mechanism_private_stack`: self-hosted in
#: `make test`, Lambda in `make soak` only (the suite's time budget keeps the core cases)
LAMBDA_IN_SOAK = pytest.mark.parametrize(
    "mechanism", ["self-hosted", pytest.param("lambda", marks=pytest.mark.soak)], indirect=True
)
#: the handler modules a Lambda stack hosts: the test handlers and those showing what
#: Lambda's request/response path changes
LAMBDA_HANDLERS = f"{TEST_HANDLERS},tests.lambda_handlers"


@pytest.fixture(scope="session")
async def lambda_shared_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[LocalRestate]:
    """A server and a local Lambda hosting every handler (`LAMBDA_HANDLERS`) in the one
    service `SHARED_SERVICE` (started only when a test asks for the lambda mechanism)."""
    async with local_stack(tmp_path_factory.mktemp("restate-lambda"), SHARED_SERVICE,
                           "lambda", handlers=LAMBDA_HANDLERS) as local:
        yield local


@pytest.fixture(params=MECHANISMS)
def mechanism(request: pytest.FixtureRequest) -> str:
    """The execution mechanism this run of the test uses."""
    return str(request.param)


@pytest.fixture
def mechanism_stack(mechanism: str, request: pytest.FixtureRequest) -> LocalRestate:
    """The session's shared-service stack of this mechanism."""
    name = "lambda_shared_stack" if mechanism == "lambda" else "shared_stack"
    stack: LocalRestate = request.getfixturevalue(name)
    return stack


@pytest.fixture
async def mechanism_provider(
    mechanism: str, mechanism_stack: LocalRestate
) -> AsyncIterator[RestateProvider]:
    """An open provider on the shared service, configured for this mechanism (a URL for
    self-hosted, the function's ARN with auth_type iam for lambda)."""
    async with RestateProvider(mechanism_stack.config(execution_mechanism=mechanism)) as opened:
        yield opened


@attrs.frozen
class Stack:
    """A private server, deployment and open provider: for tests that crash things."""

    server: ServerProcess
    deployment: DeploymentProcess
    provider: RestateProvider


@pytest.fixture
async def private_stack(tmp_path: Path) -> AsyncIterator[Stack]:
    """restate-server + hypercorn of this test alone (the public harness), stopped at the end."""
    async with local_stack(tmp_path, "Crash") as local, \
            RestateProvider(local.config()) as provider:
        yield Stack(local.server, local.deployment, provider)


@pytest.fixture
async def mechanism_private_stack(mechanism: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """A private stack of this mechanism: its deployment is hypercorn or the local Lambda's
    function host, either killed with `deployment.kill()`."""
    handlers = LAMBDA_HANDLERS if mechanism == "lambda" else TEST_HANDLERS
    async with local_stack(tmp_path, "Crash", mechanism, handlers=handlers) as local, \
            RestateProvider(local.config()) as provider:
        yield Stack(local.server, local.deployment, provider)


@pytest.fixture(scope="session")
def cli_env(shared_config: RestateConfig) -> dict[str, str]:
    """Environment reaching the session's server, the way an operator would set it."""
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_RESTATE_")},
        "WORKFLOW_RESTATE_ENDPOINT": shared_config.endpoint,
        "WORKFLOW_RESTATE_ADMIN_ENDPOINT": shared_config.admin_endpoint,
        "WORKFLOW_RESTATE_DEPLOYMENT_URL": str(shared_config.deployment_url),
        "WORKFLOW_RESTATE_SERVICE_NAME": SHARED_SERVICE,
        "LANDLORD_CONFIG": "",
        "PYTHONPATH": str(ROOT),
    }


def cli(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `landlord-restate ARGS` with `env` as its environment; answer what the finished
    process would: exit code, stdout, stderr.

    It runs the console script's `main` in this process, in a thread of its own (the
    script's own event loop), which spares a Python start per call; what differs in a
    real process (the entry point, exit codes through `sys.exit`) is tested once with
    `cli_process`."""
    out, err = io.StringIO(), io.StringIO()

    def run() -> int:
        saved = dict(os.environ)
        streams = sys.stdin, sys.stdout, sys.stderr
        os.environ.clear()
        os.environ.update(env)
        sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin or ""), out, err
        try:
            return cli_main(list(args))
        except SystemExit as exit_:
            return exit_.code if isinstance(exit_.code, int) else 1
        finally:
            sys.stdin, sys.stdout, sys.stderr = streams
            os.environ.clear()
            os.environ.update(saved)

    with _CLI_LOCK, concurrent.futures.ThreadPoolExecutor(1) as pool:
        code = pool.submit(run).result(timeout=120)
    return subprocess.CompletedProcess(["landlord-restate", *args], code, out.getvalue(),
                                       err.getvalue())


#: one in-process CLI run at a time: each swaps the process's environment and streams
_CLI_LOCK = threading.Lock()


def cli_process(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `landlord-restate ARGS` as a real process; answer the finished process."""
    return subprocess.run(
        [sys.executable, "-m", "landlord_restate.cli", *args], env=env, input=stdin,
        capture_output=True, text=True, timeout=120, check=False, cwd=ROOT,
    )


@pytest.fixture
async def hanging_endpoint() -> AsyncIterator[str]:
    """A port that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


#: the socket behind `dead_endpoint()`, held for the life of the test process
_DEAD: list[socket.socket] = []


def dead_endpoint() -> str:
    """A loopback URL nothing can answer: a port this process holds bound and never listens
    on, so a connection is refused and no other process (a running `make run`) can take it.
    Tests that mean "Restate is not there" set it as endpoint and admin_endpoint alike."""
    if not _DEAD:
        holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        holder.bind(("127.0.0.1", 0))
        atexit.register(holder.close)
        _DEAD.append(holder)
    return f"http://127.0.0.1:{_DEAD[0].getsockname()[1]}"


def unique_id(prefix: str) -> str:
    """A workflow id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def kebab(handler: str) -> str:
    """The workflow id whose derived service is `handler`'s: 'SlowSteps' -> 'slow-steps'."""
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in handler).lstrip("-")


def spec_for(handler: str, workflow_id: str | None = None, **fields: object) -> WorkflowSpec:
    """A spec running `handler`; by default under the id whose service hosts it."""
    return WorkflowSpec(
        workflow_id=workflow_id or kebab(handler),
        provider_type="restate",
        name=handler,
        definition={"handler": handler},
        **fields,  # type: ignore[arg-type]
    )


#: the user property carrying a worker's fault reports to the controller (pytest-xdist)
_FAULT_REPORTS = "landlord_fault_reports"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    """Send the fault reports a test made with its report, so the table is printed where
    the session ends, also when the tests ran in pytest-xdist workers."""
    from tests.faults import REPORTS

    report = yield
    if report.when == "call":
        sent = item.config.stash.setdefault(_SENT, 0)
        new = REPORTS[sent:]
        if new:
            item.config.stash[_SENT] = len(REPORTS)
            report.user_properties.append((_FAULT_REPORTS, [
                attrs.asdict(r, filter=lambda a, _: a.name != "probe_errors") for r in new]))
    return report


_SENT = pytest.StashKey[int]()


def pytest_runtest_logreport(report: Any) -> None:
    """On the controller, keep the fault reports a worker sent (see above)."""
    from tests.faults import REPORTS, FaultReport

    if not getattr(report, "node", None):  # ran here: already in REPORTS
        return
    for name, rows in report.user_properties:
        if name == _FAULT_REPORTS:
            REPORTS.extend(FaultReport(**row) for row in rows)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the fault and load table when the suite ran any scenario."""
    from tests.faults import REPORTS

    if not REPORTS:
        return
    write = terminalreporter.write_line
    columns = ("fault", "executions", "completed", "duplicates", "lost", "re-run steps",
               "redone in flight", "slowest call (s)", "time (s)", "note")
    rows = [
        (r.fault, r.executions, r.completed, r.duplicates, r.lost, r.rerun_steps,
         r.redone_in_flight, f"{r.slowest_call:.2f}", f"{r.seconds:.1f}", r.note)
        for r in REPORTS
    ]
    widths = [max(len(str(v)) for v in column) for column in zip(columns, *rows, strict=True)]
    terminalreporter.section("fault and load suite")
    write(f"machine: {describe_machine(ROOT)}")
    for row in (columns, *rows):
        write("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
