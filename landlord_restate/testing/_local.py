"""`LocalRestate`: restate-server and a handler deployment of your own, started and stopped as one.

The server starts first, then the deployment (its environment carries the caller's
`sys.path`, so the handler modules it names import there as they do in the caller); when a
later step fails, what started is stopped again. The deployment is `hypercorn
services.app:app`, or, for `execution_mechanism="lambda"`, a local AWS Lambda hosting the
same app (`LambdaProcess`) that the server reaches through its own Lambda client.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

from landlord_restate.restate.config import ExecutionMechanism, RestateConfig, parse_member
from landlord_restate.testing._deployment import DeploymentProcess
from landlord_restate.testing._lambda import DEFAULT_FUNCTION_ARN, LambdaProcess, check_arns
from landlord_restate.testing._processes import StartStop
from landlord_restate.testing._server import ServerProcess
from services.settings import HANDLER_MODULES_ENV, SERVICE_NAME_ENV

#: restate-server's environment for `always_replay` (the Restate SDK harness's setting)
_ALWAYS_REPLAY = {"RESTATE_WORKER__INVOKER__INACTIVITY_TIMEOUT": "0s"}
#: the mechanisms a local stack can run: a co-located hypercorn, or a local Lambda
_LOCAL_MECHANISMS = (ExecutionMechanism.LOCAL, ExecutionMechanism.SELF_HOSTED,
                     ExecutionMechanism.LAMBDA)


def _local_mechanism(value: ExecutionMechanism | str) -> ExecutionMechanism:
    try:
        mechanism = parse_member(ExecutionMechanism, value)
    except ValueError:
        mechanism = None
    if mechanism not in _LOCAL_MECHANISMS:
        raise ValueError(
            f"LocalRestate runs execution_mechanism local, self-hosted or lambda, not "
            f"{value!r} (kubernetes and fargate deployments are registered by URL: run them "
            "as self-hosted here)"
        )
    assert mechanism is not None
    return mechanism


class LocalRestate(StartStop):
    """restate-server and a handler deployment of your own, for one test or a session."""

    def __init__(
        self,
        *,
        handlers: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        service_name: str | None = None,
        base_dir: Path | None = None,
        config_file: Path | None = None,
        startup_timeout: float = 60.0,
        always_replay: bool = False,
        server_env: Mapping[str, str] | None = None,
        execution_mechanism: ExecutionMechanism | str = ExecutionMechanism.LOCAL,
        function_arn: str = DEFAULT_FUNCTION_ARN,
        assume_role_arn: str | None = None,
        app: str = "services.app:app",
    ) -> None:
        """`handlers`: module paths whose `@handler` functions the deployment hosts (they
        must import in the caller's environment; the caller's `sys.path` is passed on).
        `env`: added to the caller's environment for the deployment. `service_name`: one
        service hosting every handler (default: one per handler). `config_file`: a
        restate-server TOML (ports and data dir are set here regardless).
        `always_replay`: the server ends every attempt as soon as the handler waits
        (inactivity timeout 0, as Restate's own test harness does), so each step is reached
        by replaying the journal: a handler that is not deterministic fails here, not in
        production. `server_env`: added to restate-server's environment (its `RESTATE_*`
        settings, e.g. `RESTATE_TRACING_ENDPOINT`).

        `execution_mechanism`: `local` (the default) or `self-hosted` serve the handlers
        with hypercorn at a URL; `lambda` serves them as an AWS Lambda function on a local
        Invoke API + STS endpoint (`LambdaProcess`), which the server invokes through its
        own Lambda client, SigV4-signed, in request/response mode: every await of an
        unfinished step ends the invocation and the next one replays the journal (so
        `always_replay` changes nothing there). `config()` then registers `function_arn`
        with `auth_type` iam; with `assume_role_arn`, the server assumes that role through
        STS first, and only the role may invoke the function. `app`: the deployment's
        `module:attribute` (an app built like `services.app:app`)."""
        self._app = app
        self._mechanism = _local_mechanism(execution_mechanism)
        lambda_ = self._mechanism is ExecutionMechanism.LAMBDA
        if assume_role_arn is not None and not lambda_:
            raise ValueError("assume_role_arn is for execution_mechanism lambda")
        check_arns(function_arn, assume_role_arn)
        self._function_arn = function_arn
        self._assume_role_arn = assume_role_arn
        replay = _ALWAYS_REPLAY if always_replay and not lambda_ else {}
        self._server_env = dict(server_env or {}) | replay
        self._handlers = list(handlers)
        self._extra_env = dict(env or {})
        self._service_name = service_name
        self._base_dir = base_dir
        self._config_file = config_file
        self._startup_timeout = startup_timeout
        self._temporary: tempfile.TemporaryDirectory[str] | None = None
        self._server: ServerProcess | None = None
        self._deployment: DeploymentProcess | None = None

    @property
    def execution_mechanism(self) -> ExecutionMechanism:
        """How the server reaches the handlers: at a URL (local, self-hosted) or as Lambda."""
        return self._mechanism

    @property
    def server(self) -> ServerProcess:
        """The restate-server process (started by `async with`)."""
        if self._server is None:
            raise RuntimeError("LocalRestate is not started: use `async with LocalRestate(...)`")
        return self._server

    @property
    def deployment(self) -> DeploymentProcess:
        """The process serving `services.app:app` with your handlers: hypercorn, or the
        local Lambda (`execution_mechanism="lambda"`)."""
        if self._deployment is None:
            raise RuntimeError("LocalRestate is not started: use `async with LocalRestate(...)`")
        return self._deployment

    @property
    def function(self) -> LambdaProcess:
        """The local Lambda hosting your handlers (`execution_mechanism="lambda"` only): what
        it was invoked with is `function.calls()`."""
        if self._mechanism is not ExecutionMechanism.LAMBDA:
            raise RuntimeError(
                f"this LocalRestate runs execution_mechanism {self._mechanism}, not lambda: "
                "its deployment is hypercorn (`deployment`)")
        deployment = self.deployment
        assert isinstance(deployment, LambdaProcess)
        return deployment

    def config(self, **overrides: object) -> RestateConfig:
        """A RestateConfig that reaches this server and deployment (fields may be overridden):
        the deployment's URL, or for Lambda the function's ARN with `auth_type` iam."""
        settings: dict[str, object] = {
            "endpoint": self.server.ingress_url,
            "admin_endpoint": self.server.admin_url,
            "service_name": self._service_name,
            "execution_mechanism": self._mechanism,
        }
        deployment = self.deployment
        if isinstance(deployment, LambdaProcess):
            settings |= deployment.provider_settings()
        else:
            settings["deployment_url"] = deployment.url
        return RestateConfig(**(settings | overrides)).check()  # type: ignore[arg-type]

    async def __aenter__(self) -> Self:
        self._refuse_second_start()  # before StartStop's clean-up, which would stop the first
        return await super().__aenter__()

    def _refuse_second_start(self) -> None:
        if self._server is not None:
            raise RuntimeError(
                "LocalRestate is already started (entered twice, or start() called again): "
                "one LocalRestate runs one server and one deployment; use restart_server() "
                "or restart_deployment() to bring back a killed process, or another "
                "LocalRestate for a second stack"
            )

    async def start(self) -> None:
        """Start restate-server, then the deployment, and wait until both serve; a second
        start while started raises RuntimeError and leaves the running stack as it is."""
        self._refuse_second_start()
        if self._base_dir is None:
            self._temporary = tempfile.TemporaryDirectory(
                prefix="landlord-restate-", ignore_cleanup_errors=True
            )
            base = Path(self._temporary.name)
        else:
            base = self._base_dir
        server_env = self._server_env
        if self._mechanism is ExecutionMechanism.LAMBDA:
            function = LambdaProcess(
                base / "lambda.log", env=self._deployment_env(), app=self._app,
                function_arn=self._function_arn, assume_role_arn=self._assume_role_arn,
                startup_timeout=self._startup_timeout,
            )
            self._deployment = function
            server_env = server_env | function.server_env()
        else:
            self._deployment = DeploymentProcess(
                base / "hypercorn.log", env=self._deployment_env(), app=self._app,
                startup_timeout=self._startup_timeout,
            )
        self._server = ServerProcess(
            base / "data", config_file=self._config_file, startup_timeout=self._startup_timeout,
            env=server_env,
        )
        await self._server.start()
        await self._deployment.start()

    def _deployment_env(self) -> dict[str, str]:
        importable = [p for p in sys.path if p and Path(p).is_dir()]
        paths = [*importable, *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {"PYTHONPATH": os.pathsep.join(paths)}
        if self._handlers:
            env[HANDLER_MODULES_ENV] = ",".join(self._handlers)
        if self._service_name:
            env[SERVICE_NAME_ENV] = self._service_name
        return env | self._extra_env

    async def aclose(self) -> None:
        """Stop the deployment and the server, remove the temporary dir; safe twice."""
        deployment, self._deployment = self._deployment, None
        server, self._server = self._server, None
        if deployment is not None:
            await deployment.aclose()
        if server is not None:
            await server.aclose()
        temporary, self._temporary = self._temporary, None
        if temporary is not None:
            # cleanup(), not a bare rmtree: it also disarms the object's finalizer, which
            # would fail on the removed dir when the object is collected
            await asyncio.to_thread(temporary.cleanup)

    async def kill_server(self) -> None:
        """SIGKILL restate-server, as a crash would (returns once it is gone)."""
        await asyncio.to_thread(self.server.kill)

    async def restart_server(self, *, wait_for_partitions: bool = True) -> None:
        """Start restate-server again on the same data dir and ports."""
        await self.server.start(wait_for_partitions=wait_for_partitions)

    async def kill_deployment(self) -> None:
        """SIGKILL the handler deployment, hypercorn or the local Lambda's function host
        (returns once it is gone)."""
        await asyncio.to_thread(self.deployment.kill)

    async def restart_deployment(self) -> None:
        """Start the deployment again on the same socket (the same URL or Lambda endpoint)."""
        await self.deployment.start()
