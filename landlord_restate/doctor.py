"""`landlord-restate doctor`: the effective settings, then one probe per node and the
deployment, each answering ok or what to do.

The probes talk to each node's admin API and ingress on their own (a cluster with a node
down must say which), so this module, unlike the rest of the CLI, uses the provider's node
clients rather than only its public operations.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from attrs import frozen

from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.config import SECRET_KEYS, RestateConfig, masked
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.provider import RestateProvider
from landlord_restate.restate.validation import hosted_handlers
from landlord_restate.workflow.convert import format_go_duration
from landlord_restate.workflow.errors import WorkflowError


@frozen(kw_only=True)
class Check:
    """One probe's outcome: what was checked, whether it passed, and what it saw (or what
    to do about it)."""

    name: str
    ok: bool
    detail: str


def shown_settings(config: RestateConfig) -> dict[str, Any]:
    """Settings for display: secrets masked, durations as Go strings, enums as values."""
    shown: dict[str, Any] = {}
    for attribute in config.__attrs_attrs__:
        value = getattr(config, attribute.name)
        if attribute.name in SECRET_KEYS:
            value = masked(value)  # header values too: they may be credentials
        elif hasattr(value, "total_seconds"):
            value = format_go_duration(value)
        elif hasattr(value, "value"):
            value = value.value
        shown[attribute.name] = value
    return shown


async def run_checks(config: RestateConfig) -> list[Check]:
    """Every probe, in order: each admin node's health and version, each ingress node,
    then the deployment (when an admin node answers)."""
    checks: list[Check] = []
    async with RestateProvider(config) as provider:
        admins, ingresses = provider.node_clients()
        admin = provider.admin

        async def check(name: str, probe: Callable[[], Awaitable[str]], fix: str) -> bool:
            try:
                checks.append(Check(name=name, ok=True, detail=await probe()))
            except (WorkflowError, aiohttp.ClientError, TimeoutError) as exc:
                checks.append(Check(name=name, ok=False, detail=f"{exc} -> {fix}"))
                return False
            return True

        def admin_health(node: AdminClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                await node.health()
                return f"admin API answers at {node.endpoint}"
            return probe

        def version(node: AdminClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                return f"restate-server {await node.version()} at {node.endpoint}"
            return probe

        def ingress_health(node: IngressClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                await node.health()
                return f"ingress answers at {node.endpoint}"
            return probe

        async def deployment() -> str:
            address = config.deployment_address.rstrip("/")
            for found in await admin.deployments():
                target = str(found.get("uri") or found.get("arn") or "").rstrip("/")
                if target == address:
                    hosted: list[str] = []
                    for service in found.get("services", []):
                        described = await admin.get_service(str(service.get("name")))
                        hosted += sorted(hosted_handlers(described or {}))
                    return (f"{address} registered as {found.get('id')}, hosting "
                            f"{', '.join(hosted) or 'no Landlord handlers'}")
            # not registered yet is a healthy state: `create` registers it. Ask the
            # deployment itself (a dry run registers nothing) whether it answers.
            discovered = await admin.discover(config.registration())
            hosted = sorted({h for s in discovered for h in hosted_handlers(s)})
            if not hosted:
                raise WorkflowError(f"{address} answers but hosts no Landlord handlers")
            return (f"{address} answers, hosting {', '.join(hosted)}; not registered yet: "
                    "`landlord-restate create SPEC.json` registers it")

        # every node on its own, tried once: a cluster with a node down says which
        answering = 0
        for node in admins:
            if await check("admin health", admin_health(node),
                           "start restate-server or fix admin_endpoint"):
                answering += 1
                await check("server version", version(node), "check admin_endpoint")
        for entry in ingresses:
            await check("ingress", ingress_health(entry), "check endpoint")
        if answering:
            await check("deployment", deployment,
                        "run `landlord-restate create SPEC.json` to register it")
        else:
            checks.append(Check(name="deployment", ok=False,
                                detail="not checked: no admin node answers"))
    return checks
