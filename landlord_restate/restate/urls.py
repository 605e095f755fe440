"""The grammar of the URL settings: one http(s) base URL, or a list of them (a cluster's
nodes) written comma-separated or, in a config file, as a list.

Pure: splitting, joining, checking one URL or a list (naming a bad entry by its position),
and showing a URL in a message with any credentials replaced by `***@`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from landlord_restate.workflow.errors import ConfigError


def split_urls(value: Any) -> tuple[str, ...]:
    """The entries of a comma-separated URL list (or one URL); spaces around commas go."""
    if not isinstance(value, str):
        return ()
    return tuple(part.strip(" ") for part in value.split(","))


def join_urls(value: Any) -> Any:
    """A list of URLs (from a YAML or TOML file, or Python) as the comma-separated form;
    anything else as given, for `check_urls` to name."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    return value


def on_port(value: str, port: int) -> str:
    """Each URL of a list as its scheme and host only, on `port` (e.g. the admin API beside
    each ingress node); "" when an entry is not a URL (its check names it)."""
    moved = []
    for url in split_urls(value):
        try:
            parts = urlsplit(url)
            host = parts.hostname or ""
        except ValueError:
            return ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        moved.append(urlunsplit((parts.scheme, f"{host}:{port}", "", "", "")))
    return ",".join(moved)


def entry_name(key: str, index: int, count: int) -> str:
    """How a message names entry `index` (from 0) of a list of `count` under `key`."""
    return f"{key} entry {index + 1} of {count}" if count > 1 else key


def check_urls(key: str, value: Any) -> None:
    """Every entry of a URL list (or the one URL) is a usable http(s) base URL; else
    ConfigError naming `key` and the entry."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{key} must be a URL, a comma-separated list of URLs, or a list, got "
            f"{type(value).__name__}",
            key=key,
        )
    entries = split_urls(value)
    for index, entry in enumerate(entries):
        check_url(key, entry, where=entry_name(key, index, len(entries)))


def check_url(key: str, value: Any, *, where: str | None = None) -> None:
    """One http(s) base URL: a host, a port in range, no credentials, nothing after the path.

    Messages show the URL with any user info replaced by ***: a password never leaves here.
    """
    where = where or key
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a URL string, got {type(value).__name__}", key=key)
    if not value:
        raise ConfigError(f"{where} is empty", key=key)
    shown = repr(redacted(value))
    why = url_problem(value)
    if why is not None:
        raise ConfigError(f"{where} {shown} {why}", key=key)


#: a DNS name (labels of letters, digits, '-' and, for container names, '_'), or an IPv4
_HOSTNAME = re.compile(
    r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}"
    r"[A-Za-z0-9_])?)*\.?"
)


def url_problem(value: str) -> str | None:
    """Why `value` is not a usable http(s) base URL, or None when it is."""
    if any(c.isspace() for c in value) or not value.isprintable():
        return "contains whitespace or control characters"
    if ";" in value:  # "http://a:8080;http://b:8080" would read as a port "8080;http:"
        return "contains ';': the entries of a URL list are separated by commas, not semicolons"
    if "://" not in value:  # urlsplit would read "restate:8080" as scheme "restate"
        return "has no scheme (expected http:// or https://)"
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        return f"is not a valid URL ({exc})"
    port_text = parts.netloc.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in parts.netloc.rsplit(
        "]", 1)[-1] else ""
    if port_text and not (port_text.isascii() and port_text.isdigit()):
        return f"has port {port_text!r}, which is not a number"
    try:
        port = parts.port
    except ValueError:
        return f"has port {port_text}, outside 1-65535"
    if parts.scheme not in ("http", "https"):
        return f"has scheme {parts.scheme!r}; only http and https work"
    if "@" in parts.netloc:
        return "carries credentials; give Restate's key as api_key (with auth_type api_key)"
    host = parts.hostname or ""
    if not host:
        return "has no host"
    if "?" in value or "#" in value:
        return "has a query or fragment; give only scheme, host, port and path"
    if port is not None and not 0 < port < 65536:
        return f"has port {port}, outside 1-65535"
    if parts.netloc.endswith(":"):
        return "has an empty port"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return f"has an invalid IPv6 host {host!r}"
    elif not _HOSTNAME.fullmatch(host):
        return f"has an invalid host {host!r}"
    return None


def redacted(value: str) -> str:
    """`value` with user info (user:password@) replaced by ***@."""
    scheme, sep, rest = value.partition("://")
    if not sep:
        return value
    authority, slash, path = rest.partition("/")
    if "@" in authority:
        authority = "***@" + authority.rsplit("@", 1)[1]
    return f"{scheme}{sep}{authority}{slash}{path}"


def is_loopback(url: str) -> bool:
    """Whether `url`'s host is this machine, in any spelling a resolver accepts: names
    (`localhost`, `localhost.`, `*.localhost`), IPv4 in short or integer forms (`127.1`,
    `2130706433`), IPv4-mapped IPv6 (`::ffff:127.0.0.1`), and the unspecified addresses
    (`0.0.0.0`, `::`), which reach the local machine too."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".").lower()
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # the forms inet_aton accepts: 127.1, 0x7f.1, 2130706433
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified
