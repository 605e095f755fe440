"""The provider's configuration: Landlord's `workflow.restate` section.

A frozen value; `check()` refuses settings that cannot work, naming the key. Its fields are
the settings: their names are the keys, their types say how a value is read, and their
metadata marks secrets and URL lists. Reading them from a file, the environment and flags
(`load_config`) lives in `landlord_restate.restate.settings`, which derives every key from
these fields; the URL grammar is `landlord_restate.restate.urls`.

The constructor takes an enum setting as a member or its spelling, and a URL list as a
comma-separated string or a list, as the sources do.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TypeVar

from attrs import Attribute, Factory, field, fields, frozen

from landlord_restate.restate.naming import IAM_ROLE_ARN, LAMBDA_FUNCTION_ARN
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.urls import (
    check_url,
    check_urls,
    is_loopback,
    join_urls,
    on_port,
    redacted,
    split_urls,
)
from landlord_restate.restate.urls import (
    url_problem as url_problem,  # imported from here by services/tracing.py
)
from landlord_restate.workflow.convert import format_go_duration
from landlord_restate.workflow.errors import ConfigError

E = TypeVar("E", bound=enum.Enum)

DEFAULT_ADMIN_PORT = 9070
#: the co-located `hypercorn services.app:app` of the `local` mechanism
DEFAULT_LOCAL_DEPLOYMENT_URL = "http://127.0.0.1:9080"
DEFAULT_KUBERNETES_PORT = 9080


class ExecutionMechanism(enum.StrEnum):
    """Where the handler deployment runs, which decides what is registered with Restate."""

    LOCAL = "local"
    SELF_HOSTED = "self-hosted"
    KUBERNETES = "kubernetes"
    FARGATE = "fargate"
    LAMBDA = "lambda"


class AuthType(enum.StrEnum):
    """How the provider authenticates to Restate."""

    NONE = "none"
    API_KEY = "api_key"
    IAM = "iam"


def _mechanism(value: Any) -> Any:
    """The constructor takes a member or its spelling; anything else is left for check()
    to name (settings refuse it earlier, naming the source)."""
    return _member_or_given(ExecutionMechanism, value)


def _auth(value: Any) -> Any:
    """As `_mechanism`, for `auth_type`."""
    return _member_or_given(AuthType, value)


def _admin_from_endpoint(config: RestateConfig) -> str:
    """Each ingress node's scheme and host, on Restate's admin port."""
    return on_port(config.endpoint, DEFAULT_ADMIN_PORT)


#: field metadata marking a secret: masked in reprs (see `_mask_secrets`), never in a
#: message, masked wherever settings are displayed. `SECRET_KEYS` lists the fields so marked.
SECRET: Mapping[str, Any] = {"secret": True}
#: field metadata marking a URL list: a comma-separated string, or a list in a config file
URL_LIST: Mapping[str, Any] = {"urls": True}


def masked(value: Any) -> Any:
    """A secret's value as it may be shown: a mapping keeps its keys (header names), any
    other value is "***"; None stays None."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict.fromkeys(value, "***")
    return "***"


def _masked_repr(value: Any) -> str:
    return repr(masked(value))


def _mask_secrets(cls: type, attributes: list[Attribute[Any]]) -> list[Attribute[Any]]:
    """attrs field transformer: every field marked SECRET is masked in the repr."""
    return [a.evolve(repr=_masked_repr) if a.metadata.get("secret") else a for a in attributes]


@frozen(kw_only=True, field_transformer=_mask_secrets)
class RestateConfig:
    """Where Restate and the handler deployment are, how to reach and trust them."""

    #: the Restate ingress, e.g. http://127.0.0.1:8080 (required); for a cluster, every
    #: node's ingress, comma-separated (a list in a config file)
    endpoint: str = field(converter=join_urls, metadata=URL_LIST)
    #: the admin API (comma-separated for a cluster); default: each endpoint's scheme and
    #: host on port 9070
    admin_endpoint: str = field(
        default=Factory(_admin_from_endpoint, takes_self=True), converter=join_urls,
        metadata=URL_LIST,
    )
    execution_mechanism: ExecutionMechanism = field(
        default=ExecutionMechanism.LOCAL, converter=_mechanism
    )
    #: one service hosting every handler; default: a service per workflow id
    service_name: str | None = None
    auth_type: AuthType = field(default=AuthType.NONE, converter=_auth)
    #: a secret: never in reprs, logs or messages
    api_key: str | None = field(default=None, metadata=SECRET)
    #: default execution timeout when a spec sets none
    timeout: timedelta = timedelta(minutes=30)
    #: retries of transient failures of provider calls that are safe to retry: at least
    #: this many, and more until retry_window has passed
    retry_attempts: int = 3
    #: how long a call that is safe to retry keeps retrying while Restate answers "not
    #: ready" (restart, leader election, a node down); long enough for a failover
    retry_window: timedelta = timedelta(seconds=30)
    #: where restate-server reaches the deployment (Landlord: worker_advertised_url)
    deployment_url: str | None = None
    kubernetes_service: str | None = None
    kubernetes_namespace: str | None = None
    kubernetes_port: int = DEFAULT_KUBERNETES_PORT
    lambda_arn: str | None = None
    assume_role_arn: str | None = None
    #: for deployments behind a load balancer that cannot speak HTTP/2
    use_http_11: bool = False
    #: headers restate-server adds to every request to the deployment (e.g. for an ALB)
    #: (values may be credentials: reprs show only the names)
    deployment_headers: dict[str, str] = field(factory=dict, metadata=SECRET)
    #: the longest one HTTP request to Restate may take
    request_timeout: timedelta = timedelta(seconds=30)
    #: no longer used: starts read no spec (the run reads its record itself). Accepted so
    #: that existing config files load; the provider warns when it is set.
    spec_cache_ttl: timedelta = timedelta(0)
    #: how long stop_execution lets a cancelled execution run its cancellation before it
    #: is killed (Landlord's reconciler waits 30 s for a stop to land)
    stop_grace: timedelta = timedelta(seconds=10)
    #: Landlord's worker keys that name services: the worker's services are
    #: `<namespace>_<prefix>_<service>` (Landlord's `WorkerServiceName`, joined by `_`), and
    #: the provider resolves every workflow to the same name (see `worker_service_name`)
    worker_namespace: str | None = None
    worker_service_prefix: str | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        """Every ingress node, in the order they are tried."""
        return split_urls(self.endpoint)

    @property
    def admin_endpoints(self) -> tuple[str, ...]:
        """Every admin API node, in the order they are tried."""
        return split_urls(self.admin_endpoint)

    @property
    def deployment_address(self) -> str:
        """What is registered: the deployment URL, or the Lambda ARN."""
        if self.execution_mechanism is ExecutionMechanism.LAMBDA:
            return str(self.lambda_arn)
        if self.deployment_url:
            return self.deployment_url
        if self.execution_mechanism is ExecutionMechanism.KUBERNETES:
            return (
                f"http://{self.kubernetes_service}.{self.kubernetes_namespace}"
                f".svc.cluster.local:{self.kubernetes_port}"
            )
        return DEFAULT_LOCAL_DEPLOYMENT_URL

    def registration(self) -> dict[str, Any]:
        """The body of `POST /deployments` for this mechanism (without `force`)."""
        if self.execution_mechanism is ExecutionMechanism.LAMBDA:
            body: dict[str, Any] = {"arn": self.lambda_arn}
            if self.assume_role_arn:
                body["assume_role_arn"] = self.assume_role_arn
        else:
            body = {"uri": self.deployment_address}
            if self.use_http_11:
                body["use_http_11"] = True
        if self.deployment_headers:
            body["additional_headers"] = dict(self.deployment_headers)
        return body

    def qualified(self, service: str) -> str:
        """`service` as the worker hosts it: with `worker_namespace` and
        `worker_service_prefix` in front, when set."""
        return worker_service_name(service, self.worker_namespace, self.worker_service_prefix)

    def backoff(self) -> Backoff:
        """How calls that are safe to retry retry transient answers, from these settings."""
        return Backoff(
            window=self.retry_window.total_seconds(), min_retries=self.retry_attempts
        )

    def auth_headers(self) -> dict[str, str]:
        """Headers for every request to Restate's admin API and ingress."""
        if self.auth_type is AuthType.API_KEY and self.api_key:
            return {"Authorization": f"Bearer {self.api_key}"}
        return {}

    def check(self) -> RestateConfig:
        """Raise `ConfigError` naming the key when a setting cannot work; else self."""
        if not self.endpoint:
            raise ConfigError(
                "endpoint is required: the Restate ingress URL, e.g. http://127.0.0.1:8080",
                key="endpoint",
            )
        check_urls("endpoint", self.endpoint)
        check_urls("admin_endpoint", self.admin_endpoint)
        mechanism = _member(ExecutionMechanism, self.execution_mechanism, "execution_mechanism")
        auth = _member(AuthType, self.auth_type, "auth_type")
        if self.deployment_url is not None:
            check_url("deployment_url", self.deployment_url)
        if auth is AuthType.API_KEY and not self.api_key:
            raise ConfigError("auth_type api_key needs api_key to be set", key="api_key")
        if self.api_key is not None and (
            not isinstance(self.api_key, str)
            or not self.api_key.isascii()
            or not self.api_key.isprintable()
            or any(c.isspace() for c in self.api_key)
        ):
            # an HTTP header cannot carry it (aiohttp refuses it at the first request); a
            # trailing newline from a secret mounted as a file is the usual cause
            raise ConfigError(
                "api_key must be printable ASCII without spaces or line breaks (a trailing "
                "newline from a secret file?); it is not shown",
                key="api_key",
            )
        _check_headers(self.deployment_headers)
        if auth is AuthType.IAM and mechanism is not ExecutionMechanism.LAMBDA:
            raise ConfigError(
                f"auth_type iam is for execution_mechanism lambda, not {mechanism}",
                key="auth_type",
            )
        self._check_mechanism(mechanism)
        if not isinstance(self.timeout, timedelta) or self.timeout <= timedelta(0):
            raise ConfigError(
                f"timeout must be positive, got {_shown(self.timeout)}", key="timeout"
            )
        if not isinstance(self.retry_attempts, int) or self.retry_attempts < 0:
            raise ConfigError(
                f"retry_attempts must be zero or more, got {self.retry_attempts}",
                key="retry_attempts",
            )
        if not isinstance(self.retry_window, timedelta) or self.retry_window < timedelta(0):
            raise ConfigError(
                f"retry_window must be zero or more, got {_shown(self.retry_window)}",
                key="retry_window",
            )
        if not isinstance(self.spec_cache_ttl, timedelta) or self.spec_cache_ttl < timedelta(0):
            raise ConfigError(
                f"spec_cache_ttl must be zero or more, got {_shown(self.spec_cache_ttl)}",
                key="spec_cache_ttl",
            )
        if not isinstance(self.stop_grace, timedelta) or self.stop_grace < timedelta(0):
            raise ConfigError(
                f"stop_grace must be zero or more, got {_shown(self.stop_grace)}", key="stop_grace"
            )
        check_service_qualifiers(self.worker_namespace, self.worker_service_prefix)
        if self.request_timeout <= timedelta(0):
            raise ConfigError(
                f"request_timeout must be positive, got {_shown(self.request_timeout)}",
                key="request_timeout",
            )
        return self

    def _check_mechanism(self, mechanism: ExecutionMechanism) -> None:
        remote = mechanism in (
            ExecutionMechanism.KUBERNETES, ExecutionMechanism.FARGATE, ExecutionMechanism.LAMBDA
        )
        if remote and self.deployment_url and is_loopback(self.deployment_url):
            raise ConfigError(
                f"deployment_url {self.deployment_url!r} is a loopback address, which "
                f"restate-server cannot reach a {mechanism} deployment at",
                key="deployment_url",
            )
        if mechanism in (ExecutionMechanism.SELF_HOSTED, ExecutionMechanism.FARGATE) and (
            not self.deployment_url
        ):
            raise ConfigError(
                f"execution_mechanism {mechanism} needs deployment_url "
                "(or worker_advertised_url): where restate-server reaches the handlers",
                key="deployment_url",
            )
        if mechanism is ExecutionMechanism.KUBERNETES and not self.deployment_url and not (
            self.kubernetes_service and self.kubernetes_namespace
        ):
            raise ConfigError(
                "execution_mechanism kubernetes needs kubernetes_service and "
                "kubernetes_namespace (or a deployment_url)",
                key="kubernetes_service" if not self.kubernetes_service else "kubernetes_namespace",
            )
        if mechanism is ExecutionMechanism.KUBERNETES and not 0 < self.kubernetes_port < 65536:
            raise ConfigError(
                f"kubernetes_port must be a TCP port, got {self.kubernetes_port}",
                key="kubernetes_port",
            )
        if mechanism is ExecutionMechanism.LAMBDA and not self.lambda_arn:
            raise ConfigError(
                "execution_mechanism lambda needs lambda_arn: the function restate-server invokes",
                key="lambda_arn",
            )
        if self.lambda_arn and not LAMBDA_FUNCTION_ARN.fullmatch(str(self.lambda_arn)):
            raise ConfigError(
                f"lambda_arn must be a qualified Lambda function ARN "
                "(arn:aws:lambda:REGION:ACCOUNT:function:NAME:VERSION-OR-ALIAS: Restate pins "
                f"executions to a version), got {self.lambda_arn!r}", key="lambda_arn"
            )
        if self.assume_role_arn and not IAM_ROLE_ARN.fullmatch(str(self.assume_role_arn)):
            raise ConfigError(
                "assume_role_arn must be an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME), "
                f"got {self.assume_role_arn!r}", key="assume_role_arn",
            )


#: the fields marked SECRET: the one list of keys whose values are never shown
SECRET_KEYS = frozenset(f.name for f in fields(RestateConfig) if f.metadata.get("secret"))

#: what joins Landlord's worker namespace, prefix and service name. Landlord writes `-`,
#: which restate-server 1.7.12 accepts too; this project keeps every service name to
#: letters, digits and `_` (the names enter SQL lookups, checked by that alphabet), so `_`
SERVICE_QUALIFIER_JOIN = "_"
#: a namespace or prefix: it starts a service name, so a letter first
_QUALIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Landlord's default for `worker_compute_cache_ttl`
DEFAULT_COMPUTE_CACHE_TTL = timedelta(minutes=5)


def worker_service_name(service: str, namespace: str | None, prefix: str | None) -> str:
    """Landlord's `WorkerServiceName`: `prefix` then `namespace` put in front of `service`
    (`ns_prefix_TenantProvisioning`), joined by `SERVICE_QUALIFIER_JOIN`."""
    if prefix:
        service = f"{prefix}{SERVICE_QUALIFIER_JOIN}{service}"
    if namespace:
        service = f"{namespace}{SERVICE_QUALIFIER_JOIN}{service}"
    return service


def check_service_qualifiers(namespace: Any, prefix: Any) -> None:
    """ConfigError naming `worker_namespace` or `worker_service_prefix` when it cannot start
    a service name."""
    for key, value in (("worker_namespace", namespace), ("worker_service_prefix", prefix)):
        if value is not None and (not isinstance(value, str) or not _QUALIFIER.fullmatch(value)):
            raise ConfigError(
                f"{key} {str(value)[:80]!r} must match {_QUALIFIER.pattern}: it is put in "
                f"front of service names, joined by {SERVICE_QUALIFIER_JOIN!r}", key=key,
            )


@frozen(kw_only=True)
class WorkerConfig:
    """Landlord's worker keys of the `workflow.restate` section (`worker_*`), as the handler
    deployment (the worker) reads them; the provider accepts them from every source and
    uses only the two that name services (`worker_namespace`, `worker_service_prefix`)."""

    #: register the deployment with Restate once it serves (Landlord's default: true)
    worker_register_on_startup: bool = True
    #: the admin API to register at; default: `admin_endpoint`
    worker_admin_endpoint: str | None = None
    worker_namespace: str | None = None
    worker_service_prefix: str | None = None
    #: Landlord's API, asked which compute provider a tenant uses (`GET /v1/tenants/{uuid}`)
    worker_landlord_api_url: str | None = None
    #: the compute provider of requests that name none (after Landlord's API)
    worker_compute_provider: str | None = None
    #: how long an answer of Landlord's API is used (Landlord: zero or less means 5m)
    worker_compute_cache_ttl: timedelta = DEFAULT_COMPUTE_CACHE_TTL
    #: the address Restate invokes this deployment at; default: `deployment_url`
    worker_advertised_url: str | None = None

    @property
    def cache_ttl(self) -> timedelta:
        """The cache time Landlord uses: the setting, or 5m when it is zero or less."""
        ttl = self.worker_compute_cache_ttl
        return ttl if ttl > timedelta(0) else DEFAULT_COMPUTE_CACHE_TTL

    def qualified(self, service: str) -> str:
        """`service` as this worker hosts it (see `worker_service_name`)."""
        return worker_service_name(service, self.worker_namespace, self.worker_service_prefix)

    def check(self) -> WorkerConfig:
        """ConfigError naming the key when a setting cannot work; else self."""
        for key in ("worker_admin_endpoint", "worker_advertised_url"):
            value = getattr(self, key)
            if value is not None:
                check_url(key, value)
        api = self.worker_landlord_api_url
        if api is not None:
            if "@" in api.partition("://")[2].split("/", 1)[0]:
                # the generic advice (api_key) is Restate's; Landlord's worker asks its own
                # API without credentials, as this one does
                raise ConfigError(
                    f"worker_landlord_api_url {redacted(api)!r} carries credentials, which "
                    "are never sent: Landlord's worker asks its API without them",
                    key="worker_landlord_api_url",
                )
            check_url("worker_landlord_api_url", api)
        check_service_qualifiers(self.worker_namespace, self.worker_service_prefix)
        if self.worker_compute_provider is not None and not self.worker_compute_provider.strip():
            raise ConfigError("worker_compute_provider must name a compute provider",
                              key="worker_compute_provider")
        return self


def _shown(value: Any) -> str:
    """A duration in a message as it is written in settings (`-1s`, not `-1 day, 23:59:59`)."""
    return format_go_duration(value) if isinstance(value, timedelta) else repr(value)


#: an HTTP header name: RFC 7230's token
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_headers(headers: Any) -> None:
    """`deployment_headers`: names that are HTTP tokens, values without control characters
    (a `\r\n` would split the header; restate-server answers 422 only when it is used).
    Messages name the header, never its value: it may be a credential."""
    if not isinstance(headers, Mapping):
        raise ConfigError(
            f"deployment_headers must map header names to values, got {type(headers).__name__}",
            key="deployment_headers",
        )
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            shown = repr(name)[:80]
            raise ConfigError(
                f"deployment_headers: header name {shown} is not a valid HTTP header name "
                "(letters, digits and !#$%&'*+.^_`|~- only; no spaces or line breaks)",
                key=f"deployment_headers.{str(name)[:80]}",
            )
        where = f"deployment_headers.{name}"
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {type(value).__name__}",
                              key=where)
        if any((ord(c) < 0x20 and c != "\t") or ord(c) == 0x7F for c in value):
            raise ConfigError(
                f"{where} holds a line break or another control character, which an HTTP "
                "header cannot carry; its value is not shown",
                key=where,
            )


def parse_member(kind: type[E], value: Any) -> E:
    """The member of enum `kind` spelled `value`: the one parser of every enum setting.

    ValueError listing the valid spellings otherwise.
    """
    try:
        return kind(value)
    except (ValueError, TypeError):
        valid = ", ".join(str(m.value) for m in kind)
        raise ValueError(f"must be one of: {valid}") from None


def _member_or_given(kind: type[E], value: Any) -> E | Any:
    try:
        return parse_member(kind, value)
    except ValueError:
        return value


def _member(kind: type[E], value: Any, key: str) -> E:
    try:
        return parse_member(kind, value)
    except ValueError as exc:
        raise ConfigError(f"{key} {value!r} is not one of: {str(exc).split(': ', 1)[1]}",
                          key=key) from None


