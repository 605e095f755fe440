"""Workflows: validating a spec, creating it (register the deployment, store the spec, open
the door) and deleting it (forget the spec, close the door) with restate-server alone.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from landlord_restate.restate.builtin import adopt_builtins, resolve_spec
from landlord_restate.restate.deployments import Deployments, named
from landlord_restate.restate.errors import DeploymentError, RestateConnectionError
from landlord_restate.restate.naming import check_workflow_id
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.validation import ResolvedSpec, hosted_handlers
from landlord_restate.restate.wire import PROVIDER_TYPE
from landlord_restate.workflow.errors import InvalidSpecError
from landlord_restate.workflow.types import CreateWorkflowResult, WorkflowSpec

if TYPE_CHECKING:
    from loguru import Logger


class Workflows:
    """Validate, create and delete workflows."""

    def __init__(self, parts: Parts, deployments: Deployments) -> None:
        self._parts = parts
        self._deployments = deployments

    def resolve(self, spec: WorkflowSpec) -> ResolvedSpec:
        """Check `spec` offline; answer the service and handler its executions run on (with
        the worker's namespace and prefix, see `builtin.resolve_spec`)."""
        return resolve_spec(spec, self._parts.config)

    async def validate(self, spec: WorkflowSpec) -> None:
        """Offline checks, then a dry-run discovery (see `RestateProvider.validate`)."""
        resolved = self.resolve(spec)
        try:
            described = named(await self._deployments.discover(resolved.workflow_id),
                              resolved.service)
        except RestateConnectionError as exc:
            self._log(resolved).bind(deployment=self._parts.config.deployment_address).info(
                "validate: Restate unreachable, offline checks only ({})", exc
            )
            return
        except DeploymentError as exc:
            raise InvalidSpecError(
                f"definition: {exc.message}", field="definition",
                workflow_id=resolved.workflow_id,
            ) from exc
        self.require_hosted(resolved, described)

    async def create(self, spec: WorkflowSpec) -> CreateWorkflowResult:
        """Register, check, store (first wins), open (see `RestateProvider.create_workflow`).
        The built-in workflows the deployment hosts are stored too (`adopt_builtins`), the
        one created here excepted: its spec is the caller's."""
        resolved = self.resolve(spec)
        log = self._log(resolved).bind(handler=resolved.handler)
        deployment_id, public, described = await self._register(resolved, log)
        await adopt_builtins(self._parts, described, skip=resolved.workflow_id)
        stored, first = await self._parts.specs.put(spec, resolved)
        if not public:
            await self._parts.admin.set_public(stored.resolved.service, True)
            log.info("service opened to starts again")
        log.info("workflow {}", "created" if first else "already exists")
        return CreateWorkflowResult(
            workflow_id=resolved.workflow_id,
            provider_type=PROVIDER_TYPE,
            resource_ids={
                "service_name": resolved.service,
                "deployment_id": deployment_id,
                "endpoint": f"{self._parts.ingress.endpoint}/{resolved.service}",
                "deployment": self._parts.config.deployment_address,
                "catalog_entry": stored.entry,
            },
            created_at=stored.created_at,
            message="workflow created" if first else "workflow already exists",
        )

    async def _register(
        self, resolved: ResolvedSpec, log: Logger
    ) -> tuple[str, bool, list[dict[str, Any]]]:
        """Register the deployment and make sure it hosts the handler; answer its id,
        whether the service is open to ingress calls, and what discovery said it serves."""
        # a dry run first: a spec naming a handler the deployment does not host is refused
        # before anything on the server changes (no registration, no new revision)
        described = await self._deployments.discover(resolved.workflow_id)
        self.require_hosted(resolved, named(described, resolved.service))
        deployment = await self._deployments.register(described, resolved.workflow_id)
        service = await self._parts.admin.get_service(resolved.service)
        self.require_hosted(resolved, service)
        deployment_id = str(deployment.get("id", ""))
        log.bind(deployment_id=deployment_id, deployment=self._parts.config.deployment_address
                 ).info("deployment registered")
        return deployment_id, bool(service and service.get("public", True)), described

    def require_hosted(self, resolved: ResolvedSpec, described: dict[str, Any] | None) -> None:
        """InvalidSpecError unless the service, as Restate describes it, hosts the handler."""
        hosted = hosted_handlers(described) if described else set()
        if resolved.handler not in hosted:
            raise InvalidSpecError(
                f"definition.handler: service {resolved.service!r} at deployment "
                f"{self._parts.config.deployment_address} "
                f"{'hosts ' + ', '.join(sorted(hosted)) if hosted else 'is not there'}, "
                f"not {resolved.handler!r}",
                field="definition.handler",
                workflow_id=resolved.workflow_id,
            )

    async def delete(self, workflow_id: str) -> None:
        """Forget the spec, close the door (see `RestateProvider.delete_workflow`)."""
        check_workflow_id(workflow_id)
        log = self._parts.bind(workflow_id=workflow_id)
        specs = self._parts.specs
        stored = await specs.delete(workflow_id)
        if stored is not None:
            service = stored.resolved.service
            others = [s for s in await specs.read_all() if s.resolved.service == service]
            if others:
                log.bind(service=service).info(
                    "service stays open: {} other workflows use it", len(others)
                )
            else:
                await self._parts.admin.set_public(service, False)
                log.bind(service=service).info("service closed to ingress starts")
        log.info("workflow deleted")

    def _log(self, resolved: ResolvedSpec) -> Logger:
        return self._parts.bind(workflow_id=resolved.workflow_id, service=resolved.service)
