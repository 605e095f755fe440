"""The provider's configuration (Landlord's `workflow.restate` section)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit, urlunsplit

from attrs import Factory, frozen

from landlord_restate.workflow.errors import ConfigError

DEFAULT_ADMIN_PORT = 9070
DEFAULT_DEPLOYMENT_URL = "http://127.0.0.1:9080"


def _admin_from_endpoint(config: RestateConfig) -> str:
    """The ingress endpoint's scheme and host, on Restate's admin port."""
    parts = urlsplit(config.endpoint)
    host = parts.hostname or ""
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return urlunsplit((parts.scheme, f"{host}:{DEFAULT_ADMIN_PORT}", "", "", ""))


@frozen(kw_only=True)
class RestateConfig:
    """Where Restate and the handler deployment are, and how long to wait for them."""

    #: the Restate ingress, e.g. http://127.0.0.1:8080
    endpoint: str
    #: the admin API; default: the endpoint's host on port 9070
    admin_endpoint: str = Factory(_admin_from_endpoint, takes_self=True)
    #: where restate-server reaches the handler deployment (`services.app:app`)
    deployment_url: str = DEFAULT_DEPLOYMENT_URL
    #: one service hosting every handler; default: a service per workflow id
    service_name: str | None = None
    #: default execution timeout when a spec sets none; zero: no timeout
    timeout: timedelta = timedelta(0)
    #: the longest one HTTP request to Restate may take
    request_timeout: timedelta = timedelta(seconds=30)

    def check(self) -> RestateConfig:
        """Raise `ConfigError` naming the key when a value cannot work."""
        if not self.endpoint:
            raise ConfigError("endpoint is required (the Restate ingress URL)", key="endpoint")
        for key in ("endpoint", "admin_endpoint", "deployment_url"):
            _check_url(key, getattr(self, key))
        if self.timeout < timedelta(0):
            raise ConfigError(f"timeout must not be negative, got {self.timeout}", key="timeout")
        if self.request_timeout <= timedelta(0):
            raise ConfigError(
                f"request_timeout must be positive, got {self.request_timeout}",
                key="request_timeout",
            )
        return self


def _check_url(key: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{key} must be an http(s) URL with a host, got {value!r}", key=key
        )
