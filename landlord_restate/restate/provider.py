"""RestateProvider: Landlord's workflow provider contract, on a real restate-server."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import aiohttp
import attrs
from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.envelope import ExecutionEnvelope
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.limits import (
    MAX_INPUT_BYTES,
    MAX_MAP_VALUE,
    MAX_MESSAGE,
    MAX_REASON,
    MAX_TRIGGER_SOURCE,
    check_string_map,
    check_text,
    encode_json,
)
from landlord_restate.restate.naming import (
    CATALOG_SERVICE,
    KEY_SEPARATOR,
    SERVICE_NAME,
    WORKFLOW_KEY,
    check_execution_id,
    check_execution_name,
    check_workflow_id,
    split_workflow_key,
    workflow_key,
)
from landlord_restate.restate.status import (
    PROVIDER_TYPE,
    build_status,
    build_summary,
    needs_state_rows,
    state_from_journal,
    state_from_rows,
)
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.validation import ResolvedSpec, check_spec, hosted_handlers
from landlord_restate.workflow.config_hash import config_hash
from landlord_restate.workflow.convert import format_rfc3339, from_json, parse_rfc3339, to_json
from landlord_restate.workflow.errors import (
    ExecutionNotFoundError,
    InvalidInputError,
    InvalidSpecError,
    ProviderStateError,
    RestateServerError,
    RestateUnavailableError,
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.types import (
    BackoffType,
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

_OBSERVED_LIMIT = 4096
_JOURNAL_REREADS = 3
#: what Restate's query engine says of an id that has the shape but does not decode
_UNDECODABLE_ID = "non valid invocation id"
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")




class RestateProvider(Provider):
    """Drives restate-server: owns one aiohttp session, opened and closed by `async with`."""

    def __init__(self, config: RestateConfig) -> None:
        self._config = config.check()
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: nested `async with` blocks: the session closes when the outermost one ends
        self._entered = 0
        self._admin: AdminClient | None = None
        self._ingress: IngressClient | None = None
        self._observed: OrderedDict[str, ExecutionState] = OrderedDict()
        #: workflow id -> (when read, spec, where it runs), only with spec_cache_ttl > 0
        self._specs: OrderedDict[str, tuple[float, WorkflowSpec, ResolvedSpec]] = OrderedDict()
        self._log = logger.bind(
            provider=PROVIDER_TYPE, endpoint=config.endpoint, admin=config.admin_endpoint
        )

    @property
    def name(self) -> str:
        """Always "restate"."""
        return PROVIDER_TYPE

    @property
    def config(self) -> RestateConfig:
        """The checked configuration this provider runs with."""
        return self._config

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
        """Open the session and try the admin health check; unreachable is only a warning."""
        if self._session is not None:
            self._check_loop()
            return
        config = self._config
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=config.request_timeout.total_seconds()),
            connector=aiohttp.TCPConnector(limit=256),
            headers=config.auth_headers(),
        )
        backoff = config.backoff()
        self._admin = AdminClient(
            RestateHttp(self._session, config.admin_endpoints, backoff=backoff)
        )
        self._ingress = IngressClient(
            RestateHttp(self._session, config.endpoints, backoff=backoff)
        )
        try:
            # one try per node: a provider opened while Restate is down must not wait
            await self._admin.health(backoff=Backoff(window=0, min_retries=len(
                self._admin.nodes) - 1))
        except WorkflowError as exc:
            self._log.bind(endpoint=self._admin.endpoint).warning(
                "Restate admin API at {} not reachable at start: {}", self._admin.endpoint, exc
            )
        else:
            self._log.debug("Restate admin API healthy")

    async def aclose(self) -> None:
        """Close the session; safe to call twice."""
        session, self._session = self._session, None
        self._admin = self._ingress = None
        self._loop = None
        if session is not None:
            await session.close()

    def node_clients(self) -> tuple[list[AdminClient], list[IngressClient]]:
        """One client per configured node, each trying its node once: for health checks
        that must report every node rather than fail over."""
        if self._session is None:
            raise ProviderStateError(
                "RestateProvider is not open: use `async with RestateProvider(...)`"
            )
        session = self._session
        return (
            [AdminClient(RestateHttp(session, node)) for node in self._config.admin_endpoints],
            [IngressClient(RestateHttp(session, node)) for node in self._config.endpoints],
        )

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

    @property
    def admin(self) -> AdminClient:
        """The admin API client (open the provider first)."""
        if self._admin is None:
            raise ProviderStateError(
                "RestateProvider is not open: use `async with RestateProvider(...)`"
            )
        self._check_loop()
        return self._admin

    @property
    def ingress(self) -> IngressClient:
        """The ingress client (open the provider first)."""
        if self._ingress is None:
            raise ProviderStateError(
                "RestateProvider is not open: use `async with RestateProvider(...)`"
            )
        self._check_loop()
        return self._ingress

    # -- the contract ---------------------------------------------------------------------

    def resolve(self, spec: WorkflowSpec) -> ResolvedSpec:
        """Check `spec` offline; answer the service and handler its executions run on."""
        return check_spec(spec, self._config.service_name)

    async def validate(self, spec: WorkflowSpec) -> None:
        """Offline checks; then, if Restate and the deployment answer, that it hosts the handler.

        The deployment is asked by a dry-run discovery, which registers nothing, so this
        works before `create_workflow` and never changes the server.
        """
        resolved = self.resolve(spec)
        log = self._log.bind(workflow_id=resolved.workflow_id, service=resolved.service)
        try:
            services = await self.admin.discover(self._config.registration())
        except WorkflowError as exc:
            log.bind(deployment=self._config.deployment_address).info(
                "validate: deployment not checked ({})", exc
            )
            return
        described = next((s for s in services if s.get("name") == resolved.service), None)
        self._require_hosted(resolved, described)

    async def create_workflow(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Register the deployment, check it hosts the handler, store the spec (first wins)."""
        resolved = self.resolve(spec)
        workflow_id, service = resolved.workflow_id, resolved.service
        log = self._log.bind(workflow_id=workflow_id, service=service, handler=resolved.handler)
        deployment_id = await self._register(resolved, log)
        record = {"spec": to_json(spec), "created_at": format_rfc3339(_now())}
        _, answer = await self.ingress.call(
            CATALOG_SERVICE, workflow_id, "put", record, workflow_id=workflow_id,
            idempotent=True,  # first write wins: a repeat answers the stored record
        )
        stored = self._catalog_record(answer, workflow_id)
        self._remember(workflow_id, from_json(WorkflowSpec, stored["spec"]))
        created_at = parse_rfc3339(stored["created_at"])
        first = stored["created_at"] == record["created_at"]
        log.info("workflow {}", "created" if first else "already exists")
        return CreateWorkflowResult(
            workflow_id=workflow_id,
            provider_type=PROVIDER_TYPE,
            resource_ids={
                "service_name": service,
                "deployment_id": deployment_id,
                "endpoint": f"{self.ingress.endpoint}/{service}",
                "deployment": self._config.deployment_address,
            },
            created_at=created_at,
            message="workflow created" if first else "workflow already exists",
        )

    async def _register(self, resolved: ResolvedSpec, log: Any) -> str:
        """Register the deployment and make sure it hosts the handler; answer its id."""
        url = self._config.deployment_address
        registration = self._config.registration()
        # a dry run first: a spec naming a handler the deployment does not host is refused
        # before anything on the server changes (no registration, no new revision)
        services = await self.admin.discover(registration)
        described = next((s for s in services if s.get("name") == resolved.service), None)
        self._require_hosted(resolved, described)
        deployment = await self.admin.register_deployment(registration)
        try:
            await self._check_hosted(resolved)
        except InvalidSpecError:
            # Restate answers a known URI with what it discovered then; the process there
            # has changed since (the dry run above saw the handler). Register it again.
            log.bind(deployment=url).info("handler not in registration; refreshing it")
            deployment = await self.admin.register_deployment(registration, refresh=True)
            await self._check_hosted(resolved)
        deployment_id = str(deployment.get("id", ""))
        log.bind(deployment_id=deployment_id, deployment=url).info("deployment registered")
        return deployment_id

    async def _check_hosted(self, resolved: ResolvedSpec) -> None:
        self._require_hosted(resolved, await self.admin.get_service(resolved.service))

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

    async def _stored_spec(self, workflow_id: str) -> tuple[WorkflowSpec, ResolvedSpec] | None:
        """The stored spec and where it runs, or None when the workflow does not exist."""
        ttl = self._config.spec_cache_ttl.total_seconds()
        cached = self._specs.get(workflow_id)
        if cached is not None and time.monotonic() - cached[0] < ttl:
            return cached[1], cached[2]
        _, answer = await self.ingress.call(
            CATALOG_SERVICE, workflow_id, "get", workflow_id=workflow_id, idempotent=True
        )
        if answer is None:
            self._specs.pop(workflow_id, None)
            return None
        spec = from_json(WorkflowSpec, self._catalog_record(answer, workflow_id)["spec"])
        return spec, self._remember(workflow_id, spec)

    def _remember(self, workflow_id: str, spec: WorkflowSpec) -> ResolvedSpec:
        """Resolve `spec`; keep both for spec_cache_ttl (bounded; not at all when zero)."""
        resolved = self.resolve(spec)
        if self._config.spec_cache_ttl > timedelta(0):
            self._specs.pop(workflow_id, None)
            self._specs[workflow_id] = (time.monotonic(), spec, resolved)
            if len(self._specs) > _OBSERVED_LIMIT:
                self._specs.popitem(last=False)
        return resolved

    def _catalog_record(self, answer: Any, workflow_id: str) -> dict[str, Any]:
        """A catalog record as the catalog writes it, or RestateServerError saying what came."""
        shaped = (
            isinstance(answer, dict)
            and isinstance(answer.get("spec"), dict)
            and isinstance(answer.get("created_at"), str)
        )
        if shaped:
            try:
                parse_rfc3339(answer["created_at"])
            except ValueError:
                shaped = False
        if not shaped:
            raise RestateServerError(
                method="POST",
                url=f"{self._config.endpoint}/{CATALOG_SERVICE}/{workflow_id}",
                status=200,
                body=f"not a catalog record: {json.dumps(answer, default=str)[:400]}",
                workflow_id=workflow_id,
            )
        record: dict[str, Any] = answer
        return record

    async def start_execution(
        self, workflow_id: str, execution: ExecutionInput
    ) -> ExecutionResult:
        """Start one run of the stored spec; the execution name is the idempotency key."""
        result, _ = await self._start(workflow_id, execution)
        return result

    async def _start(
        self, workflow_id: str, execution: ExecutionInput
    ) -> tuple[ExecutionResult, bool]:
        """Start (or find) the run named by `execution`; also answer whether it is new."""
        check_workflow_id(workflow_id)
        if not isinstance(execution, ExecutionInput):
            raise InvalidInputError(
                f"expected an ExecutionInput, got {type(execution).__name__}",
                field="execution",
                workflow_id=workflow_id,
            )
        name = execution.execution_name or f"exec-{uuid.uuid4().hex}"
        check_execution_name(name)
        # every bound before any I/O: nothing reaches Restate that it would refuse late
        check_string_map(execution.tags, "tags", workflow_id=workflow_id)
        check_string_map(execution.metadata, "metadata", workflow_id=workflow_id)
        check_text(execution.trigger_source, "trigger_source", MAX_TRIGGER_SOURCE,
                   workflow_id=workflow_id)
        input_json = encode_json(execution.input, "input", limit=MAX_INPUT_BYTES,
                                 workflow_id=workflow_id)
        found = await self._stored_spec(workflow_id)
        if found is None:
            raise WorkflowNotFoundError(workflow_id)
        spec, resolved = found
        envelope = ExecutionEnvelope(
            workflow_id=workflow_id,
            handler=resolved.handler,
            execution_name=name,
            tags=execution.tags,
            metadata=execution.metadata,
            trigger_source=execution.trigger_source,
            timeout=to_json(spec.timeout or self._config.timeout),
            retry_policy=spec.retry_policy,
        )
        key = workflow_key(workflow_id, name)
        invocation_id, accepted = await self.ingress.send_workflow(
            resolved.service, key, _with_input(envelope, input_json), workflow_id=workflow_id,
        )
        self._log.bind(
            workflow_id=workflow_id,
            execution_id=invocation_id,
            service=resolved.service,
            key=key,
        ).info("execution {}", "started" if accepted else "already started")
        return ExecutionResult(
            execution_id=invocation_id,
            workflow_id=workflow_id,
            provider_type=PROVIDER_TYPE,
            state=ExecutionState.PENDING if accepted else ExecutionState.RUNNING,
            started_at=_now(),
            message="execution started" if accepted else "execution already started",
        ), accepted

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
        _check_provision_request(request, workflow_id)
        tenant = request.tenant_uuid or request.tenant_id
        operation = request.operation or "provision"
        base = invoke_name_base(workflow_id, request)
        execution = ExecutionInput(
            input=to_json(request),
            tags={"tenant_id": request.tenant_id, "tenant_uuid": request.tenant_uuid,
                  "operation": operation},
            metadata=dict(request.metadata),
            trigger_source=trigger_source,
        )
        log = self._log.bind(workflow_id=workflow_id, tenant=tenant, operation=operation)
        run = await self._latest_run(workflow_id, base)
        for _ in range(_INVOKE_ROUNDS):
            name = f"{base}{_RUN_SEPARATOR}{run}"
            result, accepted = await self._start(
                workflow_id, attrs.evolve(execution, execution_name=name)
            )
            if accepted:
                log.bind(execution_id=result.execution_id, run=run).info("invoke: new run")
                return result
            target = await self._target(result.execution_id)
            if target.get("status") != "completed":
                log.bind(execution_id=result.execution_id, run=run).info(
                    "invoke: run in progress, answered"
                )
                return result
            run += 1  # that run ended: the next invoke is the next run
        raise RestateServerError(
            method="POST", url=f"{self.ingress.endpoint}/{workflow_id}", status=200,
            body=f"invoke: {_INVOKE_ROUNDS} consecutive runs of {base} had already ended",
            workflow_id=workflow_id,
        )

    async def _latest_run(self, workflow_id: str, base: str) -> int:
        """The run number `invoke` should try: the newest if it is still going, else next."""
        runs = await self.admin.query(
            "SELECT target_service_key, status FROM sys_invocation "  # noqa: S608
            f"WHERE target_handler_name = 'run' AND target_service_key LIKE "
            f"'{workflow_key(workflow_id, base)}{_RUN_SEPARATOR}%'"  # both checked / built
        )
        prefix = workflow_key(workflow_id, base) + _RUN_SEPARATOR
        numbered = {}
        for row in runs:
            key = str(row.get("target_service_key", ""))
            number = key.removeprefix(prefix)
            if key.startswith(prefix) and number.isascii() and number.isdigit():
                numbered[int(number)] = row.get("status")
        if not numbered:
            return 1
        newest = max(numbered)
        return newest if numbered[newest] != "completed" else newest + 1

    async def get_execution_status(self, execution_id: str) -> ExecutionStatus:
        """Invocation, journal and shim state, read in parallel from Restate's SQL."""
        check_execution_id(execution_id)
        # two point lookups by id, in parallel: one round trip of latency
        invocations, journal = await asyncio.gather(
            self._query_by_id(_INVOCATION_SQL, execution_id),
            self._query_by_id(_JOURNAL_SQL, execution_id, invocation_row=False),
        )
        if not invocations or invocations[0].get("target_handler_name") != "run":
            raise ExecutionNotFoundError(execution_id)
        # the two reads run concurrently: a journal read a moment before the invocation
        # row lacks its newest entries; read it again until it has all journal_size of them
        for _ in range(_JOURNAL_REREADS):
            if len(journal) >= int(invocations[0].get("journal_size") or 0):
                break
            journal = await self._query_by_id(_JOURNAL_SQL, execution_id, invocation_row=False)
        recorded = state_from_journal(journal)
        if needs_state_rows(invocations[0], recorded):
            recorded = state_from_rows(await self._state_rows(invocations[0])) | recorded
        status = build_status(execution_id, invocations[0], journal, recorded)
        self._observe(status)
        return status

    async def _state_rows(self, invocation: dict[str, Any]) -> list[dict[str, Any]]:
        """The shim's workflow state, by a point lookup on (service, key), checked first."""
        service = str(invocation.get("target_service_name", ""))
        key = str(invocation.get("target_service_key", ""))
        if not (SERVICE_NAME.fullmatch(service) and WORKFLOW_KEY.fullmatch(key)):
            return []
        return await self.admin.query(
            "SELECT key, value_utf8 FROM state "  # noqa: S608  (both checked just above)
            f"WHERE service_name = '{service}' AND service_key = '{key}'"
        )

    async def _query_by_id(
        self,
        template: str,
        execution_id: str,
        *,
        invocation_row: bool = True,
        backoff: Backoff | None = None,
    ) -> list[dict[str, Any]]:
        """Rows of `template` for one checked invocation id.

        An id of the right shape that Restate cannot decode is simply not an execution.
        For the invocation's own row (`invocation_row`), no rows is checked with the
        ingress, which asks the owning partition itself: during a failover a query can miss
        a partition, and "not found" must not be said of an execution that exists. Then the
        query is asked again, within the retry window.
        """
        sql = _sql(template, execution_id)
        backoff = backoff or self._config.backoff()
        began, retries, confirmed = time.monotonic(), 0, False
        while True:
            try:
                rows = await self.admin.query(sql, backoff=backoff)
            except RestateServerError as exc:
                if _UNDECODABLE_ID in exc.body:
                    raise ExecutionNotFoundError(execution_id) from None
                raise
            if rows or not invocation_row:
                return rows
            if not confirmed:
                if not await self.ingress.invocation_exists(execution_id, backoff=backoff):
                    raise ExecutionNotFoundError(execution_id)
                confirmed = True
            elapsed = time.monotonic() - began
            if backoff.gives_up(retries, elapsed):
                raise RestateUnavailableError(
                    self.admin.endpoint,
                    f"the query does not see invocation {execution_id} yet, which the "
                    "ingress knows (partitions moving between nodes?)",
                    nodes=self.admin.nodes, waited=elapsed, execution_id=execution_id,
                )
            retries += 1
            self._log.bind(execution_id=execution_id, attempt=retries).info(
                "query missed an existing invocation; asking again"
            )
            await asyncio.sleep(backoff.delay(retries))

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

    async def get_workflow_status(self, execution_id: str) -> WorkflowStatus:
        """The simplified status Landlord's newer interface asks for."""
        status = await self.get_execution_status(execution_id)
        return WorkflowStatus(
            execution_id=status.execution_id,
            state=status.state,
            output=status.output,
            error=status.error,
        )

    async def _target(
        self, execution_id: str, *, backoff: Backoff | None = None
    ) -> dict[str, Any]:
        """Service, key and status of a shim's `run` invocation, or ExecutionNotFoundError."""
        check_execution_id(execution_id)
        rows = await self._query_by_id(_TARGET_SQL, execution_id, backoff=backoff)
        if not rows or rows[0].get("target_handler_name") != "run":
            raise ExecutionNotFoundError(execution_id)
        return rows[0]

    async def stop_execution(self, execution_id: str, reason: str) -> None:
        """Record `reason` with the execution, then cancel it; a finished one stays as it is."""
        check_text(reason, "reason", MAX_REASON, execution_id=execution_id)
        target = await self._target(execution_id)
        log = self._log.bind(
            execution_id=execution_id,
            workflow_id=split_workflow_key(str(target["target_service_key"]))[0],
            service=target["target_service_name"],
        )
        if target.get("status") == "completed":
            log.info("stop: execution already finished, nothing to do")
            return
        await self.ingress.call(
            str(target["target_service_name"]),
            str(target["target_service_key"]),
            "stop",
            reason or "stopped",
            execution_id=execution_id,
            idempotent=True,  # the first reason wins
        )
        cancelled = await self.admin.cancel_invocation(execution_id)
        log.bind(reason=reason).info(
            "stop: {}", "cancellation requested" if cancelled else "execution already finished"
        )

    async def post_compute_callback(
        self,
        execution_id: str,
        payload: ComputeCallbackPayload,
        options: CallbackOptions | None = None,
    ) -> None:
        """Resolve the execution's compute-callback promise; a repeat (409) changes nothing.

        `options` (Landlord's CallbackOptions) say how often and how fast delivery is
        retried while Restate is unreachable or not ready; without them the configured
        retry_attempts and retry_window apply.
        """
        if not isinstance(payload, ComputeCallbackPayload):
            raise InvalidInputError(
                f"expected a ComputeCallbackPayload, got {type(payload).__name__}",
                field="payload",
                execution_id=execution_id,
            )
        backoff = callback_backoff(options, execution_id)
        body = _callback_body(payload, execution_id)
        target = await self._target(execution_id, backoff=backoff)
        status, _ = await self.ingress.call(
            str(target["target_service_name"]),
            str(target["target_service_key"]),
            "compute_callback",
            body,
            ok=(200, 409),
            execution_id=execution_id,
            idempotent=True,  # a repeat answers 409 and changes nothing
            backoff=backoff,
        )
        self._log.bind(
            execution_id=execution_id, compute_execution_id=payload.execution_id,
            status=payload.status,
        ).info("compute callback {}", "delivered" if status == 200 else "was already delivered")

    async def list_executions(
        self,
        workflow_id: str | None = None,
        state: ExecutionState | str | None = None,
        limit: int = 50,
    ) -> list[ExecutionSummary]:
        """Recent executions, newest first, from Restate's introspection."""
        if workflow_id is not None:
            check_workflow_id(workflow_id)
        wanted = None
        if state is not None:
            try:
                wanted = ExecutionState.parse(str(state))
            except ValueError:
                valid = ", ".join(s.value for s in ExecutionState)
                raise InvalidInputError(
                    f"state {state!r} is not one of: {valid}", field="state"
                ) from None
        if not isinstance(limit, int) or isinstance(limit, bool) or not 0 < limit <= 10_000:
            raise InvalidInputError("limit must be between 1 and 10000", field="limit")
        where = ["target_handler_name = 'run'"]
        if workflow_id is not None:
            # checked: [a-z0-9-] only, so it is safe inside the LIKE pattern
            where.append(f"target_service_key LIKE '{workflow_id}{KEY_SEPARATOR}%'")
        where.append(_STATE_FILTERS.get(wanted, "TRUE") if wanted else "TRUE")
        # failures are told apart (failed/stopped/timeout) after the query: read more of them
        fetch = limit * 4 if wanted in _OUTCOME_DECIDED else limit
        rows = await self.admin.query(
            f"SELECT {_SUMMARY_COLUMNS} FROM sys_invocation WHERE {' AND '.join(where)} "  # noqa: S608
            f"ORDER BY created_at DESC LIMIT {fetch}"
        )
        outcomes = await self._outcomes(rows)
        summaries = [build_summary(row, outcomes.get(row["id"])) for row in rows]
        if wanted is not None:
            summaries = [s for s in summaries if s.state is wanted]
        return summaries[:limit]

    async def _outcomes(self, rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The shim's recorded outcome of each failed invocation among `rows`, by id."""
        failed = [r for r in rows if r.get("completion_result") == "failure"]
        if not failed:
            return {}
        ids = ", ".join(f"'{check_execution_id(str(r['id']))}'" for r in failed)
        journal = await self.admin.query(
            "SELECT id, entry_type, entry_json AS entry FROM sys_journal "  # noqa: S608
            f"WHERE id IN ({ids}) AND entry_type = 'Command: SetState'"
        )
        by_id: dict[str, list[dict[str, Any]]] = {}
        for row in journal:
            by_id.setdefault(str(row["id"]), []).append(row)
        outcomes = {}
        for invocation_id, entries in by_id.items():
            outcome = state_from_journal(entries).get("outcome")
            if isinstance(outcome, dict):
                outcomes[invocation_id] = outcome
        return outcomes

    async def delete_workflow(self, workflow_id: str) -> None:
        """Forget the stored spec: no new executions; running ones go on."""
        check_workflow_id(workflow_id)
        self._specs.pop(workflow_id, None)
        await self.ingress.call(
            CATALOG_SERVICE, workflow_id, "delete", workflow_id=workflow_id, idempotent=True
        )
        self._log.bind(workflow_id=workflow_id).info("workflow deleted")


_INVOCATION_COLUMNS = (
    "id, target_service_name, target_service_key, target_handler_name, status, created_at, "
    "running_at, completed_at, completion_result, completion_failure, retry_count, journal_size, "
    "last_failure, last_failure_related_command_name, last_failure_error_code, modified_at"
)
_INVOCATION_SQL = f"SELECT {_INVOCATION_COLUMNS} FROM sys_invocation WHERE id = '{{id}}'"  # noqa: S608
_SUMMARY_COLUMNS = (
    "id, target_service_key, status, created_at, running_at, completed_at, "
    "completion_result, completion_failure"
)
_STATE_FILTERS = {
    ExecutionState.PENDING: "status IN ('pending', 'scheduled', 'ready', 'inboxed')",
    ExecutionState.RUNNING: "status IN ('running', 'suspended', 'backing-off', 'paused')",
    ExecutionState.SUCCEEDED: "completion_result = 'success'",
    ExecutionState.FAILED: "completion_result = 'failure'",
    ExecutionState.STOPPED: "completion_result = 'failure'",
    ExecutionState.TIMEOUT: "completion_result = 'failure'",
}
_OUTCOME_DECIDED = {ExecutionState.FAILED, ExecutionState.STOPPED, ExecutionState.TIMEOUT}
_TARGET_SQL = (
    "SELECT target_service_name, target_service_key, target_handler_name, status "
    "FROM sys_invocation WHERE id = '{id}'"
)
#: the lite form of each entry, but SetState in full: it carries the value the shim wrote
_JOURNAL_SQL = (
    "SELECT index, entry_type, name, appended_at, CASE WHEN entry_type = 'Command: SetState' "
    "THEN entry_json ELSE entry_lite_json END AS entry "
    "FROM sys_journal WHERE id = '{id}' ORDER BY index"
)


_RUN_SEPARATOR = "-r"
#: how many ended runs in a row invoke steps over before it gives up (a race of invokes
#: with runs that end in between; each round is one start and one lookup)
_INVOKE_ROUNDS = 8
_MAX_CALLBACK_RETRIES = 100
_MAX_CALLBACK_DELAY = timedelta(hours=1)
#: the longest pause between two callback deliveries, however the delay grows
_CALLBACK_DELAY_CAP = 300.0


def invoke_name_base(workflow_id: str, request: ProvisionRequest) -> str:
    """The execution name of `invoke`'s identity, before its run number.

    Readable (tenant and operation, made name-safe) and exact (a digest of tenant,
    workflow, operation and configuration, since the readable part may be cut or folded).
    """
    tenant = request.tenant_uuid or request.tenant_id
    operation = request.operation or "provision"
    configuration = request.metadata.get("config_hash") or config_hash(request.desired_config)
    digest = hashlib.sha256(
        json.dumps([tenant, workflow_id, operation, configuration]).encode()
    ).hexdigest()[:16]
    readable = _NAME_UNSAFE.sub("-", f"{tenant}-{operation}")[:80]
    return f"{readable}-{digest}"


def _check_provision_request(request: Any, workflow_id: str) -> None:
    """A ProvisionRequest with a tenant, string fields and string metadata, or a typed error."""
    if not isinstance(request, ProvisionRequest):
        raise InvalidInputError(
            f"expected a ProvisionRequest, got {type(request).__name__}",
            field="request", workflow_id=workflow_id,
        )
    for name in ("tenant_id", "tenant_uuid", "operation", "compute_provider", "api_base_url"):
        value = getattr(request, name)
        if not isinstance(value, str):
            raise InvalidInputError(
                f"request.{name} must be a string, got {type(value).__name__}",
                field=name, workflow_id=workflow_id,
            )
    if not (request.tenant_uuid or request.tenant_id):
        raise InvalidInputError(
            "request.tenant_id (or tenant_uuid) is required", field="tenant_id",
            workflow_id=workflow_id,
        )
    if not isinstance(request.desired_config, dict):
        raise InvalidInputError(
            "request.desired_config must be a JSON object", field="desired_config",
            workflow_id=workflow_id,
        )
    check_string_map(request.metadata, "metadata", workflow_id=workflow_id)
    encode_json(request.desired_config, "desired_config", workflow_id=workflow_id)


#: what a compute callback's status may say (Landlord's compute statuses)
_CALLBACK_STATUSES = frozenset({"pending", "running", "succeeded", "failed"})


def _callback_body(payload: ComputeCallbackPayload, execution_id: str) -> bytes:
    """The payload as the shim receives it, each field checked (types, sizes, JSON)."""
    for name, limit in (("execution_id", MAX_MAP_VALUE), ("tenant_id", MAX_MAP_VALUE),
                        ("error_code", MAX_MAP_VALUE), ("error_message", MAX_MESSAGE)):
        check_text(getattr(payload, name), f"payload.{name}", limit, execution_id=execution_id)
    if not isinstance(payload.status, str) or payload.status not in _CALLBACK_STATUSES:
        raise InvalidInputError(
            f"payload.status must be one of {', '.join(sorted(_CALLBACK_STATUSES))}, got "
            f"{payload.status!r}", field="payload.status", execution_id=execution_id,
        )
    if not isinstance(payload.is_retriable, bool):
        raise InvalidInputError("payload.is_retriable must be true or false",
                                field="payload.is_retriable", execution_id=execution_id)
    encode_json(payload.resource_ids, "payload.resource_ids", execution_id=execution_id)
    return encode_json(to_json(payload), "payload", limit=MAX_INPUT_BYTES,
                       execution_id=execution_id).encode()


def callback_backoff(options: Any, execution_id: str) -> Backoff | None:
    """The retry of a callback delivery that Landlord's CallbackOptions ask for."""
    if options is None:
        return None
    if not isinstance(options, CallbackOptions):
        raise InvalidInputError(
            f"expected CallbackOptions, got {type(options).__name__}",
            field="options", execution_id=execution_id,
        )
    retries = options.max_retries
    if not isinstance(retries, int) or isinstance(retries, bool) or not (
        0 <= retries <= _MAX_CALLBACK_RETRIES
    ):
        raise InvalidInputError(
            f"options.max_retries must be a whole number from 0 to {_MAX_CALLBACK_RETRIES}, "
            f"got {retries!r}", field="options.max_retries", execution_id=execution_id,
        )
    delay = options.retry_delay
    if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= _MAX_CALLBACK_DELAY:
        raise InvalidInputError(
            f"options.retry_delay must be a duration from 0s to 1h, got {delay!r}",
            field="options.retry_delay", execution_id=execution_id,
        )
    if not isinstance(options.backoff_type, str) or options.backoff_type not in set(BackoffType):
        raise InvalidInputError(
            f"options.backoff_type must be exponential or linear, got {options.backoff_type!r}",
            field="options.backoff_type", execution_id=execution_id,
        )
    first = delay.total_seconds()
    return Backoff(
        window=0.0, min_retries=retries, max_retries=retries, first_delay=first,
        max_delay=max(first, _CALLBACK_DELAY_CAP), growth=str(BackoffType(options.backoff_type)),
    )


def _with_input(envelope: ExecutionEnvelope, input_json: str) -> bytes:
    """The start body: the envelope with the already-encoded input spliced in."""
    head = envelope.to_json()
    del head["input"]
    encoded = json.dumps(head, separators=(",", ":"))
    return f'{encoded[:-1]},"input":{input_json}}}'.encode()


def _sql(template: str, execution_id: str) -> str:
    """Fill `template` with an invocation id, checked here again: only base62 enters SQL."""
    return template.format(id=check_execution_id(execution_id))


def _now() -> datetime:
    return datetime.now(UTC)
