"""When Restate's answer means "not ready yet", and how long to keep asking.

The one classification of transient answers (a restart, a leader election, a node down)
and the backoff policy; pure, so the handler deployment and tests can import it without
an HTTP client.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json

from attrs import frozen

_EXCERPT = 512
#: statuses that say "try again": overload, a proxy or load balancer that lost the node,
#: Restate's ingress while the partition it needs has no leader (503)
_TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
#: Restate 500s that mean "not ready here yet". Restate gives these no `restate_code`
#: (checked with 1.7.12), so the message is the only signal. Seen after a restart and
#: during failover: "node lookup for partition N failed", "partition N doesn't exist on this
#: node, this is benign if the partition is being transferred", "expecting a partition
#: store"; on a cluster that lost a node, "connect throttled; N ms left in throttling
#: window" (a survivor backing off from the dead peer) and "node N1:2 was shut down or
#: removed"; after that node came back, "No such scanner. It could have expired" (a
#: remote scan the restarted node no longer knows; a new query starts a new one). The rest
#: are the names Restate's own code gives the same states.
_TRANSIENT_MESSAGES = (
    "node lookup for partition",
    "doesn't exist on this node",
    "expecting a partition store",
    "not the leader",
    "notleader",
    "unavailable",
    "is being transferred",
    "connect throttled",
    "was shut down or removed",
    "no such scanner",
    "shutting down",
)


#: with "External error" (a query fanning out to a peer node), the peer is unreachable:
#: "handshake failed: tcp connect error" was seen while a killed node was down
_PEER_UNREACHABLE = ("connect", "handshake")


@frozen(kw_only=True)
class Backoff:
    """How an idempotent request retries transient answers.

    It keeps retrying until `window` seconds have passed since the first attempt, and at
    least `min_retries` times; `max_retries` (when set) caps the count. Delays start at
    `first_delay` and grow exponentially (doubling) or linearly, up to `max_delay`.
    """

    window: float = 30.0
    min_retries: int = 3
    max_retries: int | None = None
    first_delay: float = 0.1
    max_delay: float = 2.0
    growth: str = "exponential"

    def delay(self, retry: int) -> float:
        """The pause before retry number `retry` (1-based)."""
        if self.growth == "linear":
            pause = self.first_delay * retry
        else:
            pause = self.first_delay * 2 ** min(retry - 1, 30)
        return min(pause, self.max_delay)

    def gives_up(self, retries: int, elapsed: float) -> bool:
        """True when `retries` already made are enough (nothing more is tried)."""
        if self.max_retries is not None and retries >= self.max_retries:
            return True
        return retries >= self.min_retries and elapsed >= self.window


#: no retries at all
NO_RETRY = Backoff(window=0.0, min_retries=0, max_retries=0)


def transient_reason(status: int, body: str) -> str | None:
    """Restate's reason when an answer means "not ready, try again"; None otherwise.

    Told by what Restate returns, never by text a user wrote: an answer the ingress marks
    `"source": "invocation"` is a handler's own failure (its message is the handler's),
    and one with a `restate_code` is an error Restate classified (a deployment it could not
    discover or reach: `META0003`, `META0014`, ...); neither is Restate being not ready.
    """
    answer = _decoded(body)
    if answer.get("source") == "invocation" or isinstance(answer.get("restate_code"), str):
        return None
    message = _message(body)
    if status in _TRANSIENT_STATUSES:
        return f"{status}: {message}"
    if status == 500:
        lowered = message.lower()
        if any(marker in lowered for marker in _TRANSIENT_MESSAGES):
            return message
        # the query engine could not reach the node holding a partition (it is down)
        if "external error" in lowered and any(w in lowered for w in _PEER_UNREACHABLE):
            return message
    return None


def _decoded(body: str) -> dict[str, object]:
    try:
        decoded = json.loads(body)
    except ValueError:
        return {}
    return decoded if isinstance(decoded, dict) else {}


def _message(body: str) -> str:
    """Restate's `message` field when the body is its JSON error, else the body."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return body[:_EXCERPT]
    message = decoded.get("message") if isinstance(decoded, dict) else None
    if isinstance(message, str):
        return message[:_EXCERPT]
    return body[:_EXCERPT]


