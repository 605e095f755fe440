"""RestateProvider: Landlord's workflow provider contract, on a real restate-server.

A facade: each contract method checks its input, then reads top-down through the pieces
beside it: `inputs` (checks and encoding), `catalog` (stored specs), `introspection`
(every SQL read), `admin` and `ingress` (the two HTTP APIs), `status` (rows to an
ExecutionStatus) and `wire` (what the handler deployment expects).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp
import attrs
from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.catalog import CatalogClient, StoredSpec
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.deployments import DeploymentInfo
from landlord_restate.restate.errors import (
    DeploymentError,
    DeploymentInUseError,
    InvokeContentionError,
    RestateConnectionError,
    RestateProtocolError,
    RestateServerError,
)
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.ingress import IngressClient, door_closed
from landlord_restate.restate.inputs import (
    callback_backoff,
    callback_body,
    check_provision_request,
    invoke_name_base,
)
from landlord_restate.restate.introspection import Introspection
from landlord_restate.restate.limits import (
    MAX_INPUT_BYTES,
    MAX_REASON,
    MAX_TRIGGER_SOURCE,
    check_string_map,
    check_text,
    encode_json,
)
from landlord_restate.restate.naming import (
    EXECUTION_NAME,
    check_execution_id,
    check_execution_name,
    check_workflow_id,
    split_workflow_key,
    workflow_key,
)
from landlord_restate.restate.redrive import redrive_name, reusable
from landlord_restate.restate.status import (
    UnexpectedRow,
    build_status,
    build_summary,
    live_state,
    map_state,
    needs_state_rows,
    read_outcome,
    state_from_journal,
    state_from_rows,
)
from landlord_restate.restate.tracing import add_trace_ids, annotate, traced
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.validation import ResolvedSpec, check_spec, hosted_handlers
from landlord_restate.restate.vocabulary import InvocationStatus
from landlord_restate.restate.wire import (
    CONTROL_SERVICE,
    DELIVER_CALLBACK_HANDLER,
    ENVELOPE_STATE,
    OUTCOME_STATE,
    PROVIDER_TYPE,
    STOP_STATE,
    ExecutionEnvelope,
    Reuse,
    callback_delivery,
)
from landlord_restate.workflow.convert import format_rfc3339, parse_rfc3339, to_json
from landlord_restate.workflow.errors import (
    ExecutionNotFoundError,
    ExecutionStateError,
    InvalidInputError,
    InvalidSpecError,
    ProviderStateError,
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.types import (
    CallbackOptions,
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    ProvisionRequest,
    WorkflowSpec,
    WorkflowStatus,
)

T = TypeVar("T")

_OBSERVED_LIMIT = 4096
#: between an invoke's name and its run number
_RUN_SEPARATOR = "-r"
#: how many ended runs in a row invoke steps over before it gives up (a race of invokes
#: with runs that end in between; each round is one start and one lookup)
_INVOKE_ROUNDS = 8
COMPLETED = InvocationStatus.COMPLETED
#: a Restate deployment id
_DEPLOYMENT_ID = re.compile(r"^dp_[0-9A-Za-z]{10,64}$")
#: the states a redrive starts from
_REDRIVABLE = frozenset({ExecutionState.FAILED, ExecutionState.STOPPED, ExecutionState.TIMEOUT})
#: the status metadata key naming the execution a redrive started from
REDRIVEN_FROM = "redriven_from"
_NOT_OPEN = "RestateProvider is not open: use `async with RestateProvider(...)`"


class RestateProvider(Provider):
    """Drives restate-server: owns one aiohttp session, opened and closed by `async with`."""

    def __init__(self, config: RestateConfig) -> None:
        self._config = config.check()
        self._session: aiohttp.ClientSession | None = None
        #: long waits (attach) on a pool of their own: they never starve starts and stops
        self._wait_session: aiohttp.ClientSession | None = None
        #: stopped executions to kill once stop_grace has passed, by execution id
        self._pending_kills: dict[str, asyncio.Task[None]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: nested `async with` blocks: the session closes when the outermost one ends
        self._entered = 0
        self._admin: AdminClient | None = None
        self._ingress: IngressClient | None = None
        self._catalog: CatalogClient | None = None
        self._introspection: Introspection | None = None
        self._observed: OrderedDict[str, ExecutionState] = OrderedDict()
        self._log = logger.bind(
            provider=PROVIDER_TYPE, endpoint=config.endpoint, admin=config.admin_endpoint
        ).patch(add_trace_ids)

    @property
    def name(self) -> str:
        """Always "restate"."""
        return PROVIDER_TYPE

    @property
    def config(self) -> RestateConfig:
        """The checked configuration this provider runs with."""
        return self._config

    # -- life -----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.open()
        self._entered += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = max(self._entered - 1, 0)
        if self._entered == 0:
            await self.aclose()

    async def open(self) -> None:
        """Open the session and try the admin health check; unreachable is only a warning.

        If anything fails half way, what was opened is closed again.
        """
        if self._session is not None:
            self._check_loop()
            return
        config = self._config
        self._loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=config.request_timeout.total_seconds())
        self._session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=256),
            headers=config.auth_headers(),
        )
        self._wait_session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=0),
            headers=config.auth_headers(),
        )
        try:
            backoff = config.backoff()
            admin = AdminClient(RestateHttp(self._session, config.admin_endpoints, backoff=backoff))
            ingress = IngressClient(
                RestateHttp(self._session, config.endpoints, backoff=backoff),
                waits=RestateHttp(self._wait_session, config.endpoints, backoff=backoff),
            )
            self._admin, self._ingress = admin, ingress
            self._introspection = Introspection(admin, ingress, backoff)
            self._catalog = CatalogClient(ingress, admin, self._introspection, self.resolve)
            if config.spec_cache_ttl:
                self._log.warning(
                    "spec_cache_ttl is no longer used: starts read no spec (docs/operations.md)"
                )
            await self._first_health_check(admin)
        except BaseException:
            await self.aclose()
            raise

    async def _first_health_check(self, admin: AdminClient) -> None:
        # one try per node: a provider opened while Restate is down must not wait
        try:
            await admin.health(backoff=Backoff(window=0, min_retries=len(admin.nodes) - 1))
        except WorkflowError as exc:
            self._log.bind(endpoint=admin.endpoint).warning(
                "Restate admin API at {} not reachable at start: {}", admin.endpoint, exc
            )
        else:
            self._log.debug("Restate admin API healthy")

    async def aclose(self) -> None:
        """Close the sessions; safe to call twice.

        Kills still waiting for their stop_grace are dropped (logged): those executions
        end `stopped` when their cancellation reaches the deployment.
        """
        pending, self._pending_kills = self._pending_kills, {}
        for execution_id, task in pending.items():
            if task.cancel():
                self._log.bind(execution_id=execution_id).warning(
                    "provider closed before stop_grace passed: {} is not killed", execution_id
                )
        sessions = (self._session, self._wait_session)
        self._session = self._wait_session = None
        self._admin = self._ingress = None
        self._catalog = self._introspection = None
        self._loop = None
        for session in sessions:
            if session is not None:
                await session.close()

    def _check_loop(self) -> None:
        """ProviderStateError unless called from the event loop that opened the provider
        (an aiohttp session belongs to one loop)."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if self._loop is not None and running is not self._loop:
            raise ProviderStateError(
                "RestateProvider was opened in another event loop; open one provider per loop"
            )

    def _opened(self, part: T | None) -> T:
        """`part` of an open provider, used from the loop that opened it."""
        if part is None:
            raise ProviderStateError(_NOT_OPEN)
        self._check_loop()
        return part

    @property
    def admin(self) -> AdminClient:
        """The admin API client (open the provider first)."""
        return self._opened(self._admin)

    @property
    def ingress(self) -> IngressClient:
        """The ingress client (open the provider first)."""
        return self._opened(self._ingress)

    @property
    def _specs(self) -> CatalogClient:
        return self._opened(self._catalog)

    @property
    def _sql(self) -> Introspection:
        return self._opened(self._introspection)

    def node_clients(self) -> tuple[list[AdminClient], list[IngressClient]]:
        """One client per configured node, each trying its node once: for health checks
        that must report every node rather than fail over."""
        session = self._opened(self._session)
        return (
            [AdminClient(RestateHttp(session, node)) for node in self._config.admin_endpoints],
            [IngressClient(RestateHttp(session, node)) for node in self._config.endpoints],
        )

    # -- workflows ------------------------------------------------------------------------

    def resolve(self, spec: WorkflowSpec) -> ResolvedSpec:
        """Check `spec` offline; answer the service and handler its executions run on."""
        return check_spec(spec, self._config.service_name)

    @traced("validate")
    async def validate(self, spec: WorkflowSpec) -> None:
        """Offline checks; then, if Restate answers, that the deployment hosts the handler.

        The deployment is asked by a dry-run discovery, which registers nothing, so this
        works before `create_workflow` and never changes the server. Only Restate being
        unreachable leaves the offline checks as the answer; a deployment Restate cannot
        use is an InvalidSpecError with Restate's answer.
        """
        resolved = self.resolve(spec)
        try:
            described = await self._discovered(resolved)
        except RestateConnectionError as exc:
            self._log.bind(workflow_id=resolved.workflow_id, service=resolved.service,
                           deployment=self._config.deployment_address).info(
                "validate: Restate unreachable, offline checks only ({})", exc
            )
            return
        except DeploymentError as exc:
            raise InvalidSpecError(
                f"definition: {exc.message}", field="definition",
                workflow_id=resolved.workflow_id,
            ) from exc
        self._require_hosted(resolved, described)

    @traced("create_workflow")
    async def create_workflow(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Register the deployment, check it hosts the handler, store the spec (first wins),
        and open the service to starts (a delete may have closed it)."""
        resolved = self.resolve(spec)
        log = self._log.bind(workflow_id=resolved.workflow_id, service=resolved.service,
                             handler=resolved.handler)
        deployment_id, public = await self._register(resolved, log)
        stored, first = await self._specs.put(spec, resolved)
        if not public:
            await self.admin.set_public(stored.resolved.service, True)
            log.info("service opened to starts again")
        log.info("workflow {}", "created" if first else "already exists")
        return CreateWorkflowResult(
            workflow_id=resolved.workflow_id,
            provider_type=PROVIDER_TYPE,
            resource_ids={
                "service_name": resolved.service,
                "deployment_id": deployment_id,
                "endpoint": f"{self.ingress.endpoint}/{resolved.service}",
                "deployment": self._config.deployment_address,
                "catalog_entry": stored.entry,
            },
            created_at=stored.created_at,
            message="workflow created" if first else "workflow already exists",
        )

    async def _register(self, resolved: ResolvedSpec, log: Any) -> tuple[str, bool]:
        """Register the deployment and make sure it hosts the handler; answer its id and
        whether the service is open to ingress calls."""
        url = self._config.deployment_address
        # a dry run first: a spec naming a handler the deployment does not host is refused
        # before anything on the server changes (no registration, no new revision)
        described = await self._deployment_call(self._discover(), resolved.workflow_id)
        self._require_hosted(resolved, _named(described, resolved.service))
        deployment = await self._deployment_call(
            self._register_deployment(described), resolved.workflow_id
        )
        service = await self.admin.get_service(resolved.service)
        self._require_hosted(resolved, service)
        deployment_id = str(deployment.get("id", ""))
        log.bind(deployment_id=deployment_id, deployment=url).info("deployment registered")
        return deployment_id, bool(service and service.get("public", True))

    async def _discovered(self, resolved: ResolvedSpec) -> dict[str, Any] | None:
        """The service as the deployment describes it now, by a dry run (registers nothing)."""
        described = await self._deployment_call(self._discover(), resolved.workflow_id)
        return _named(described, resolved.service)

    async def _discover(self) -> list[dict[str, Any]]:
        return await self.admin.discover(
            self._config.registration(), window=self._config.retry_window
        )

    async def register_deployment(self) -> str:
        """Register the configured deployment (what `create_workflow` does first); answer
        its id. A new address becomes the newest revision of its services (new executions
        run there, executions in flight finish where they started). At an address already
        registered whose process now serves other handlers, it is registered again only
        while no execution runs on it; else DeploymentInUseError says how many do."""
        address = self._config.deployment_address
        described = await self._deployment_call(self._discover())
        deployment = await self._deployment_call(self._register_deployment(described))
        deployment_id = str(deployment.get("id", ""))
        self._log.bind(deployment_id=deployment_id, deployment=address).info(
            "deployment registered"
        )
        return deployment_id

    async def _register_deployment(self, described: list[dict[str, Any]]) -> dict[str, Any]:
        """Register what discovery `described`, never moving in-flight executions onto
        other code: see `register_deployment`."""
        registration = self._config.registration()
        address = self._config.deployment_address
        existing = next((d for d in await self.admin.deployments()
                         if _same_address(_address_of(d), address)), None)
        if existing is None:
            return await self.admin.register_deployment(registration)
        registered = await self.admin.deployment(str(existing.get("id"))) or existing
        if _handler_sets(registered.get("services")) == _handler_sets(described):
            return await self.admin.register_deployment(registration)
        deployment_id = str(existing.get("id"))
        in_flight = (await self._sql.in_flight_by_deployment()).get(deployment_id, 0)
        if in_flight:
            raise DeploymentInUseError(
                f"the process at {address} now serves other handlers than deployment "
                f"{deployment_id} registered there, and {in_flight} executions still run on "
                "it: re-registering would move them onto other code. Deploy the new code at "
                "a new address (a versioned service or port, a Lambda version ARN) and "
                "register that; remove this deployment once it shows 0 in flight.",
                deployment_id=deployment_id, in_flight=in_flight,
            )
        self._log.bind(deployment_id=deployment_id, deployment=address).info(
            "handlers changed at a drained deployment; registering it again"
        )
        return await self.admin.register_deployment(registration, refresh=True)

    async def _deployment_call(self, call: Awaitable[T], workflow_id: str | None = None) -> T:
        """`call` (a discovery or registration), with a failure of the deployment raised as
        DeploymentError naming it and carrying Restate's answer, told apart from Restate
        itself by what Restate returns: a `restate_code` (META0003 unreachable, META0014
        not a Restate deployment, ...), or no answer while Restate's own health answers."""
        address = self._config.deployment_address
        try:
            return await call
        except RestateServerError as exc:
            if exc.restate_code is None:
                raise
            raise DeploymentError(
                f"Restate cannot use the deployment at {address}: {exc.body}",
                deployment=address, status=exc.status, restate_code=exc.restate_code,
                body=exc.body, workflow_id=workflow_id,
            ) from exc
        except RestateConnectionError as exc:
            try:
                await self.admin.health(backoff=Backoff(window=0, min_retries=0))
            except WorkflowError:
                raise exc from None  # Restate itself does not answer
            window = self._config.retry_window.total_seconds()
            raise DeploymentError(
                f"the deployment at {address} did not answer Restate's discovery within "
                f"{window:g}s (retry_window); Restate itself answers",
                deployment=address, workflow_id=workflow_id,
            ) from exc

    def _require_hosted(self, resolved: ResolvedSpec, described: dict[str, Any] | None) -> None:
        """InvalidSpecError unless the service, as Restate describes it, hosts the handler."""
        hosted = hosted_handlers(described) if described else set()
        if resolved.handler not in hosted:
            raise InvalidSpecError(
                f"definition.handler: service {resolved.service!r} at deployment "
                f"{self._config.deployment_address} "
                f"{'hosts ' + ', '.join(sorted(hosted)) if hosted else 'is not there'}, "
                f"not {resolved.handler!r}",
                field="definition.handler",
                workflow_id=resolved.workflow_id,
            )

    @traced("delete_workflow")
    async def delete_workflow(self, workflow_id: str) -> None:
        """Forget the stored spec and close Restate's door: its service refuses ingress
        starts once no other workflow uses it. Running executions go on (they still time
        out, take their callback and can be stopped). restate-server alone answers."""
        check_workflow_id(workflow_id)
        log = self._log.bind(workflow_id=workflow_id)
        stored = await self._specs.delete(workflow_id)
        if stored is not None:
            service = stored.resolved.service
            others = [s for s in await self._specs.read_all() if s.resolved.service == service]
            if others:
                log.bind(service=service).info(
                    "service stays open: {} other workflows use it", len(others)
                )
            else:
                await self.admin.set_public(service, False)
                log.bind(service=service).info("service closed to ingress starts")
        log.info("workflow deleted")

    # -- executions -----------------------------------------------------------------------

    @traced("start_execution")
    async def start_execution(
        self, workflow_id: str, execution: ExecutionInput
    ) -> ExecutionResult:
        """Start one run of the stored spec; the execution name is the idempotency key."""
        result, _ = await self._start(workflow_id, execution)
        return result

    async def _start(
        self, workflow_id: str, execution: ExecutionInput, *, redrive: Sequence[Reuse] = ()
    ) -> tuple[ExecutionResult, bool]:
        """Start (or find) the run named by `execution`; also answer whether it is new.

        One send through the ingress, which Restate accepts durably whether or not the
        deployment is up. The run itself reads its workflow's record before its first step.
        """
        name, input_json = _checked_execution(workflow_id, execution)
        key = workflow_key(workflow_id, name)
        stored = await self._specs.route(workflow_id)
        try:
            invocation_id, accepted = await self._send_start(
                stored, execution, name, input_json, redrive
            )
        except RestateServerError as exc:
            if not door_closed(exc):
                raise
            # deleted (here or through another provider), maybe created again elsewhere
            self._specs.forget(workflow_id)
            fresh = await self._specs.route(workflow_id)
            if fresh.resolved.service == stored.resolved.service:
                raise WorkflowNotFoundError(workflow_id) from exc
            stored = fresh
            invocation_id, accepted = await self._send_start(
                stored, execution, name, input_json, redrive
            )
        self._log.bind(
            workflow_id=workflow_id, execution_id=invocation_id,
            service=stored.resolved.service, key=key,
        ).info("execution {}", "started" if accepted else "already started")
        annotate(service=stored.resolved.service, key=key, invocation_id=invocation_id)
        return ExecutionResult(
            execution_id=invocation_id,
            workflow_id=workflow_id,
            provider_type=PROVIDER_TYPE,
            state=ExecutionState.PENDING if accepted else ExecutionState.RUNNING,
            started_at=_now(),
            message="execution started" if accepted else "execution already started",
        ), accepted

    async def _send_start(
        self,
        stored: StoredSpec,
        execution: ExecutionInput,
        name: str,
        input_json: str,
        redrive: Sequence[Reuse],
    ) -> tuple[str, bool]:
        workflow_id = stored.spec.workflow_id
        envelope = ExecutionEnvelope(
            workflow_id=workflow_id,
            handler=stored.resolved.handler,
            execution_name=name,
            tags=execution.tags,
            metadata=execution.metadata,
            trigger_source=execution.trigger_source,
            timeout=to_json(stored.spec.timeout or self._config.timeout),
            retry_policy=stored.spec.retry_policy,
            redrive=list(redrive),
            catalog_entry=stored.entry,
        )
        return await self.ingress.send_workflow(
            stored.resolved.service, workflow_key(workflow_id, name),
            envelope.start_body(input_json), workflow_id=workflow_id,
        )

    @traced("invoke")
    async def invoke(
        self, workflow_id: str, request: ProvisionRequest, *, trigger_source: str = "reconciler"
    ) -> ExecutionResult:
        """Start the run Landlord's reconciler asks for, once per identity and run.

        The identity is the tenant (uuid, else id), the workflow, the operation and the
        desired configuration (`metadata["config_hash"]`, else the hash of
        `desired_config`). While a run of that identity is pending or running, `invoke`
        answers it (also when invokes race: the workflow key decides); once it ended, the
        next `invoke` starts a new run, as Temporal's default id-reuse policy does. A
        changed configuration is another identity: a new run at once.
        """
        check_workflow_id(workflow_id)
        check_provision_request(request, workflow_id)
        operation = request.operation or "provision"
        base = invoke_name_base(workflow_id, request)
        execution = ExecutionInput(
            input=to_json(request),
            tags={"tenant_id": request.tenant_id, "tenant_uuid": request.tenant_uuid,
                  "operation": operation},
            metadata=dict(request.metadata),
            trigger_source=trigger_source,
        )
        log = self._log.bind(workflow_id=workflow_id, operation=operation,
                             tenant=request.tenant_uuid or request.tenant_id)
        run = await self._next_run(workflow_id, base)
        for _ in range(_INVOKE_ROUNDS):
            result, accepted = await self._start(
                workflow_id, attrs.evolve(execution, execution_name=f"{base}{_RUN_SEPARATOR}{run}")
            )
            if accepted:
                log.bind(execution_id=result.execution_id, run=run).info("invoke: new run")
                return result
            if (await self._sql.target(result.execution_id)).get("status") != COMPLETED:
                log.bind(execution_id=result.execution_id, run=run).info(
                    "invoke: run in progress, answered"
                )
                return result
            run += 1  # that run ended: the next invoke is the next run
        raise InvokeContentionError(
            f"invoke: {_INVOKE_ROUNDS} runs of {base} in a row had already ended when this "
            "invoke reached them; invokes are racing runs that end at once",
            workflow_id=workflow_id,
        )

    async def _next_run(self, workflow_id: str, base: str) -> int:
        """The run number `invoke` should try: the newest if it is still going, else next."""
        prefix = workflow_key(workflow_id, base) + _RUN_SEPARATOR
        runs = await self._sql.runs_by_key_prefix(prefix)
        numbered = {
            int(key.removeprefix(prefix)): status for key, status in runs.items()
            if key.startswith(prefix) and key.removeprefix(prefix).isascii()
            and key.removeprefix(prefix).isdigit()
        }
        if not numbered:
            return 1
        newest = max(numbered)
        return newest if numbered[newest] != COMPLETED else newest + 1

    @traced("get_execution_status")
    async def get_execution_status(self, execution_id: str) -> ExecutionStatus:
        """Invocation, journal and shim state, read from Restate's SQL introspection."""
        check_execution_id(execution_id)
        invocation, journal = await self._sql.invocation(execution_id)
        try:
            recorded = state_from_journal(journal)
            if needs_state_rows(invocation, recorded):
                rows = await self._sql.state_rows(
                    str(invocation.get("target_service_name", "")),
                    str(invocation.get("target_service_key", "")),
                )
                recorded = state_from_rows(rows) | recorded
            state, _ = map_state(invocation, read_outcome(recorded.get(OUTCOME_STATE)))
            # a stopped execution's reason is the provider's record, not the run's
            control = (await self._sql.control_state(execution_id)
                       if state is ExecutionState.STOPPED else None)
            status = build_status(execution_id, invocation, journal, recorded, control)
        except UnexpectedRow as exc:
            raise self._sql.protocol_error(exc, execution_id=execution_id) from exc
        self._observe(status)
        return status

    @traced("wait_execution")
    async def wait_execution(
        self,
        execution_id: str,
        timeout: float | None = None,  # noqa: ASYNC109  (the contract's name; asyncio.timeout inside)
    ) -> ExecutionStatus:
        """The execution's terminal status, as soon as it ends: attached through Restate's
        ingress, not polled. TimeoutError after `timeout` seconds (the execution goes on);
        ExecutionNotFoundError for an unknown id. A restart or failover while waiting
        attaches again."""
        check_execution_id(execution_id)
        seconds = _check_wait_timeout(timeout, execution_id)
        async with asyncio.timeout(seconds):
            while True:
                status = await self.get_execution_status(execution_id)
                if status.state.is_terminal:
                    return status
                await self.ingress.attach(execution_id)

    @traced("get_workflow_status")
    async def get_workflow_status(self, execution_id: str) -> WorkflowStatus:
        """The simplified status Landlord's newer interface asks for."""
        status = await self.get_execution_status(execution_id)
        return WorkflowStatus(
            execution_id=status.execution_id, state=status.state, output=status.output,
            error=status.error,
        )

    @traced("stop_execution")
    async def stop_execution(self, execution_id: str, reason: str) -> None:
        """Record `reason`, then cancel: the handler's cancellation runs when it can. An
        execution not ended `stop_grace` later is killed. Either way it ends `stopped` with
        the reason; a finished one stays as it is. restate-server alone answers, at once."""
        check_execution_id(execution_id)
        check_text(reason, "reason", MAX_REASON, execution_id=execution_id)
        log, finished = await self._record_stop(execution_id, reason, "stop")
        if finished:
            log.info("stop: execution already finished, nothing to do")
            return
        cancelled = await self.admin.cancel_invocation(execution_id)
        grace = self._config.stop_grace.total_seconds()
        if cancelled and execution_id not in self._pending_kills:
            task = asyncio.get_running_loop().create_task(
                self._kill_after_grace(execution_id, grace)
            )
            self._pending_kills[execution_id] = task
            task.add_done_callback(lambda _: self._pending_kills.pop(execution_id, None))
        log.bind(reason=reason, stop_grace=grace).info(
            "stop: {}", "cancellation requested" if cancelled else "execution already finished"
        )

    async def _kill_after_grace(self, execution_id: str, grace: float) -> None:
        """Kill the execution if its cancellation has not ended it within `grace` seconds
        (the deployment is down, or the handler's cancellation does not finish)."""
        try:
            async with asyncio.timeout(grace):
                await self.ingress.attach(execution_id)
        except TimeoutError:
            pass
        except WorkflowError as exc:
            self._log.bind(execution_id=execution_id).info(
                "stop: waiting for the cancellation failed ({}); killing", exc
            )
        else:
            return  # it ended within the grace
        try:
            killed = await self.admin.invocation_action(execution_id, "kill") in (200, 202)
        except WorkflowError as exc:  # nobody awaits this task: say it here
            self._log.bind(execution_id=execution_id).error(
                "stop: the kill after stop_grace failed: {}", exc
            )
            return
        if killed:
            self._log.bind(execution_id=execution_id, stop_grace=grace).warning(
                "stop: not ended within stop_grace; killed"
            )

    async def _record_stop(self, execution_id: str, reason: str, how: str) -> tuple[Any, bool]:
        """Keep why the execution is stopped where status reads it (first reason wins);
        answer a bound logger and whether the execution had already finished."""
        target = await self._sql.target(execution_id)
        service, key = str(target["target_service_name"]), str(target["target_service_key"])
        log = self._log.bind(execution_id=execution_id, service=service,
                             workflow_id=split_workflow_key(key)[0])
        if target.get("status") == COMPLETED:
            return log, True
        recorded = await self._sql.control_state(execution_id)
        if STOP_STATE not in recorded:
            stop = {"reason": reason or "stopped", "how": how,
                    "requested_at": format_rfc3339(_now())}
            await self.admin.set_state(CONTROL_SERVICE, execution_id, recorded | {STOP_STATE: stop})
        return log, False

    @traced("post_compute_callback")
    async def post_compute_callback(
        self,
        execution_id: str,
        payload: ComputeCallbackPayload,
        options: CallbackOptions | None = None,
    ) -> None:
        """Deliver the compute callback: Restate keeps it durably (also while the
        deployment is down) and resolves the run's promise once; a repeat changes nothing.

        `options` (Landlord's CallbackOptions) say how often and how fast delivery is
        retried while Restate is unreachable or not ready; without them the configured
        retry_attempts and retry_window apply.
        """
        check_execution_id(execution_id)
        if not isinstance(payload, ComputeCallbackPayload):
            raise InvalidInputError(
                f"expected a ComputeCallbackPayload, got {type(payload).__name__}",
                field="payload", execution_id=execution_id,
            )
        backoff = callback_backoff(options, execution_id)
        body = callback_body(payload, execution_id)
        target = await self._sql.target(execution_id, backoff=backoff)
        delivery = callback_delivery(
            str(target["target_service_name"]), str(target["target_service_key"]), body
        )
        new = await self.ingress.send(
            CONTROL_SERVICE, execution_id, DELIVER_CALLBACK_HANDLER, delivery,
            idempotency_key="compute-callback", execution_id=execution_id, backoff=backoff,
        )
        self._log.bind(
            execution_id=execution_id, compute_execution_id=payload.execution_id,
            status=payload.status,
        ).info("compute callback {}", "accepted" if new else "was already delivered")

    # -- operator actions -----------------------------------------------------------------

    @traced("kill_execution")
    async def kill_execution(self, execution_id: str, reason: str) -> None:
        """End the execution now as `stopped` with `reason`, without running the handler's
        cancellation; a finished execution stays as it is. Answered by restate-server alone."""
        check_execution_id(execution_id)
        check_text(reason, "reason", MAX_REASON, execution_id=execution_id)
        log, finished = await self._record_stop(execution_id, reason, "kill")
        if finished:
            log.info("kill: execution already finished, nothing to do")
            return
        answer = await self.admin.invocation_action(execution_id, "kill")
        log.bind(reason=reason).info(
            "kill: {}", "killed" if answer in (200, 202) else "execution already finished"
        )

    @traced("pause_execution")
    async def pause_execution(self, execution_id: str) -> None:
        """Pause a pending or running execution: it runs no step until resumed. Pausing a
        paused or finished execution changes nothing."""
        await self._invocation_action(execution_id, "pause")

    @traced("resume_execution")
    async def resume_execution(self, execution_id: str) -> None:
        """Let a paused execution go on; a backing-off one retries now. Resuming a running
        or finished execution changes nothing."""
        await self._invocation_action(execution_id, "resume")

    async def _invocation_action(self, execution_id: str, action: str) -> None:
        check_execution_id(execution_id)
        target = await self._sql.target(execution_id)
        log = self._log.bind(execution_id=execution_id, action=action,
                             restate_status=target.get("status"))
        if target.get("status") == COMPLETED:
            log.info("{}: execution already finished, nothing to do", action)
            return
        answer = await self.admin.invocation_action(execution_id, action)
        log.info("{}: {}", action, "done" if answer in (200, 202) else "nothing to do")

    @traced("purge_execution")
    async def purge_execution(self, execution_id: str) -> None:
        """Forget a finished execution (status, history, journal). ExecutionStateError for
        a pending or running one; an unknown id succeeds."""
        check_execution_id(execution_id)
        try:
            target = await self._sql.target(execution_id)
        except ExecutionNotFoundError:
            return
        if target.get("status") != COMPLETED:
            state = _live_state(str(target.get("status")))
            raise ExecutionStateError(
                f"execution {execution_id!r} is {state}: only a finished execution can be "
                "purged (stop or kill it first)",
                execution_id=execution_id, state=state,
            )
        await self.admin.invocation_action(execution_id, "purge")
        await self.admin.set_state(CONTROL_SERVICE, execution_id, {})
        self._log.bind(execution_id=execution_id).info("purged")

    @traced("list_executions")
    async def list_executions(
        self,
        workflow_id: str | None = None,
        state: ExecutionState | str | None = None,
        limit: int = 50,
        name_prefix: str | None = None,
    ) -> list[ExecutionSummary]:
        """Recent executions, newest first, from Restate's introspection: of one workflow,
        in one state, whose execution name starts with `name_prefix` (one tenant's runs:
        `acme-`)."""
        if workflow_id is not None:
            check_workflow_id(workflow_id)
        if name_prefix is not None:
            try:
                check_execution_name(name_prefix)
            except InvalidInputError:
                raise InvalidInputError(
                    f"name_prefix {name_prefix!r} must be the start of an execution name "
                    f"({EXECUTION_NAME.pattern})", field="name_prefix",
                ) from None
        wanted = _wanted_state(state)
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= 10_000:
            raise InvalidInputError("limit must be between 1 and 10000", field="limit")
        rows, outcomes = await self._sql.recent_runs(workflow_id, wanted, limit, name_prefix)
        try:
            summaries = [build_summary(row, outcomes.get(row["id"])) for row in rows]
        except UnexpectedRow as exc:
            raise self._sql.protocol_error(exc) from exc
        if wanted is not None:
            summaries = [s for s in summaries if s.state is wanted]
        if name_prefix is not None:
            summaries = [s for s in summaries if s.execution_name.startswith(name_prefix)]
        return summaries[:limit]

    @traced("redrive_execution")
    async def redrive_execution(self, execution_id: str) -> ExecutionResult:
        """A new execution of a failed, stopped or timed-out one: the same workflow and
        input, with what the original completed not done again (each completed step
        answers its journaled result, completed sleeps are not slept, a callback received
        is not waited for), going on from the first step that did not complete with the
        handler code deployed now. Its execution name says whose redrive it is and
        `metadata["redriven_from"]` names the original; redriving again answers the same
        execution. InvalidInputError for a succeeded, pending or running execution."""
        check_execution_id(execution_id)
        status = await self.get_execution_status(execution_id)
        if status.state not in _REDRIVABLE:
            raise InvalidInputError(
                f"execution {execution_id!r} is {status.state.value}: only a failed, stopped "
                "or timed-out execution can be redriven",
                field="execution_id", execution_id=execution_id,
            )
        journal = await self._sql.full_journal(execution_id)
        try:
            recorded = state_from_journal(journal).get(ENVELOPE_STATE)
            original = ExecutionEnvelope.from_json(recorded)
        except UnexpectedRow as exc:
            raise self._sql.protocol_error(exc, execution_id=execution_id) from exc
        except Exception as exc:
            raise RestateProtocolError(
                method="POST", url=f"{self.admin.endpoint}/query",
                expected=f"the execution envelope in the journal of {execution_id}",
                got=json.dumps(recorded, default=str), execution_id=execution_id,
            ) from exc
        plan = reusable(journal)
        execution = ExecutionInput(
            execution_name=redrive_name(original.execution_name),
            input=original.input,
            tags=original.tags,
            metadata=original.metadata | {REDRIVEN_FROM: execution_id},
            trigger_source=original.trigger_source,
        )
        result, accepted = await self._start(original.workflow_id, execution, redrive=plan)
        self._log.bind(
            workflow_id=original.workflow_id, execution_id=result.execution_id,
            redriven_from=execution_id, reused=len(plan),
        ).info("redrive: {}", "started" if accepted else "already started")
        return result

    # -- deployments ------------------------------------------------------------------------

    @traced("list_deployments")
    async def list_deployments(self) -> list[DeploymentInfo]:
        """Every registered deployment: its address, services, how many executions still
        run on it, and whether it serves the newest revision of one of its services."""
        deployments, in_flight, latest = await asyncio.gather(
            self.admin.deployments(), self._sql.in_flight_by_deployment(),
            self._sql.latest_deployments(),
        )
        newest = set(latest.values())
        infos = []
        for deployment in deployments:
            deployment_id = str(deployment.get("id", ""))
            services = deployment.get("services")
            names = tuple(sorted(
                str(s.get("name")) for s in services if isinstance(s, dict)
            )) if isinstance(services, list) else ()
            created = deployment.get("created_at")
            infos.append(DeploymentInfo(
                deployment_id=deployment_id,
                address=_address_of(deployment),
                created_at=parse_rfc3339(created) if isinstance(created, str) else None,
                services=names,
                in_flight=in_flight.get(deployment_id, 0),
                latest=deployment_id in newest,
            ))
        infos.sort(key=lambda info: info.created_at or datetime.min.replace(tzinfo=UTC),
                   reverse=True)
        return infos

    @traced("remove_deployment")
    async def remove_deployment(self, deployment_id: str, *, force: bool = False) -> None:
        """Remove a drained deployment. DeploymentInUseError while executions run on it or
        while it is the only deployment of a service a workflow uses; `force` overrides
        both and strands those executions (they fail for want of their code). An unknown
        id succeeds."""
        if not isinstance(deployment_id, str) or not _DEPLOYMENT_ID.fullmatch(deployment_id):
            raise InvalidInputError(
                f"deployment_id {deployment_id!r} must look like dp_... (see list_deployments)",
                field="deployment_id",
            )
        log = self._log.bind(deployment_id=deployment_id, force=force)
        deployments = await self.list_deployments()
        target = next((d for d in deployments if d.deployment_id == deployment_id), None)
        if target is None:
            log.info("remove: no such deployment, nothing to do")
            return
        if not force:
            if target.in_flight:
                raise DeploymentInUseError(
                    f"deployment {deployment_id} still runs {target.in_flight} executions; "
                    "wait until list_deployments shows 0 in flight (or force=True, which "
                    "strands them)", deployment_id=deployment_id, in_flight=target.in_flight,
                )
            others = {s for d in deployments if d is not target for s in d.services}
            used = {stored.resolved.service for stored in await self._specs.read_all()}
            orphaned = sorted((set(target.services) - others) & used)
            if orphaned:
                raise DeploymentInUseError(
                    f"deployment {deployment_id} is the only one serving {', '.join(orphaned)}"
                    ", which existing workflows use; register their new code first (or "
                    "force=True)", deployment_id=deployment_id, in_flight=0,
                )
        removed = await self.admin.delete_deployment(deployment_id, force=True)
        log.bind(address=target.address).info(
            "remove: {}", "removed" if removed else "already gone"
        )

    def _observe(self, status: ExecutionStatus) -> None:
        """Log each state change this provider sees, once (bounded memory)."""
        previous = self._observed.pop(status.execution_id, None)
        self._observed[status.execution_id] = status.state
        if len(self._observed) > _OBSERVED_LIMIT:
            self._observed.popitem(last=False)
        if previous is not status.state:
            self._log.bind(
                workflow_id=status.workflow_id,
                execution_id=status.execution_id,
                state=status.state.value,
                sub_state=status.metadata.get("workflow_sub_state"),
                previous=previous.value if previous else None,
                at=format_rfc3339(_now()),
            ).info("execution state {}", status.state.value)


def _checked_execution(workflow_id: str, execution: Any) -> tuple[str, str]:
    """The execution's name and encoded input, every bound checked before any I/O."""
    check_workflow_id(workflow_id)
    if not isinstance(execution, ExecutionInput):
        raise InvalidInputError(
            f"expected an ExecutionInput, got {type(execution).__name__}",
            field="execution", workflow_id=workflow_id,
        )
    name = execution.execution_name or f"exec-{uuid.uuid4().hex}"
    check_execution_name(name)
    check_string_map(execution.tags, "tags", workflow_id=workflow_id)
    check_string_map(execution.metadata, "metadata", workflow_id=workflow_id)
    check_text(execution.trigger_source, "trigger_source", MAX_TRIGGER_SOURCE,
               workflow_id=workflow_id)
    return name, encode_json(execution.input, "input", limit=MAX_INPUT_BYTES,
                             workflow_id=workflow_id)


def _check_wait_timeout(timeout: Any, execution_id: str) -> float | None:
    """None (wait as long as it takes) or a positive, finite number of seconds."""
    if timeout is None:
        return None
    seconds = None
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        try:
            seconds = float(timeout)
        except OverflowError:  # an int beyond float's range
            seconds = None
    if seconds is None or not 0 < seconds < float("inf"):
        shown = (f"an integer of {timeout.bit_length()} bits"
                 if isinstance(timeout, int) and timeout.bit_length() > 64 else repr(timeout))
        raise InvalidInputError(
            f"timeout must be a positive number of seconds or None, got {shown}",
            field="timeout", execution_id=execution_id,
        )
    return seconds


def _named(services: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((s for s in services if s.get("name") == name), None)


def _address_of(deployment: dict[str, Any]) -> str:
    """A deployment's URI or Lambda ARN, as Restate reports it."""
    return str(deployment.get("uri") or deployment.get("arn") or "")


def _same_address(registered: str, configured: str) -> bool:
    """Restate keeps a URI with a trailing slash; a configured one may have none."""
    return registered.rstrip("/") == configured.rstrip("/")


def _handler_sets(services: Any) -> dict[str, tuple[frozenset[str], str]]:
    """What each service serves: Restate's handler names and the Go handlers it hosts."""
    sets = {}
    for service in services if isinstance(services, list) else ():
        if not isinstance(service, dict):
            continue
        handlers = service.get("handlers")
        names = frozenset(str(h.get("name")) for h in handlers if isinstance(h, dict)) if (
            isinstance(handlers, list)) else frozenset()
        sets[str(service.get("name"))] = (names, ",".join(sorted(hosted_handlers(service))))
    return sets


def _live_state(restate_status: str) -> str:
    """The contract's word for a not-completed Restate status (pending or running)."""
    return live_state(restate_status)[0].value


def _wanted_state(state: ExecutionState | str | None) -> ExecutionState | None:
    if state is None:
        return None
    try:
        return ExecutionState.parse(str(state))
    except ValueError:
        valid = ", ".join(s.value for s in ExecutionState)
        raise InvalidInputError(f"state {state!r} is not one of: {valid}", field="state") from None


def _now() -> datetime:
    return datetime.now(UTC)
