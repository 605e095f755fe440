"""Self-registration: the deployment registers its own address with Restate once it serves,
as Landlord's Restate worker does (`worker_register_on_startup`, true by default).

The address is `worker_advertised_url`, else `deployment_url`; the admin API is
`worker_admin_endpoint`, else `admin_endpoint` (else beside `endpoint`). Everything else
Restate needs is the provider's own settings from the same sources: `auth_type` and
`api_key` (sent to the admin API and the ingress), `use_http_11` and `deployment_headers`
(what Restate uses to reach this deployment), `service_name`, the worker's namespace and
prefix, timeouts and retries. Without an address there is nothing to register: one log
line says so and the deployment serves on; a setting that cannot work stops the start
with a ConfigError naming its key.

The same rule as `create_workflow` holds: a new address becomes the newest revision; an
address already registered whose handlers changed is registered again only while nothing
runs on it. Once registered, the built-in workflows it hosts (`tenant-provisioning`) are
stored, so Landlord invokes them with no `create_workflow`. While Restate (or this
deployment's own listener) is not there yet it retries with backoff; every failure is
logged, none ends the process.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from attrs import frozen
from loguru import logger

from landlord_restate.restate.config import AuthType, RestateConfig, WorkerConfig
from landlord_restate.restate.settings import env_name

if TYPE_CHECKING:
    from loguru import Logger

REGISTER_ENV = env_name("worker_register_on_startup")
ADVERTISED_URL_ENV = env_name("worker_advertised_url")
ADMIN_ENDPOINT_ENV = env_name("worker_admin_endpoint")
#: the longest pause between two tries
_MAX_DELAY = 10.0
#: settings that say where a deployment of another mechanism is: self-registration
#: registers this process's own address, whatever the provider's mechanism
_OTHER_MECHANISMS = frozenset({
    "execution_mechanism", "deployment_url", "kubernetes_service", "kubernetes_namespace",
    "kubernetes_port", "lambda_arn", "assume_role_arn", "admin_endpoint", "endpoint",
})


@frozen(kw_only=True)
class SelfRegistration:
    """Where to register this deployment: the provider config that reaches Restate's admin
    API with this deployment's own address (`config.deployment_url`)."""

    config: RestateConfig

    @property
    def address(self) -> str:
        """The address Restate invokes this deployment at."""
        return self.config.deployment_address

    @classmethod
    def load(
        cls, worker: WorkerConfig, settings: Mapping[str, Any], *, log: Logger | None = None
    ) -> SelfRegistration | None:
        """None when self-registration is off, or on without an address to register (then
        a log line says so: the deployment serves on); ConfigError naming the key when a
        setting cannot work."""
        log = log or logger
        if not worker.worker_register_on_startup:
            log.info("self-registration off ({}=false)", REGISTER_ENV)
            return None
        address = worker.worker_advertised_url or settings.get("deployment_url")
        admin = worker.worker_admin_endpoint or settings.get("admin_endpoint")
        endpoint = settings.get("endpoint")
        if not address:
            log.info(
                "self-registration skipped: no address to register; set {} (or "
                "deployment_url) to where Restate reaches this deployment, or {}=false",
                ADVERTISED_URL_ENV, REGISTER_ENV,
            )
            return None
        if not admin and not endpoint:
            log.info(
                "self-registration skipped: no Restate admin API; set {} (or "
                "admin_endpoint, or endpoint), or {}=false", ADMIN_ENDPOINT_ENV, REGISTER_ENV,
            )
            return None
        admin = str(admin or _admin_beside(str(endpoint)))
        own = {k: v for k, v in settings.items() if k not in _OTHER_MECHANISMS}
        if own.get("auth_type") in (AuthType.IAM, AuthType.IAM.value):
            # iam is how Restate invokes a Lambda deployment, not how anyone calls its
            # admin API: nothing to send there
            own.pop("auth_type")
        config = RestateConfig(
            **own,
            endpoint=str(endpoint or _ingress_beside(admin)),
            admin_endpoint=admin,
            execution_mechanism="self-hosted",
            deployment_url=str(address),
        ).check()
        return cls(config=config)


def _ingress_beside(admin: str) -> str:
    """The ingress on Restate's default port, beside a (first) admin API URL."""
    return _on_port(admin, 8080)


def _admin_beside(endpoint: str) -> str:
    """The admin API on Restate's default port, beside a (first) ingress URL."""
    return _on_port(endpoint, 9070)


def _on_port(url: str, port: int) -> str:
    parts = urlsplit(url.split(",")[0].strip())
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    return urlunsplit((parts.scheme, f"{host}:{port}", "", "", ""))


async def register_when_serving(registration: SelfRegistration) -> str | None:
    """Register this deployment, retrying while Restate or this listener is not there;
    answer the deployment id, or None after a failure that retrying cannot mend."""
    # loaded here: the deployment imports the provider (and aiohttp) only when it
    # registers itself
    from landlord_restate.restate.errors import (
        DeploymentError,
        DeploymentInUseError,
        RestateConnectionError,
        RestateServerError,
    )
    from landlord_restate.restate.provider import RestateProvider
    from landlord_restate.workflow.errors import WorkflowError

    config = registration.config
    log = logger.bind(deployment=registration.address, admin=config.admin_endpoint)
    delay, attempt = 0.2, 0
    while True:
        attempt += 1
        try:
            async with RestateProvider(config) as provider:
                deployment_id = await provider.register_deployment()
        except DeploymentInUseError as exc:
            log.error("self-registration refused: {}", exc.message)  # noqa: TRY400 (expected: no traceback)
            return None
        except RestateServerError as exc:
            if exc.status not in (401, 403):
                log.error("self-registration failed: {}", exc.message)  # noqa: TRY400 (its message says it)
                return None
            log.error(  # noqa: TRY400 (its message says it)
                "self-registration refused by the admin API ({}): auth_type is {} and an "
                "api_key is {}; check them against what the admin API expects",
                exc.status, config.auth_type.value, "set" if config.api_key else "not set",
            )
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
