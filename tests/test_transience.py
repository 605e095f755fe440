"""The one classification of Restate's "not ready" answers, and the retry window."""

from __future__ import annotations

import json
import socket
import time

import aiohttp
import pytest

from landlord_restate import RestateConnectionError, RestateServerError, RestateUnavailableError
from landlord_restate.restate.http import RestateHttp
from landlord_restate.restate.transience import Backoff, transient_reason


def restate_error(message: str) -> str:
    """A body as Restate's admin API writes its errors."""
    return json.dumps({"message": message})


@pytest.mark.parametrize(
    ("status", "body"),
    [
        # seen on restate-server 1.7.12 right after a restart, before partitions lead
        (500, restate_error("Datafusion error: External error: node lookup for partition 0 "
                            "failed")),
        (500, restate_error("Datafusion error: External error: partition 2 doesn't exist on "
                            "this node, this is benign if the partition is being transferred "
                            "out of/into this node.")),
        (500, restate_error("Datafusion error: External error: expecting a partition store")),
        # seen on a 3-node cluster that lost a node
        (500, restate_error("Datafusion error: External error: connect throttled; 133.86ms "
                            "left in throttling window")),
        (500, restate_error("Datafusion error: External error: handshake failed: tcp connect "
                            "error")),
        (500, restate_error("Datafusion error: External error: node N1:2 was shut down or "
                            "removed")),
        (500, restate_error("Datafusion error: Internal error: No such scanner. It could have "
                            "expired due to a long period of inactivity..")),
        (500, restate_error("not the leader for partition 3")),
        (500, restate_error("Unavailable")),
        (503, restate_error("the partition has no leader")),
        (503, "<html>503 Service Unavailable</html>"),
        (502, "bad gateway"),
        (504, ""),
        (429, "slow down"),
    ],
)
def test_transient_answers(status: int, body: str) -> None:
    """Restart, leadership and overload answers are transient, with Restate's reason."""
    reason = transient_reason(status, body)
    assert reason is not None
    if body.startswith("{"):
        assert json.loads(body)["message"][:40] in reason


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, restate_error("Datafusion error: Error during planning: table 'x' not found")),
        (500, restate_error("non valid invocation id")),
        # discovery that cannot reach the deployment is the user's to fix, not transient
        (500, restate_error("[META0003] cannot reach the deployment: tcp connect error")),
        (400, restate_error("Unavailable")),  # a client error is never retried
        (404, restate_error("service not found")),
        (409, "already completed"),
        (401, "unauthorized"),
    ],
)
def test_real_errors_are_not_transient(status: int, body: str) -> None:
    """A real server error, or a client error, is not retried."""
    assert transient_reason(status, body) is None


def test_backoff_grows_and_stops_by_window_count_and_cap() -> None:
    """Delays double (or grow linearly) up to the cap; give-up honours window, floor, cap."""
    exponential = Backoff(first_delay=0.1, max_delay=1.0)
    assert [exponential.delay(n) for n in range(1, 6)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    linear = Backoff(first_delay=0.5, max_delay=1.2, growth="linear")
    assert [linear.delay(n) for n in range(1, 4)] == [0.5, 1.0, 1.2]
    window = Backoff(window=10.0, min_retries=3)
    assert not window.gives_up(retries=5, elapsed=9.9)
    assert window.gives_up(retries=5, elapsed=10.0)
    assert not window.gives_up(retries=2, elapsed=60.0)  # the floor of retries
    capped = Backoff(window=60.0, min_retries=0, max_retries=4)
    assert capped.gives_up(retries=4, elapsed=0.0)


@pytest.fixture
def refused_url() -> str:
    """An address where nothing listens: connection refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_idempotent_requests_retry_across_the_window(refused_url: str) -> None:
    """A node that refuses is retried for the whole window, then RestateUnavailableError."""
    async with aiohttp.ClientSession() as session:
        http = RestateHttp(session, refused_url, backoff=Backoff(window=0.6, min_retries=0,
                                                               max_delay=0.1))
        began = time.monotonic()
        with pytest.raises(RestateUnavailableError) as caught:
            await http.request("GET", "/health", idempotent=True)
        elapsed = time.monotonic() - began
    assert elapsed >= 0.6
    assert caught.value.endpoint == refused_url
    assert caught.value.waited >= 0.6
    assert refused_url in str(caught.value)


async def test_not_idempotent_requests_are_tried_once(refused_url: str) -> None:
    """Without idempotent=True there is no retry and no unavailable wrapping."""
    async with aiohttp.ClientSession() as session:
        http = RestateHttp(session, refused_url, backoff=Backoff(window=30.0))
        began = time.monotonic()
        with pytest.raises(RestateConnectionError) as caught:
            await http.request("GET", "/health", idempotent=False)
    assert time.monotonic() - began < 5.0
    assert not isinstance(caught.value, RestateUnavailableError)
    assert not isinstance(caught.value, RestateServerError)
