"""Executions: starting them (one durable send), `invoke`'s run identity, reading their
status, waiting for their end, and delivering Landlord's compute callback.

Nothing here waits for the handler deployment: a start is a send Restate accepts durably,
a status is one read of Restate's introspection, a wait is an attach, a callback a
one-way send to the control object.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime

import attrs

from landlord_restate.restate.catalog import StoredSpec
from landlord_restate.restate.config import ExecutionMechanism
from landlord_restate.restate.errors import InvokeContentionError, RestateServerError
from landlord_restate.restate.ingress import door_closed
from landlord_restate.restate.inputs import (
    callback_backoff,
    callback_body,
    caller_metadata,
    check_execution_input,
    check_provision_request,
    check_wait_timeout,
    invoke_name_base,
)
from landlord_restate.restate.naming import check_execution_id, check_workflow_id, workflow_key
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.reading import read_execution
from landlord_restate.restate.records import UnexpectedRow
from landlord_restate.restate.status import build_status
from landlord_restate.restate.tags import TagIndex
from landlord_restate.restate.tracing import annotate
from landlord_restate.restate.vocabulary import InvocationStatus
from landlord_restate.restate.wire import (
    CONTROL_SERVICE,
    DELIVER_CALLBACK_HANDLER,
    PROVIDER_TYPE,
    ExecutionEnvelope,
    Reuse,
    callback_delivery,
)
from landlord_restate.workflow.convert import format_rfc3339, to_json
from landlord_restate.workflow.errors import InvalidInputError, WorkflowNotFoundError
from landlord_restate.workflow.types import (
    CallbackOptions,
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ProvisionRequest,
    WorkflowStatus,
)

#: between an invoke's name and its run number
_RUN_SEPARATOR = "-r"
#: how many ended runs in a row invoke steps over before it gives up (a race of invokes
#: with runs that end in between; each round is one start and one lookup)
_INVOKE_ROUNDS = 8
#: how many executions' last seen states are remembered (to log each change once)
_OBSERVED_LIMIT = 4096
COMPLETED = InvocationStatus.COMPLETED


class Executions:
    """Start, invoke, read, wait for, and call back executions."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts
        self._observed: OrderedDict[str, ExecutionState] = OrderedDict()
        #: where a start's tags are kept for searches (search.py says where and why)
        self._tags = TagIndex(parts)

    # -- starting -------------------------------------------------------------------------

    async def start(
        self, workflow_id: str, execution: ExecutionInput, *, redrive: Sequence[Reuse] = (),
        redriven_from: str = "",
    ) -> tuple[ExecutionResult, bool]:
        """Start (or find) the run named by `execution`; also answer whether it is new.

        One send through the ingress, which Restate accepts durably whether or not the
        deployment is up; a start carrying tags or a trigger source then records them
        with the admin API (no deployment either). The run itself checks its workflow
        before its first step.
        """
        name, input_json = check_execution_input(
            workflow_id, execution,
            on_lambda=self._parts.config.execution_mechanism is ExecutionMechanism.LAMBDA)
        specs = self._parts.specs
        key = workflow_key(workflow_id, name)
        stored = await specs.route(workflow_id)
        try:
            invocation_id, accepted = await self._send(
                stored, execution, name, input_json, redrive, redriven_from
            )
        except RestateServerError as exc:
            if not door_closed(exc):
                raise
            # deleted (here or through another provider), maybe created again elsewhere
            specs.forget(workflow_id)
            fresh = await specs.route(workflow_id)
            if fresh.resolved.service == stored.resolved.service:
                raise WorkflowNotFoundError(workflow_id) from exc
            stored = fresh
            invocation_id, accepted = await self._send(
                stored, execution, name, input_json, redrive, redriven_from
            )
        # findable by its tags from the moment this returns (the first start's tags win)
        await self._tags.record(invocation_id, execution.tags, execution.trigger_source,
                                accepted=accepted)
        self._parts.bind(
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

    async def _send(
        self,
        stored: StoredSpec,
        execution: ExecutionInput,
        name: str,
        input_json: str,
        redrive: Sequence[Reuse],
        redriven_from: str,
    ) -> tuple[str, bool]:
        workflow_id = stored.spec.workflow_id
        metadata, dropped = caller_metadata(execution.metadata)
        if dropped:
            self._parts.bind(workflow_id=workflow_id, execution_name=name).warning(
                "start: metadata keys {} are the provider's to state; dropped", dropped
            )
        envelope = ExecutionEnvelope(
            workflow_id=workflow_id,
            handler=stored.resolved.handler,
            execution_name=name,
            tags=execution.tags,
            metadata=metadata,
            trigger_source=execution.trigger_source,
            timeout=to_json(stored.spec.timeout or self._parts.config.timeout),
            retry_policy=stored.spec.retry_policy,
            redrive=list(redrive),
            redriven_from=redriven_from,
            catalog_entry=stored.entry,
        )
        return await self._parts.ingress.send_workflow(
            stored.resolved.service, workflow_key(workflow_id, name),
            envelope.start_body(input_json), workflow_id=workflow_id,
        )

    async def invoke(
        self, workflow_id: str, request: ProvisionRequest, trigger_source: str
    ) -> ExecutionResult:
        """The run Landlord's reconciler asks for (see `RestateProvider.invoke`)."""
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
        log = self._parts.bind(workflow_id=workflow_id, operation=operation,
                               tenant=request.tenant_uuid or request.tenant_id)
        run = await self._next_run(workflow_id, base)
        for _ in range(_INVOKE_ROUNDS):
            result, accepted = await self.start(
                workflow_id, attrs.evolve(execution, execution_name=f"{base}{_RUN_SEPARATOR}{run}")
            )
            if accepted:
                log.bind(execution_id=result.execution_id, run=run).info("invoke: new run")
                return result
            if (await self._parts.sql.target(result.execution_id)).get("status") != COMPLETED:
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
        runs = await self._parts.sql.runs_by_key_prefix(prefix)
        numbered = {
            int(key.removeprefix(prefix)): status for key, status in runs.items()
            if key.startswith(prefix) and key.removeprefix(prefix).isascii()
            and key.removeprefix(prefix).isdigit()
        }
        if not numbered:
            return 1
        newest = max(numbered)
        return newest if numbered[newest] != COMPLETED else newest + 1

    # -- reading --------------------------------------------------------------------------

    async def status(self, execution_id: str) -> ExecutionStatus:
        """One read of everything the status needs, then one pure build of it."""
        check_execution_id(execution_id)
        sql = self._parts.sql
        try:
            status = build_status(await read_execution(sql, execution_id))
        except UnexpectedRow as exc:
            raise sql.protocol_error(exc, execution_id=execution_id) from exc
        self._observe(status)
        return status

    async def wait(self, execution_id: str, within: object) -> ExecutionStatus:
        """The terminal status, attached through the ingress, not polled; TimeoutError
        after `within` seconds (checked here: None waits as long as it takes)."""
        check_execution_id(execution_id)
        seconds = check_wait_timeout(within, execution_id)
        async with asyncio.timeout(seconds):
            while True:
                status = await self.status(execution_id)
                if status.state.is_terminal:
                    return status
                await self._parts.ingress.attach(execution_id)

    async def workflow_status(self, execution_id: str) -> WorkflowStatus:
        """The simplified status Landlord's newer interface asks for."""
        status = await self.status(execution_id)
        return WorkflowStatus(
            execution_id=status.execution_id, state=status.state, output=status.output,
            error=status.error,
        )

    def _observe(self, status: ExecutionStatus) -> None:
        """Log each state change this provider sees, once (bounded memory)."""
        previous = self._observed.pop(status.execution_id, None)
        self._observed[status.execution_id] = status.state
        if len(self._observed) > _OBSERVED_LIMIT:
            self._observed.popitem(last=False)
        if previous is not status.state:
            self._parts.bind(
                workflow_id=status.workflow_id,
                execution_id=status.execution_id,
                state=status.state.value,
                sub_state=status.metadata.get("workflow_sub_state"),
                previous=previous.value if previous else None,
                at=format_rfc3339(_now()),
            ).info("execution state {}", status.state.value)

    # -- the compute callback ---------------------------------------------------------------

    async def callback(
        self,
        execution_id: str,
        payload: ComputeCallbackPayload,
        options: CallbackOptions | None,
    ) -> None:
        """Deliver the compute callback durably, once (see `post_compute_callback`)."""
        check_execution_id(execution_id)
        if not isinstance(payload, ComputeCallbackPayload):
            raise InvalidInputError(
                f"expected a ComputeCallbackPayload, got {type(payload).__name__}",
                field="payload", execution_id=execution_id,
            )
        backoff = callback_backoff(options, execution_id)
        body = callback_body(payload, execution_id)
        target = await self._parts.sql.target(execution_id, backoff=backoff)
        delivery = callback_delivery(
            str(target["target_service_name"]), str(target["target_service_key"]), body
        )
        new = await self._parts.ingress.send(
            CONTROL_SERVICE, execution_id, DELIVER_CALLBACK_HANDLER, delivery,
            idempotency_key="compute-callback", execution_id=execution_id, backoff=backoff,
        )
        self._parts.bind(
            execution_id=execution_id, compute_execution_id=payload.execution_id,
            status=payload.status,
        ).info("compute callback {}", "accepted" if new else "was already delivered")


def _now() -> datetime:
    return datetime.now(UTC)
