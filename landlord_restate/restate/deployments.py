"""Handler deployments: discovering, registering, listing and removing the code Restate runs.

What an operator sees of them is `DeploymentInfo`: which code serves which services, and how
many executions still run on it. Registering never moves executions in flight onto other
code (see `Deployments.register`). Failures of the deployment itself are told apart from
Restate's by what Restate returns (`Deployments.call`).

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from attrs import frozen

from landlord_restate.restate.builtin import adopt_builtins
from landlord_restate.restate.errors import (
    DeploymentError,
    DeploymentInUseError,
    RestateConnectionError,
    RestateServerError,
)
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.validation import hosted_handlers
from landlord_restate.workflow.convert import parse_rfc3339
from landlord_restate.workflow.errors import InvalidInputError, WorkflowError

T = TypeVar("T")

#: a Restate deployment id, as the admin API writes it
DEPLOYMENT_ID = re.compile(r"^dp_[0-9A-Za-z]{10,64}$")


@frozen(kw_only=True)
class DeploymentInfo:
    """One registered handler deployment, as `list_deployments` reports it."""

    deployment_id: str
    #: the URI restate-server invokes, or the Lambda ARN
    address: str
    created_at: datetime | None
    #: the services it serves (names)
    services: tuple[str, ...]
    #: executions not completed whose invocation is pinned to it
    in_flight: int
    #: whether it serves the newest revision of at least one of its services
    latest: bool


def check_deployment_id(deployment_id: Any) -> str:
    """`deployment_id` if it has the shape of a Restate deployment id; else
    InvalidInputError (the one rule of the provider and the CLI)."""
    if not isinstance(deployment_id, str) or not DEPLOYMENT_ID.fullmatch(deployment_id):
        raise InvalidInputError(
            f"deployment_id {deployment_id!r} must look like dp_... (see list_deployments)",
            field="deployment_id",
        )
    return deployment_id


class Deployments:
    """Discover, register, list and remove handler deployments."""

    def __init__(self, parts: Parts) -> None:
        self._parts = parts

    async def discover(self, workflow_id: str | None = None) -> list[dict[str, Any]]:
        """The services the configured deployment serves now, by a dry run that registers
        nothing; a deployment Restate cannot use is DeploymentError (see `call`)."""
        config = self._parts.config
        return await self.call(
            self._parts.admin.discover(config.registration(), window=config.retry_window),
            workflow_id,
        )

    async def register_configured(self) -> str:
        """Discover and register the configured deployment; answer its id (see
        `RestateProvider.register_deployment`). A built-in workflow whose handler it hosts
        (`tenant-provisioning`) is stored unless one is (see `builtin.adopt_builtins`), so
        it starts with no `create_workflow`, as with Landlord's provider."""
        described = await self.discover()
        deployment = await self.register(described)
        deployment_id = str(deployment.get("id", ""))
        self._parts.bind(deployment_id=deployment_id,
                         deployment=self._parts.config.deployment_address).info(
            "deployment registered")
        await adopt_builtins(self._parts, described)
        return deployment_id

    async def register(
        self, described: list[dict[str, Any]], workflow_id: str | None = None
    ) -> dict[str, Any]:
        """Register what discovery `described`, never moving in-flight executions onto
        other code: a new address becomes the newest revision of its services; an address
        already registered whose process now serves other handlers is registered again
        only while no execution runs on it, else DeploymentInUseError says how many do."""
        return await self.call(self._register(described), workflow_id)

    async def _register(self, described: list[dict[str, Any]]) -> dict[str, Any]:
        admin, config = self._parts.admin, self._parts.config
        registration = config.registration()
        address = config.deployment_address
        existing = next((d for d in await admin.deployments()
                         if _same_address(address_of(d), address)), None)
        if existing is None:
            return await admin.register_deployment(registration)
        registered = await admin.deployment(str(existing.get("id"))) or existing
        if _handler_sets(registered.get("services")) == _handler_sets(described):
            return await admin.register_deployment(registration)
        deployment_id = str(existing.get("id"))
        in_flight = (await self._parts.sql.in_flight_by_deployment()).get(deployment_id, 0)
        if in_flight:
            raise DeploymentInUseError(
                f"the process at {address} now serves other handlers than deployment "
                f"{deployment_id} registered there, and {in_flight} executions still run on "
                "it: re-registering would move them onto other code. Deploy the new code at "
                "a new address (a versioned service or port, a Lambda version ARN) and "
                "register that; remove this deployment once it shows 0 in flight.",
                deployment_id=deployment_id, in_flight=in_flight,
            )
        self._parts.bind(deployment_id=deployment_id, deployment=address).info(
            "handlers changed at a drained deployment; registering it again"
        )
        return await admin.register_deployment(registration, refresh=True)

    async def call(self, call: Awaitable[T], workflow_id: str | None = None) -> T:
        """`call` (a discovery or registration), with a failure of the deployment raised as
        DeploymentError naming it and carrying Restate's answer, told apart from Restate
        itself by what Restate returns: a `restate_code` (META0003 unreachable, META0014
        not a Restate deployment, ...), or no answer while Restate's own health answers."""
        address = self._parts.config.deployment_address
        try:
            return await call
        except RestateServerError as exc:
            if exc.restate_code is None:
                raise
            raise DeploymentError(
                f"Restate cannot use the deployment at {address}: {exc.body}",
                deployment=address, status=exc.status, restate_code=exc.restate_code,
                body=exc.body, workflow_id=workflow_id,
            ) from exc
        except RestateConnectionError as exc:
            try:
                await self._parts.admin.health(backoff=Backoff(window=0, min_retries=0))
            except WorkflowError:
                raise exc from None  # Restate itself does not answer
            window = self._parts.config.retry_window.total_seconds()
            raise DeploymentError(
                f"the deployment at {address} did not answer Restate's discovery within "
                f"{window:g}s (retry_window); Restate itself answers",
                deployment=address, workflow_id=workflow_id,
            ) from exc

    async def list(self) -> list[DeploymentInfo]:
        """Every registered deployment, newest first, with its in-flight count."""
        admin, sql = self._parts.admin, self._parts.sql
        deployments, in_flight, latest = await asyncio.gather(
            admin.deployments(), sql.in_flight_by_deployment(), sql.latest_deployments(),
        )
        newest = set(latest.values())
        infos = []
        for deployment in deployments:
            deployment_id = str(deployment.get("id", ""))
            services = deployment.get("services")
            names = tuple(sorted(
                str(s.get("name")) for s in services if isinstance(s, dict)
            )) if isinstance(services, list) else ()
            created = deployment.get("created_at")
            infos.append(DeploymentInfo(
                deployment_id=deployment_id,
                address=address_of(deployment),
                created_at=parse_rfc3339(created) if isinstance(created, str) else None,
                services=names,
                in_flight=in_flight.get(deployment_id, 0),
                latest=deployment_id in newest,
            ))
        infos.sort(key=lambda info: info.created_at or datetime.min.replace(tzinfo=UTC),
                   reverse=True)
        return infos

    async def remove(self, deployment_id: str, *, force: bool) -> None:
        """Remove a drained deployment (see `RestateProvider.remove_deployment`)."""
        check_deployment_id(deployment_id)
        log = self._parts.bind(deployment_id=deployment_id, force=force)
        deployments = await self.list()
        target = next((d for d in deployments if d.deployment_id == deployment_id), None)
        if target is None:
            log.info("remove: no such deployment, nothing to do")
            return
        if not force:
            if target.in_flight:
                raise DeploymentInUseError(
                    f"deployment {deployment_id} still runs {target.in_flight} executions; "
                    "wait until list_deployments shows 0 in flight (or force=True, which "
                    "strands them)", deployment_id=deployment_id, in_flight=target.in_flight,
                )
            others = {s for d in deployments if d is not target for s in d.services}
            used = {stored.resolved.service for stored in await self._parts.specs.read_all()}
            orphaned = sorted((set(target.services) - others) & used)
            if orphaned:
                raise DeploymentInUseError(
                    f"deployment {deployment_id} is the only one serving {', '.join(orphaned)}"
                    ", which existing workflows use; register their new code first (or "
                    "force=True)", deployment_id=deployment_id, in_flight=0,
                )
        removed = await self._parts.admin.delete_deployment(deployment_id, force=True)
        log.bind(address=target.address).info(
            "remove: {}", "removed" if removed else "already gone"
        )


def named(services: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    """The service called `name` among those discovery or the admin API described."""
    return next((s for s in services if s.get("name") == name), None)


def address_of(deployment: dict[str, Any]) -> str:
    """A deployment's URI or Lambda ARN, as Restate reports it."""
    return str(deployment.get("uri") or deployment.get("arn") or "")


def _same_address(registered: str, configured: str) -> bool:
    """Restate keeps a URI with a trailing slash; a configured one may have none."""
    return registered.rstrip("/") == configured.rstrip("/")


def _handler_sets(services: Any) -> dict[str, tuple[frozenset[str], str]]:
    """What each service serves: Restate's handler names and the Go handlers it hosts."""
    sets = {}
    for service in services if isinstance(services, list) else ():
        if not isinstance(service, dict):
            continue
        handlers = service.get("handlers")
        names = frozenset(str(h.get("name")) for h in handlers if isinstance(h, dict)) if (
            isinstance(handlers, list)) else frozenset()
        sets[str(service.get("name"))] = (names, ",".join(sorted(hosted_handlers(service))))
    return sets
