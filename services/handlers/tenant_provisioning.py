"""TenantProvisioning, as Landlord's Restate worker runs it (`tenant_service.go`).

Input is Landlord's `ProvisionRequest`. The tenant is `tenant_uuid`, else `tenant_id`; the
operation (default `provision`):

- `plan`: `{"status": "planned", "tenant_id"}`, nothing touched;
- `create`, `apply`, `provision`: the compute provider's `provision`; the output is its
  `ProvisionResult`. When it fails for good (another spec runs, the backend refused), the
  tenant's status is read, as Landlord does: if the tenant exists, that `ComputeStatus` is
  the output (what really runs), else the failure stands. A malformed `desired_config`
  always fails (the status of what runs would hide it);
- `update`: the provider's `update`; the output is its `UpdateResult`;
- `destroy`, `delete`: the provider's `destroy` (a tenant that is not there is fine);
  `{"status": "archived", "tenant_id"}`.

The provider is resolved in Landlord's order (`services.compute`). Each compute call is a
named durable step (`resolve-compute-provider`, `provision-compute`, `compute-status`,
`update-compute`, `destroy-compute`): a restart of the worker resumes after the last one
completed, and a call cut short in flight is run again, which the providers make safe
(docker finds the container it made). Failures: a compute error the backend may mend
(`retryable`) is retried by Restate; any other ends the run with a code:
`invalid_compute_config` (the message names the field of `desired_config`),
`compute_failed`, `compute_provider_not_found`, `unknown_operation`, `invalid_request`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from attrs import frozen

from landlord_restate.compute.errors import (
    ComputeError,
    ComputeProviderNotFoundError,
    InvalidComputeConfigError,
    TenantNotFoundError,
)
from landlord_restate.compute.types import ContainerSpec, TenantComputeSpec
from landlord_restate.workflow.convert import to_json
from landlord_restate.workflow.errors import ConfigError
from services import compute
from services.context import HandlerContext
from services.errors import HandlerError
from services.registry import handler

T = TypeVar("T")

PROVISION_OPERATIONS = ("create", "apply", "provision")
DESTROY_OPERATIONS = ("destroy", "delete")
#: the fields of a ProvisionRequest this handler reads, and the JSON type each must have
_STRING_FIELDS = ("tenant_id", "tenant_uuid", "operation", "compute_provider")
#: a failed provision whose code is one of these reads the tenant's status, as Landlord's
#: does: the backend refused for good, or the spec's retry policy ran out
_STATUS_FALLBACK = frozenset({"compute_failed", "step_failed"})
#: Landlord's name of the compute spec's `provider_config` in the request
_CONFIG_PATH = ("provider_config", "desired_config")


@frozen(kw_only=True)
class Request:
    """What the handler reads of a ProvisionRequest (Go's decoder ignores other keys)."""

    #: `tenant_uuid`, else `tenant_id`: what the compute provider knows the tenant by
    tenant: str
    tenant_id: str
    tenant_uuid: str
    operation: str
    desired_config: dict[str, Any]
    compute_provider: str


def read_request(request: Any) -> Request:
    """The request's fields, checked; `invalid_request` naming the field when one has the
    wrong type, or when neither tenant id is set (Landlord's "tenant identifier is
    required")."""
    if not isinstance(request, dict):
        raise HandlerError("invalid_request", "request must be a JSON object (a ProvisionRequest)")
    for name in _STRING_FIELDS:
        value = request.get(name)
        if value is not None and not isinstance(value, str):
            raise HandlerError("invalid_request",
                               f"request.{name} must be a string, got {type(value).__name__}")
    desired = request.get("desired_config")
    if desired is not None and not isinstance(desired, dict):
        raise HandlerError("invalid_request",
                           f"request.desired_config must be a JSON object, got "
                           f"{type(desired).__name__}")
    tenant_id, tenant_uuid = request.get("tenant_id") or "", request.get("tenant_uuid") or ""
    tenant = tenant_uuid or tenant_id
    if not tenant:
        raise HandlerError("invalid_request", "tenant identifier is required "
                                              "(request.tenant_uuid or request.tenant_id)")
    return Request(
        tenant=tenant, tenant_id=tenant_id, tenant_uuid=tenant_uuid,
        operation=request.get("operation") or "provision", desired_config=desired or {},
        compute_provider=request.get("compute_provider") or "",
    )


def compute_spec(tenant: str, provider: str, desired: dict[str, Any]) -> TenantComputeSpec:
    """Landlord's `buildComputeSpec`: the tenant, its provider, one container named "app" for
    docker, the desired config as the provider's config."""
    return TenantComputeSpec(
        tenant_id=tenant, provider_type=provider,
        containers=[ContainerSpec(name="app")] if provider == "docker" else [],
        provider_config=dict(desired) if desired else None,
    )


def failure(exc: ComputeError, doing: str) -> HandlerError:
    """A compute failure no retry mends, as the run's terminal error."""
    if isinstance(exc, InvalidComputeConfigError):
        problems = [_request_path(problem) for problem in exc.problems]
        field = _request_path(exc.field or "desired_config")
        return HandlerError("invalid_compute_config",
                            f"invalid desired_config for {exc.provider or 'the provider'}: "
                            + "; ".join(problems), cause=field)
    if isinstance(exc, ComputeProviderNotFoundError):
        return HandlerError("compute_provider_not_found",
                            f"compute provider lookup failed: {exc.message}", cause=exc.name)
    return HandlerError("compute_failed", f"{doing} failed: {exc.message}",
                        cause=exc.provider or "")


def _request_path(path: str) -> str:
    """A path in the compute spec as the request names it (`desired_config.ports[0]`)."""
    spec_name, request_name = _CONFIG_PATH
    return request_name + path[len(spec_name):] if path.startswith(spec_name) else path


async def _compute_call(doing: str, call: Callable[[], Awaitable[T]]) -> T:
    """`call()`, its compute errors classified: retryable ones raised as they are (Restate
    retries the step), others as the run's terminal HandlerError."""
    try:
        return await call()
    except ComputeError as exc:
        if exc.retryable:
            raise
        raise failure(exc, doing) from exc
    except ConfigError as exc:  # a provider its (absent) section cannot make
        raise HandlerError("compute_failed", f"{doing} failed: {exc.message}",
                           cause=exc.key or "") from exc


async def resolve_provider(request: Request) -> dict[str, str]:
    """The step `resolve-compute-provider`: the provider in Landlord's order, which must be
    one this worker can make; `{"provider", "source"}`."""
    worker = compute.current()
    chosen = await worker.resolve(request.compute_provider, request.tenant_id,
                                  request.tenant_uuid)
    if chosen is None:
        raise HandlerError(
            "compute_provider_not_found",
            "compute provider not specified: the request names none, nor Landlord's API, "
            "worker_compute_provider or compute.default_provider",
        )

    async def lookup() -> None:
        worker.provider(chosen.provider)

    await _compute_call("compute provider lookup", lookup)
    return {"provider": chosen.provider, "source": chosen.source}


async def provision(provider: str, spec: TenantComputeSpec) -> Any:
    """The step `provision-compute`: the provider's ProvisionResult, as Go writes it."""

    async def call() -> Any:
        return to_json(await compute.current().provider(provider).provision(spec))

    return await _compute_call("compute provisioning", call)


async def status_of(provider: str, tenant: str) -> Any:
    """The step `compute-status`: the tenant's ComputeStatus, or None when it has none (or
    the backend refuses to say); a backend that does not answer is retried."""

    async def call() -> Any:
        try:
            return to_json(await compute.current().provider(provider).get_status(tenant))
        except ComputeError as exc:
            if exc.retryable:
                raise
            return None

    return await _compute_call("compute status", call)


async def update(provider: str, tenant: str, spec: TenantComputeSpec) -> Any:
    """The step `update-compute`: the provider's UpdateResult, as Go writes it."""

    async def call() -> Any:
        return to_json(await compute.current().provider(provider).update(tenant, spec))

    return await _compute_call("compute update", call)


async def destroy(provider: str, tenant: str) -> bool:
    """The step `destroy-compute`: remove the tenant's compute; answers whether there was
    any (a tenant that is not there is archived all the same, as in Landlord)."""

    async def call() -> bool:
        try:
            await compute.current().provider(provider).destroy(tenant)
        except TenantNotFoundError:
            return False
        return True

    return await _compute_call("compute deprovisioning", call)


@handler("TenantProvisioning")
async def tenant_provisioning(ctx: HandlerContext, request: Any) -> Any:
    """Plan, provision, update or destroy a tenant's compute (see the module docstring)."""
    checked = read_request(request)
    tenant, operation = checked.tenant, checked.operation
    log = ctx.logger.bind(tenant_id=tenant, operation=operation)
    if operation == "plan":
        return {"status": "planned", "tenant_id": tenant}
    if operation not in (*PROVISION_OPERATIONS, *DESTROY_OPERATIONS, "update"):
        raise HandlerError("unknown_operation", f"unknown operation: {operation}",
                           cause="request.operation")
    chosen = await ctx.step("resolve-compute-provider", resolve_provider, checked)
    provider = chosen["provider"]
    log = log.bind(provider=provider)
    log.info("executing tenant workflow (provider from {})", chosen["source"])
    if operation in DESTROY_OPERATIONS:
        existed = await ctx.step("destroy-compute", destroy, provider, tenant)
        log.info("compute {}", "destroyed" if existed else "already removed")
        return {"status": "archived", "tenant_id": tenant}
    spec = compute_spec(tenant, provider, checked.desired_config)
    if operation == "update":
        return await ctx.step("update-compute", update, provider, tenant, spec)
    try:
        return await ctx.step("provision-compute", provision, provider, spec)
    except HandlerError as exc:
        if exc.code not in _STATUS_FALLBACK:
            raise  # a malformed desired_config, an unknown provider: what runs hides nothing
        status = await ctx.step("compute-status", status_of, provider, tenant)
        if status is None:
            raise
        log.info("provision failed ({}); the tenant exists: its status is the output",
                 exc.message)
        return status
