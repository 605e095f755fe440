"""RestateProvider: Landlord's workflow provider contract, on a real restate-server.

The one public door. It owns the HTTP sessions and hands what the operations share
(`parts.Parts`: clients, the spec catalog, the logger) to a room per family of operations
(`rooms.Rooms`): `workflows`, `deployments`, `executions` (start, invoke, status, wait,
callback), `stopping`, `actions` (pause, resume, purge, redrive) and `search`. Each public method
checks nothing and knows nothing of SQL or HTTP: it is a traced call into its room.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Self

from loguru import logger

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.builtin import resolve_spec
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.connection import Connection
from landlord_restate.restate.deployments import DeploymentInfo
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.rooms import Rooms
from landlord_restate.restate.search import SearchFilters
from landlord_restate.restate.tracing import add_trace_ids, traced
from landlord_restate.restate.validation import ResolvedSpec
from landlord_restate.restate.wire import PROVIDER_TYPE
from landlord_restate.workflow.errors import ProviderStateError
from landlord_restate.workflow.provider import Provider
from landlord_restate.workflow.types import (
    CallbackOptions,
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionCount,
    ExecutionInput,
    ExecutionPage,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    ProvisionRequest,
    WorkflowSpec,
    WorkflowStatus,
)

_NOT_OPEN = "RestateProvider is not open: use `async with RestateProvider(...)`"


class RestateProvider(Provider):
    """Drives restate-server: owns one aiohttp session, opened and closed by `async with`."""

    def __init__(self, config: RestateConfig) -> None:
        self._config = config.check()
        #: the sessions, clients and rooms, while open
        self._connection: Connection | None = None
        self._rooms: Rooms | None = None
        #: nested `async with` blocks: the session closes when the outermost one ends
        self._entered = 0
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
        if self._connection is not None:
            self._connection.check_loop()
            return
        self._connection = Connection.open(self._config, self._log, self.resolve)
        try:
            self._rooms = Rooms.of(self._connection.parts)
            await self._connection.first_health_check()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Close the sessions; safe to call twice.

        A kill promised by `stop_execution` (once `stop_grace` has passed) is kept: the
        close waits until each stopped execution has ended or been killed, at most
        `stop_grace`, so closing a provider never leaves a stuck execution running.
        """
        rooms, self._rooms = self._rooms, None
        connection, self._connection = self._connection, None
        if rooms is not None:
            await rooms.stopping.aclose()
        if connection is not None:
            await connection.aclose()

    @property
    def _room(self) -> Rooms:
        """The rooms of an open provider, used from the loop that opened it."""
        if self._rooms is None or self._connection is None:
            raise ProviderStateError(_NOT_OPEN)
        self._connection.check_loop()
        return self._rooms

    @property
    def admin(self) -> AdminClient:
        """The admin API client (open the provider first)."""
        return self._room.parts.admin

    @property
    def ingress(self) -> IngressClient:
        """The ingress client (open the provider first)."""
        return self._room.parts.ingress

    def node_clients(self) -> tuple[list[AdminClient], list[IngressClient]]:
        """One client per configured node, each trying its node once: for health checks
        that must report every node rather than fail over."""
        self._room  # noqa: B018  (open, and on its loop)
        assert self._connection is not None
        return self._connection.node_clients()

    # -- workflows ------------------------------------------------------------------------

    def resolve(self, spec: WorkflowSpec) -> ResolvedSpec:
        """Check `spec` offline; answer the service and handler its executions run on."""
        return resolve_spec(spec, self._config)

    @traced("validate")
    async def validate(self, spec: WorkflowSpec) -> None:
        """Offline checks; then, if Restate answers, that the deployment hosts the handler.

        The deployment is asked by a dry-run discovery, which registers nothing, so this
        works before `create_workflow` and never changes the server. Only Restate being
        unreachable leaves the offline checks as the answer; a deployment Restate cannot
        use is an InvalidSpecError with Restate's answer.
        """
        await self._room.workflows.validate(spec)

    @traced("create_workflow")
    async def create_workflow(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Register the deployment, check it hosts the handler, store the spec (first wins),
        and open the service to starts (a delete may have closed it)."""
        return await self._room.workflows.create(spec)

    async def register_deployment(self) -> str:
        """Register the configured deployment (what `create_workflow` does first); answer
        its id. A new address becomes the newest revision of its services (new executions
        run there, executions in flight finish where they started). At an address already
        registered whose process now serves other handlers, it is registered again only
        while no execution runs on it; else DeploymentInUseError says how many do."""
        return await self._room.deployments.register_configured()

    @traced("delete_workflow")
    async def delete_workflow(self, workflow_id: str) -> None:
        """Forget the stored spec and close Restate's door: its service refuses ingress
        starts once no other workflow uses it. Running executions go on (they still time
        out, take their callback and can be stopped). restate-server alone answers."""
        await self._room.workflows.delete(workflow_id)

    # -- executions -----------------------------------------------------------------------

    @traced("start_execution")
    async def start_execution(
        self, workflow_id: str, execution: ExecutionInput
    ) -> ExecutionResult:
        """Start one run of the stored spec; the execution name is the idempotency key."""
        result, _ = await self._room.executions.start(workflow_id, execution)
        return result

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
        return await self._room.executions.invoke(workflow_id, request, trigger_source)

    @traced("get_execution_status")
    async def get_execution_status(self, execution_id: str) -> ExecutionStatus:
        """Invocation, journal and shim state, read from Restate's SQL introspection."""
        return await self._room.executions.status(execution_id)

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
        return await self._room.executions.wait(execution_id, timeout)

    @traced("get_workflow_status")
    async def get_workflow_status(self, execution_id: str) -> WorkflowStatus:
        """The simplified status Landlord's newer interface asks for."""
        return await self._room.executions.workflow_status(execution_id)

    @traced("stop_execution")
    async def stop_execution(self, execution_id: str, reason: str) -> None:
        """Record `reason`, then cancel: the handler's cancellation runs when it can. An
        execution not ended `stop_grace` later is killed. Either way it ends `stopped` with
        the reason; a finished one stays as it is. restate-server alone answers, at once."""
        await self._room.stopping.stop(execution_id, reason)

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
        await self._room.executions.callback(execution_id, payload, options)

    # -- operator actions -----------------------------------------------------------------

    @traced("kill_execution")
    async def kill_execution(self, execution_id: str, reason: str) -> None:
        """End the execution now as `stopped` with `reason`, without running the handler's
        cancellation; a finished execution stays as it is. Answered by restate-server alone."""
        await self._room.stopping.kill(execution_id, reason)

    @traced("pause_execution")
    async def pause_execution(self, execution_id: str) -> None:
        """Pause a pending or running execution: it runs no step until resumed. Pausing a
        paused or finished execution changes nothing."""
        await self._room.actions.act(execution_id, "pause")

    @traced("resume_execution")
    async def resume_execution(self, execution_id: str) -> None:
        """Let a paused execution go on; a backing-off one retries now. Resuming a running
        or finished execution changes nothing."""
        await self._room.actions.act(execution_id, "resume")

    @traced("purge_execution")
    async def purge_execution(self, execution_id: str) -> None:
        """Forget a finished execution (status, history, journal). ExecutionStateError for
        a pending or running one; an unknown id succeeds."""
        await self._room.actions.purge(execution_id)

    @traced("list_executions")
    async def list_executions(
        self,
        workflow_id: str | None = None,
        state: ExecutionState | str | Iterable[ExecutionState | str] | None = None,
        limit: int = 50,
        name_prefix: str | None = None,
        *,
        tags: Mapping[str, str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[ExecutionSummary]:
        """The newest `limit` executions (at most 10,000) matching every filter given, from
        Restate's introspection: of one workflow, in one state or several, carrying every
        tag in `tags` exactly (`{"tenant_id": "acme"}`), whose execution name starts with
        `name_prefix`, started at or after `since` and before `until`. Pages of any size:
        `list_executions_page`."""
        return await self._room.search.newest(SearchFilters(
            workflow_id=workflow_id, state=state, tags=tags, name_prefix=name_prefix,
            since=since, until=until), limit=limit)

    @traced("list_executions_page")
    async def list_executions_page(
        self,
        workflow_id: str | None = None,
        *,
        state: ExecutionState | str | Iterable[ExecutionState | str] | None = None,
        tags: Mapping[str, str] | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100,
        page_token: str | None = None,
    ) -> ExecutionPage:
        """One page of the executions matching every filter given (as `list_executions`),
        newest first, and `next_page_token` (None on the last page) to pass back with the
        same filters for the next one. Pages are keyset pages (start time, then id): paging
        never repeats or skips an execution, also while new ones start between pages. A
        token made for other filters, edited, or not made by this provider is an
        InvalidInputError. Answered by restate-server alone; a search by tag reads the
        tag's own partition, not every execution."""
        return await self._room.search.page(SearchFilters(
            workflow_id=workflow_id, state=state, tags=tags, name_prefix=name_prefix,
            since=since, until=until), page_size=page_size, page_token=page_token)

    def iter_executions(
        self,
        workflow_id: str | None = None,
        *,
        state: ExecutionState | str | Iterable[ExecutionState | str] | None = None,
        tags: Mapping[str, str] | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = 100,
    ) -> AsyncIterator[ExecutionSummary]:
        """Every execution matching the filters, newest first, read a page at a time
        (`async for summary in provider.iter_executions(tags={"tenant_id": "acme"})`)."""
        return self._room.search.iterate(SearchFilters(
            workflow_id=workflow_id, state=state, tags=tags, name_prefix=name_prefix,
            since=since, until=until), page_size=page_size)

    @traced("count_executions")
    async def count_executions(
        self,
        workflow_id: str | None = None,
        *,
        state: ExecutionState | str | Iterable[ExecutionState | str] | None = None,
        tags: Mapping[str, str] | None = None,
        name_prefix: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> ExecutionCount:
        """How many executions match the filters (as `list_executions_page`): `total`, and
        `by_state` for every state (zero for states not asked for). Restate answers it in
        one grouped query; the outcomes of runs it ended by a cancel or a kill (stopped or
        timed out) are read only when one of those states counts, and a search by tag
        reads that tag's candidates."""
        return await self._room.search.count(SearchFilters(
            workflow_id=workflow_id, state=state, tags=tags, name_prefix=name_prefix,
            since=since, until=until))

    @traced("lookup_execution")
    async def lookup_execution(self, workflow_id: str, execution_name: str) -> str:
        """The execution id of `workflow_id`'s run named `execution_name` (a run's name
        given where its id is expected); ExecutionNotFoundError when there is none.
        Answered by restate-server alone, by the partition that holds the run."""
        return await self._room.search.lookup(workflow_id, execution_name)

    @traced("redrive_execution")
    async def redrive_execution(self, execution_id: str) -> ExecutionResult:
        """A new execution of a failed, stopped or timed-out one: the same workflow and
        input, with what the original completed not done again (each completed step
        answers its journaled result, completed sleeps are not slept, a callback received
        is not waited for), going on from the first step that did not complete with the
        handler code deployed now. Its execution name says whose redrive it is and
        `metadata["redriven_from"]` names the original; redriving again answers the same
        execution. InvalidInputError for a succeeded, pending or running execution."""
        return await self._room.actions.redrive(execution_id)

    # -- deployments ------------------------------------------------------------------------

    @traced("list_deployments")
    async def list_deployments(self) -> list[DeploymentInfo]:
        """Every registered deployment: its address, services, how many executions still
        run on it, and whether it serves the newest revision of one of its services."""
        return await self._room.deployments.list()

    @traced("remove_deployment")
    async def remove_deployment(self, deployment_id: str, *, force: bool = False) -> None:
        """Remove a drained deployment. DeploymentInUseError while executions run on it or
        while it is the only deployment of a service a workflow uses; `force` overrides
        both and strands those executions (they fail for want of their code). An unknown
        id succeeds."""
        await self._room.deployments.remove(deployment_id, force=force)

