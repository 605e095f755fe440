"""The workflows a worker brings with it, and the one rule of where a workflow runs.

Landlord's Go provider creates its default workflows (`defaultWorkflowIDs()`:
`tenant-provisioning`) when it is made, so Landlord invokes `tenant-provisioning` without
ever creating it. Here the deployment is what hosts the handler, so the spec is stored when
a deployment hosting `TenantProvisioning` registers (`adopt_builtins`): by itself at start,
through `register_deployment`, or through `create_workflow` of any workflow. A spec already
stored is kept (first write wins), so a `delete_workflow("tenant-provisioning")` lasts
until a deployment hosting it registers again.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from landlord_restate.restate.validation import ResolvedSpec, check_spec, hosted_handlers
from landlord_restate.restate.wire import PROVIDER_TYPE
from landlord_restate.workflow.types import WorkflowSpec

if TYPE_CHECKING:
    from landlord_restate.restate.config import RestateConfig
    from landlord_restate.restate.parts import Parts

#: Landlord's `tenantProvisioningWorkflowID` and its definition
TENANT_PROVISIONING = WorkflowSpec(
    workflow_id="tenant-provisioning",
    provider_type=PROVIDER_TYPE,
    name="Tenant provisioning",
    description="Provision, update or remove a tenant's compute (Landlord's built-in workflow)",
    definition={"handler": "TenantProvisioning"},
)
#: Landlord's `defaultWorkflowIDs()`, as specs
BUILTIN_WORKFLOWS: tuple[WorkflowSpec, ...] = (TENANT_PROVISIONING,)


def resolve_spec(spec: WorkflowSpec, config: RestateConfig) -> ResolvedSpec:
    """Check `spec` offline; answer the service and handler its executions run on: the
    spec's or the config's `service_name`, else derived from the workflow id, with the
    worker's namespace and prefix in front (Landlord's `WorkerServiceName`), as the
    deployment names the services it hosts."""
    resolved = check_spec(spec, config.service_name)
    service = config.qualified(resolved.service)
    return resolved if service == resolved.service else attrs.evolve(resolved, service=service)


async def adopt_builtins(
    parts: Parts, described: list[dict[str, Any]], *, skip: str | None = None
) -> list[str]:
    """Store the spec of each built-in workflow whose handler the deployment just registered
    hosts, on the service the provider resolves for it, unless a spec is stored (first
    write wins); open its service to starts when a delete had closed it. `described` is
    what discovery said the deployment serves; `skip` is a workflow the caller stores
    itself (`create_workflow` of that very id). Answers the workflow ids stored now."""
    adopted = []
    for spec in BUILTIN_WORKFLOWS:
        if spec.workflow_id == skip:
            continue
        resolved = resolve_spec(spec, parts.config)
        service = next((s for s in described if s.get("name") == resolved.service), None)
        if service is None or resolved.handler not in hosted_handlers(service):
            continue
        _, first = await parts.specs.put(spec, resolved)
        if not first:
            continue
        log = parts.bind(workflow_id=spec.workflow_id, service=resolved.service)
        described_now = await parts.admin.get_service(resolved.service)
        if described_now is not None and not described_now.get("public", True):
            await parts.admin.set_public(resolved.service, True)
            log.info("service opened to starts again")
        log.info("built-in workflow {} stored: its handler is hosted", spec.workflow_id)
        adopted.append(spec.workflow_id)
    return adopted
