"""Python stand-in for Landlord's Go tenant-provisioning handler.

Input is shaped like Landlord's `ProvisionRequest`, output like its provisioning status
payload. Each phase is a named durable step, so a restart resumes after the last one done.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from services.context import HandlerContext
from services.errors import HandlerError
from services.registry import handler

_TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_OPERATIONS = ("plan", "provision", "update", "delete")


def validate_request(request: Any) -> dict[str, Any]:
    """Check the ProvisionRequest; a bad request fails for good, it is never retried."""
    if not isinstance(request, dict):
        raise HandlerError("invalid_request", "request must be a JSON object")
    tenant_id = request.get("tenant_id")
    if not isinstance(tenant_id, str) or not _TENANT_ID.fullmatch(tenant_id):
        raise HandlerError("invalid_request", f"tenant_id {tenant_id!r} is not a valid tenant id")
    operation = request.get("operation", "provision")
    if operation not in _OPERATIONS:
        raise HandlerError(
            "invalid_request", f"operation {operation!r} must be one of {', '.join(_OPERATIONS)}"
        )
    desired = request.get("desired_config") or {}
    if not isinstance(desired, dict):
        raise HandlerError("invalid_request", "desired_config must be a JSON object")
    return {
        "tenant_id": tenant_id,
        "tenant_uuid": request.get("tenant_uuid", ""),
        "operation": operation,
        "desired_config": desired,
    }


def provision_compute(request: dict[str, Any]) -> dict[str, Any]:
    """Stand-in for the compute provider call; deterministic ids so a retry is idempotent."""
    digest = hashlib.sha256(request["tenant_id"].encode()).hexdigest()[:12]
    config = request["desired_config"]
    return {
        "compute_id": f"compute-{digest}",
        "image": config.get("image", "landlord/tenant:latest"),
        "replicas": int(config.get("replicas", 1)),
        "endpoint": f"https://{request['tenant_id']}.tenants.local",
    }


def record_result(request: dict[str, Any], compute: dict[str, Any]) -> dict[str, Any]:
    """The status payload Landlord's reconciler reads back."""
    return {
        "tenant_id": request["tenant_id"],
        "tenant_uuid": request["tenant_uuid"],
        "operation": request["operation"],
        "status": "ready",
        "resource_ids": {"compute_id": compute["compute_id"]},
        "endpoint": compute["endpoint"],
        "message": f"tenant {request['tenant_id']} provisioned",
    }


@handler("TenantProvisioning")
async def tenant_provisioning(ctx: HandlerContext, request: Any) -> dict[str, Any]:
    """Validate, provision compute, record the result: three journaled steps."""
    checked = await ctx.step("validate-request", validate_request, request)
    ctx.logger.info("provisioning tenant", tenant_id=checked["tenant_id"])
    compute = await ctx.step("provision-compute", provision_compute, checked)
    result: dict[str, Any] = await ctx.step("record-result", record_result, checked, compute)
    return result
