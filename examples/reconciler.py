"""A small reconciler in the shape of Landlord's controller, on landlord-restate.

Landlord's reconciler (internal/controller/reconciler.go) triggers a tenant's workflow with
`Invoke`, polls `GetExecutionStatus`, reads it through `ExtractWorkflowDetails`, and when
the tenant's desired configuration changes it stops the running execution ("Configuration
updated") and invokes again. This is that loop, in a few lines of async Python.

Run it against `make run`'s stack (it uses the demo's `tenant-provisioning` workflow):

    .venv/bin/python examples/reconciler.py
"""

from __future__ import annotations

import asyncio
import sys

import attrs

from landlord_restate import (
    ExecutionState,
    ProvisionRequest,
    RestateConfig,
    RestateProvider,
    config_hash,
    extract_workflow_details,
)


@attrs.define
class Tenant:
    """What Landlord stores of a tenant, as far as the reconciler needs it."""

    name: str
    uuid: str
    desired_config: dict[str, object]
    status: str = "requested"  # requested -> provisioning -> ready | failed
    execution_id: str | None = None
    config_hash: str | None = None  # the configuration the execution was started with
    sub_state: str = ""
    retry_count: int | None = None
    message: str | None = None


async def reconcile(provider: RestateProvider, tenant: Tenant, workflow_id: str) -> Tenant:
    """One pass: trigger, or poll and record; a changed configuration restarts the run."""
    wanted = config_hash(tenant.desired_config)
    if tenant.execution_id is not None and tenant.config_hash != wanted:
        await provider.stop_execution(tenant.execution_id, "Configuration updated")
        tenant.execution_id = None
    if tenant.execution_id is None:
        result = await provider.invoke(workflow_id, ProvisionRequest(
            tenant_id=tenant.name, tenant_uuid=tenant.uuid, operation="provision",
            desired_config=tenant.desired_config, metadata={"config_hash": wanted},
        ))
        tenant.execution_id, tenant.config_hash = result.execution_id, wanted
        tenant.status = "provisioning"
        return tenant
    status = await provider.get_execution_status(tenant.execution_id)
    sub_state, retries, message = extract_workflow_details(status)
    tenant.sub_state, tenant.retry_count, tenant.message = sub_state.value, retries, message
    if status.state is ExecutionState.SUCCEEDED:
        tenant.status = "ready"
    elif status.state.is_terminal:
        tenant.status = "failed"
    return tenant


async def run_until_settled(
    provider: RestateProvider, tenant: Tenant, workflow_id: str, *, interval: float = 0.2,
    passes: int = 300,
) -> Tenant:
    """Reconcile until the tenant is ready or failed (at most `passes` passes)."""
    for _ in range(passes):
        tenant = await reconcile(provider, tenant, workflow_id)
        if tenant.status in ("ready", "failed"):
            return tenant
        await asyncio.sleep(interval)
    return tenant


async def main() -> int:
    """Provision one tenant on `make run`'s stack, then change its configuration."""
    config = RestateConfig(endpoint="http://127.0.0.1:8080")
    async with RestateProvider(config) as provider:
        tenant = Tenant(name="initech", uuid="7d0c9a40-5a1e-4f4b-9a4e-0c1d2e3f4a5b",
                        desired_config={"image": "initech/app:1", "replicas": 1})
        tenant = await run_until_settled(provider, tenant, "tenant-provisioning")
        print(f"{tenant.name}: {tenant.status} ({tenant.execution_id})")
        tenant.desired_config = {"image": "initech/app:2", "replicas": 2}
        tenant.status = "updating"
        tenant = await run_until_settled(provider, tenant, "tenant-provisioning")
        print(f"{tenant.name}: {tenant.status} after the update ({tenant.execution_id})")
    return 0 if tenant.status == "ready" else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
