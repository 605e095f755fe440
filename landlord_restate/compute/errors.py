"""The compute providers' errors: one root under `WorkflowError`, subclasses that carry what
they are about.

`except TenantNotFoundError` plays the role of Go's `errors.Is(err, ErrTenantNotFound)`.
Every error says whether trying again can help (`retryable`): a backend that does not
answer may answer later; a bad image or config stays bad.
"""

from __future__ import annotations

from collections.abc import Sequence

from landlord_restate.workflow.errors import WorkflowError


class ComputeError(WorkflowError):
    """Root of every compute provider error; names the tenant and the provider."""

    def __init__(
        self,
        message: str,
        *,
        tenant_id: str | None = None,
        provider: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.tenant_id = tenant_id
        self.provider = provider
        self.retryable = retryable


class TenantNotFoundError(ComputeError):
    """The provider has no compute for this tenant (Landlord's `ErrTenantNotFound`)."""

    def __init__(self, tenant_id: str, *, provider: str | None = None) -> None:
        super().__init__(
            f"tenant compute resources not found: {tenant_id}",
            tenant_id=tenant_id, provider=provider,
        )


class TenantAlreadyProvisionedError(ComputeError):
    """A provision of a tenant the provider already runs with another spec (update it instead)."""

    def __init__(
        self, tenant_id: str, *, provider: str | None = None, message: str | None = None,
    ) -> None:
        super().__init__(
            message or f"tenant {tenant_id} already provisioned",
            tenant_id=tenant_id, provider=provider,
        )


class InvalidComputeConfigError(ComputeError):
    """A compute spec or provider config is malformed (Landlord's `ErrInvalidSpec`).

    `field` is the JSON path of the first problem (`provider_config.ports[0].container_port`
    in a spec, `ports[0].container_port` in a config alone); `problems` lists every one as
    "path: what is wrong". Nothing was created.
    """

    def __init__(
        self,
        problems: Sequence[str],
        *,
        field: str | None = None,
        tenant_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        what = f"{provider} compute config" if provider else "compute spec"
        super().__init__(
            f"invalid {what}: " + "; ".join(problems), tenant_id=tenant_id, provider=provider,
        )
        self.field = field
        self.problems = tuple(problems)


class ComputeProviderNotFoundError(ComputeError):
    """No compute provider is registered under this name (Landlord's `ErrProviderNotFound`)."""

    def __init__(self, name: str, known: Sequence[str] = ()) -> None:
        known_text = ", ".join(sorted(known)) or "none"
        super().__init__(
            f"compute provider not found: {name!r} (registered: {known_text})", provider=name,
        )
        self.name = name
        self.known = tuple(sorted(known))


class ComputeProviderConflictError(ComputeError):
    """A compute provider is already registered under this name (`ErrProviderConflict`)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"provider already registered: {name!r}", provider=name)
        self.name = name


class ComputeUnavailableError(ComputeError):
    """The backend (a Docker daemon, a cloud API) did not answer: retryable.

    `host` is the address that was tried.
    """

    def __init__(
        self, message: str, *, host: str, tenant_id: str | None = None, provider: str | None = None,
    ) -> None:
        super().__init__(message, tenant_id=tenant_id, provider=provider, retryable=True)
        self.host = host


class ComputeBackendError(ComputeError):
    """The backend answered and refused; `status` and `backend_message` are its own words.

    Retryable only when the backend says the fault is its own (HTTP 5xx); a refused image,
    name or config (4xx, a failed pull) is not.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        backend_message: str,
        tenant_id: str | None = None,
        provider: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(
            message, tenant_id=tenant_id, provider=provider,
            retryable=status >= 500 if retryable is None else retryable,
        )
        self.status = status
        self.backend_message = backend_message


class ProvisionFailedError(ComputeBackendError):
    """The backend refused to provision the tenant (Landlord's `ErrProvisionFailed`)."""


class UpdateFailedError(ComputeBackendError):
    """The backend refused to update the tenant (Landlord's `ErrUpdateFailed`)."""
