"""RestateProvider: Landlord's workflow provider contract, on a real restate-server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import aiohttp
from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.envelope import ExecutionEnvelope
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.naming import (
    CATALOG_SERVICE,
    HANDLERS_METADATA,
    KEY_SEPARATOR,
    check_execution_id,
    check_execution_name,
    check_service_name,
    check_workflow_id,
    go_handler_name,
    service_name_for,
    workflow_key,
)
from landlord_restate.restate.status import PROVIDER_TYPE, build_status
from landlord_restate.workflow.convert import format_rfc3339, from_json, parse_rfc3339, to_json
from landlord_restate.workflow.errors import (
    ExecutionNotFoundError,
    InvalidSpecError,
    WorkflowError,
    WorkflowNotFoundError,
)
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.types import (
    CreateWorkflowResult,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    WorkflowSpec,
)

_DEFINITION_KEYS = frozenset({"handler"})


class RestateProvider(Provider):
    """Drives restate-server: owns one aiohttp session, opened and closed by `async with`."""

    def __init__(self, config: RestateConfig) -> None:
        self._config = config.check()
        self._session: aiohttp.ClientSession | None = None
        self._admin: AdminClient | None = None
        self._ingress: IngressClient | None = None
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
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Open the session and try the admin health check; unreachable is only a warning."""
        if self._session is not None:
            return
        timeout = aiohttp.ClientTimeout(total=self._config.request_timeout.total_seconds())
        self._session = aiohttp.ClientSession(
            timeout=timeout, connector=aiohttp.TCPConnector(limit=256)
        )
        self._admin = AdminClient(RestateHttp(self._session, self._config.admin_endpoint))
        self._ingress = IngressClient(RestateHttp(self._session, self._config.endpoint))
        try:
            await self._admin.health()
        except WorkflowError as exc:
            self._log.warning("Restate admin API not healthy at start: {}", exc)
        else:
            self._log.debug("Restate admin API healthy")

    async def aclose(self) -> None:
        """Close the session; safe to call twice."""
        session, self._session = self._session, None
        self._admin = self._ingress = None
        if session is not None:
            await session.close()

    @property
    def admin(self) -> AdminClient:
        """The admin API client (open the provider first)."""
        if self._admin is None:
            raise RuntimeError("RestateProvider is not open: use `async with RestateProvider(...)`")
        return self._admin

    @property
    def ingress(self) -> IngressClient:
        """The ingress client (open the provider first)."""
        if self._ingress is None:
            raise RuntimeError("RestateProvider is not open: use `async with RestateProvider(...)`")
        return self._ingress

    # -- names --------------------------------------------------------------------------

    def service_name(self, workflow_id: str) -> str:
        """The Restate service that runs `workflow_id`'s executions."""
        if self._config.service_name:
            return check_service_name(self._config.service_name)
        return service_name_for(workflow_id)

    # -- the contract ---------------------------------------------------------------------

    async def validate(self, spec: WorkflowSpec) -> None:
        """Offline checks of the spec and its Restate definition."""
        self._check_spec(spec)

    def _check_spec(self, spec: WorkflowSpec) -> str:
        """Validate `spec`; answer the Go handler name its definition names."""
        workflow_id = check_workflow_id(spec.workflow_id)
        self.service_name(workflow_id)
        definition = spec.definition
        if not isinstance(definition, dict):
            raise InvalidSpecError(
                "definition must be a JSON object such as {\"handler\": \"TenantProvisioning\"}",
                field="definition",
                workflow_id=workflow_id,
            )
        unknown = sorted(set(definition) - _DEFINITION_KEYS)
        if unknown:
            raise InvalidSpecError(
                f"definition has unknown keys {unknown}; known: {sorted(_DEFINITION_KEYS)}",
                field="definition",
                workflow_id=workflow_id,
            )
        reference = definition.get("handler")
        if not isinstance(reference, str) or not reference:
            raise InvalidSpecError(
                "definition.handler is required: the Go handler to run",
                field="definition.handler",
                workflow_id=workflow_id,
            )
        try:
            return go_handler_name(reference)
        except InvalidSpecError as exc:
            raise InvalidSpecError(
                exc.message, field="definition.handler", workflow_id=workflow_id
            ) from None

    async def create_workflow(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Register the deployment, check it hosts the handler, store the spec (first wins)."""
        handler = self._check_spec(spec)
        workflow_id = spec.workflow_id
        service = self.service_name(workflow_id)
        log = self._log.bind(workflow_id=workflow_id, service=service, handler=handler)
        deployment_id = await self._register(service, handler, workflow_id, log)
        record = {"spec": to_json(spec), "created_at": format_rfc3339(_now())}
        _, stored = await self.ingress.call(
            CATALOG_SERVICE, workflow_id, "put", record, workflow_id=workflow_id
        )
        created_at = parse_rfc3339(stored["created_at"])
        first = stored["created_at"] == record["created_at"]
        log.info("workflow {}", "created" if first else "already exists")
        return CreateWorkflowResult(
            workflow_id=workflow_id,
            provider_type=PROVIDER_TYPE,
            resource_ids={
                "service_name": service,
                "deployment_id": deployment_id,
                "endpoint": f"{self._config.endpoint}/{service}",
                "deployment_url": self._config.deployment_url,
            },
            created_at=created_at,
            message="workflow created" if first else "workflow already exists",
        )

    async def _register(self, service: str, handler: str, workflow_id: str, log: Any) -> str:
        """Register the deployment and make sure it hosts `handler`; answer its id."""
        url = self._config.deployment_url
        deployment = await self.admin.register_deployment(url)
        try:
            await self._check_hosted(service, handler, workflow_id)
        except InvalidSpecError:
            # Restate answers a known URI with what it discovered then; the process there
            # may have changed since. Discover once more before calling the spec wrong.
            log.bind(deployment=url).info("handler not in registration; refreshing it")
            deployment = await self.admin.register_deployment(url, refresh=True)
            await self._check_hosted(service, handler, workflow_id)
        deployment_id = str(deployment.get("id", ""))
        log.bind(deployment_id=deployment_id, deployment=url).info("deployment registered")
        return deployment_id

    async def _check_hosted(self, service: str, handler: str, workflow_id: str) -> None:
        described = await self.admin.get_service(service)
        if described is None:
            raise InvalidSpecError(
                f"Restate has no service {service!r}: the deployment at "
                f"{self._config.deployment_url} does not host it",
                field="definition.handler",
                workflow_id=workflow_id,
            )
        hosted = str((described.get("metadata") or {}).get(HANDLERS_METADATA, "")).split(",")
        if handler not in hosted:
            raise InvalidSpecError(
                f"service {service!r} does not host handler {handler!r} "
                f"(it hosts: {', '.join(h for h in hosted if h) or 'nothing'})",
                field="definition.handler",
                workflow_id=workflow_id,
            )

    async def _stored_spec(self, workflow_id: str) -> WorkflowSpec | None:
        _, record = await self.ingress.call(
            CATALOG_SERVICE, workflow_id, "get", workflow_id=workflow_id
        )
        if record is None:
            return None
        return from_json(WorkflowSpec, record["spec"])

    async def start_execution(
        self, workflow_id: str, execution: ExecutionInput
    ) -> ExecutionResult:
        """Start one run of the stored spec; the execution name is the idempotency key."""
        check_workflow_id(workflow_id)
        name = execution.execution_name or f"exec-{uuid.uuid4().hex}"
        check_execution_name(name)
        spec = await self._stored_spec(workflow_id)
        if spec is None:
            raise WorkflowNotFoundError(workflow_id)
        service = self.service_name(workflow_id)
        timeout = spec.timeout or self._config.timeout
        envelope = ExecutionEnvelope(
            workflow_id=workflow_id,
            handler=self._check_spec(spec),
            execution_name=name,
            input=execution.input,
            tags=execution.tags,
            metadata=execution.metadata,
            trigger_source=execution.trigger_source,
            timeout=to_json(timeout),
            retry_policy=spec.retry_policy,
        )
        key = workflow_key(workflow_id, name)
        invocation_id, accepted = await self.ingress.send_workflow(
            service, key, envelope.to_json(), workflow_id=workflow_id
        )
        self._log.bind(
            workflow_id=workflow_id, execution_id=invocation_id, service=service, key=key
        ).info("execution {}", "started" if accepted else "already started")
        return ExecutionResult(
            execution_id=invocation_id,
            workflow_id=workflow_id,
            provider_type=PROVIDER_TYPE,
            state=ExecutionState.PENDING if accepted else ExecutionState.RUNNING,
            started_at=_now(),
            message="execution started" if accepted else "execution already started",
        )

    async def get_execution_status(self, execution_id: str) -> ExecutionStatus:
        """Invocation, journal and shim state, read in parallel from Restate's SQL."""
        check_execution_id(execution_id)
        invocations, journal, state_rows = await asyncio.gather(
            self.admin.query(_sql(_INVOCATION_SQL, execution_id)),
            self.admin.query(_sql(_JOURNAL_SQL, execution_id)),
            self.admin.query(_sql(_STATE_SQL, execution_id)),
        )
        if not invocations or invocations[0].get("target_handler_name") != "run":
            raise ExecutionNotFoundError(execution_id)
        status = build_status(execution_id, invocations[0], journal, state_rows)
        self._log.bind(
            workflow_id=status.workflow_id, execution_id=execution_id, state=status.state.value
        ).debug("execution status read")
        return status

    async def stop_execution(self, execution_id: str, reason: str) -> None:
        """Record `reason` with the execution, then cancel it; a finished one stays as it is."""
        check_execution_id(execution_id)
        rows = await self.admin.query(_sql(_TARGET_SQL, execution_id))
        if not rows or rows[0].get("target_handler_name") != "run":
            raise ExecutionNotFoundError(execution_id)
        target = rows[0]
        log = self._log.bind(
            execution_id=execution_id,
            workflow_id=str(target["target_service_key"]).partition(KEY_SEPARATOR)[0],
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
        )
        cancelled = await self.admin.cancel_invocation(execution_id)
        log.bind(reason=reason).info(
            "stop: {}", "cancellation requested" if cancelled else "execution already finished"
        )

    async def delete_workflow(self, workflow_id: str) -> None:
        """Forget the stored spec: no new executions; running ones go on."""
        check_workflow_id(workflow_id)
        await self.ingress.call(CATALOG_SERVICE, workflow_id, "delete", workflow_id=workflow_id)
        self._log.bind(workflow_id=workflow_id).info("workflow deleted")


_INVOCATION_COLUMNS = (
    "id, target_service_name, target_service_key, target_handler_name, status, created_at, "
    "running_at, completed_at, completion_result, completion_failure, retry_count, "
    "last_failure, last_failure_related_command_name"
)
_INVOCATION_SQL = f"SELECT {_INVOCATION_COLUMNS} FROM sys_invocation WHERE id = '{{id}}'"  # noqa: S608
_TARGET_SQL = (
    "SELECT target_service_name, target_service_key, target_handler_name, status "
    "FROM sys_invocation WHERE id = '{id}'"
)
_JOURNAL_SQL = (
    "SELECT index, entry_type, name, entry_lite_json, appended_at "
    "FROM sys_journal WHERE id = '{id}' ORDER BY index"
)
_STATE_SQL = (
    "SELECT s.key, s.value_utf8 FROM state s JOIN sys_invocation i "
    "ON s.service_name = i.target_service_name AND s.service_key = i.target_service_key "
    "WHERE i.id = '{id}'"
)


def _sql(template: str, execution_id: str) -> str:
    """Fill `template` with an invocation id, checked here again: only base62 enters SQL."""
    return template.format(id=check_execution_id(execution_id))


def _now() -> datetime:
    return datetime.now(UTC)
