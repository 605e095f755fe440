"""Self-registration: the deployment registers its own address with Restate once it serves,
as Landlord's Restate worker does (`worker_register_on_startup`).

Off unless `WORKFLOW_RESTATE_WORKER_REGISTER_ON_STARTUP` is true. The address is
`WORKFLOW_RESTATE_WORKER_ADVERTISED_URL`, else `deployment_url`; the admin API is
`WORKFLOW_RESTATE_WORKER_ADMIN_ENDPOINT`, else `admin_endpoint`. The same rule as
`create_workflow` holds: a new address becomes the newest revision; an address already
registered whose handlers changed is registered again only while nothing runs on it.
While Restate (or this deployment's own listener) is not there yet it retries with
backoff; every failure is logged, none ends the process.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from attrs import frozen
from loguru import logger

from landlord_restate.restate.settings import env_name
from landlord_restate.workflow.errors import ConfigError

REGISTER_ENV = env_name("worker_register_on_startup")
ADVERTISED_URL_ENV = env_name("worker_advertised_url")
ADMIN_ENDPOINT_ENV = env_name("worker_admin_endpoint")
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off", ""})
#: the longest pause between two tries
_MAX_DELAY = 10.0


@frozen(kw_only=True)
class SelfRegistration:
    """Where to register this deployment, and how to reach Restate's admin API."""

    address: str
    admin_endpoint: str
    endpoint: str
    service_name: str | None = None

    @classmethod
    def load(cls, env: Mapping[str, str], settings: Mapping[str, Any]) -> SelfRegistration | None:
        """None unless self-registration is on; ConfigError naming the variable when the
        flag is not a boolean or no address or admin API is configured."""
        flag = env.get(REGISTER_ENV, "").strip().lower()
        if flag not in _TRUE | _FALSE:
            raise ConfigError(f"{REGISTER_ENV} must be true or false, got {flag!r}",
                              key=REGISTER_ENV)
        if flag in _FALSE:
            return None
        address = env.get(ADVERTISED_URL_ENV) or settings.get("deployment_url")
        admin = env.get(ADMIN_ENDPOINT_ENV) or settings.get("admin_endpoint")
        if not address:
            raise ConfigError(f"{REGISTER_ENV} needs {ADVERTISED_URL_ENV} (or deployment_url): "
                              "the address Restate invokes this deployment at",
                              key=ADVERTISED_URL_ENV)
        if not admin:
            raise ConfigError(f"{REGISTER_ENV} needs {ADMIN_ENDPOINT_ENV} (or admin_endpoint)",
                              key=ADMIN_ENDPOINT_ENV)
        endpoint = settings.get("endpoint") or _ingress_beside(str(admin))
        return cls(address=str(address), admin_endpoint=str(admin), endpoint=str(endpoint),
                   service_name=settings.get("service_name"))


def _ingress_beside(admin: str) -> str:
    """The ingress on Restate's default port, beside a (first) admin API URL."""
    parts = urlsplit(admin.split(",")[0].strip())
    return urlunsplit((parts.scheme, f"{parts.hostname}:8080", "", "", ""))


async def register_when_serving(registration: SelfRegistration) -> str | None:
    """Register this deployment, retrying while Restate or this listener is not there;
    answer the deployment id, or None after a failure that retrying cannot mend."""
    # loaded here: the deployment imports the provider (and aiohttp) only when it
    # registers itself
    from landlord_restate.restate.config import RestateConfig
    from landlord_restate.restate.errors import (
        DeploymentError,
        DeploymentInUseError,
        RestateConnectionError,
    )
    from landlord_restate.restate.provider import RestateProvider
    from landlord_restate.workflow.errors import WorkflowError

    log = logger.bind(deployment=registration.address, admin=registration.admin_endpoint)
    delay, attempt = 0.2, 0
    while True:
        attempt += 1
        try:
            config = RestateConfig(
                endpoint=registration.endpoint, admin_endpoint=registration.admin_endpoint,
                execution_mechanism="self-hosted", deployment_url=registration.address,
                service_name=registration.service_name,
            )
            async with RestateProvider(config) as provider:
                deployment_id = await provider.register_deployment()
        except DeploymentInUseError as exc:
            log.error("self-registration refused: {}", exc.message)  # noqa: TRY400 (expected: no traceback)
            return None
        except (RestateConnectionError, DeploymentError) as exc:
            # Restate not there yet, or it cannot reach this listener yet: try again
            log.bind(attempt=attempt).info("self-registration: not yet ({}); retry in {:.1f}s",
                                           exc.message, delay)
        except WorkflowError as exc:
            log.error("self-registration failed: {}", exc.message)  # noqa: TRY400 (its message says it)
            return None
        except Exception:
            log.exception("self-registration failed")
            return None
        else:
            log.bind(deployment_id=deployment_id).info(
                "self-registration: registered as {}", deployment_id
            )
            return deployment_id
        await asyncio.sleep(delay)
        delay = min(delay * 2, _MAX_DELAY)
