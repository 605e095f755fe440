"""Every size and range the provider enforces, in one place, checked before anything is sent.

Restate refuses oversized requests late (a 413 after the deployment was registered) and
the SDK misbehaves on out-of-range numbers (a retry count past 2**32 overflows and hangs
the execution); Go's `time.Duration` is an int64 of nanoseconds. So each value that goes
to Restate or to a handler is bounded here, and a value out of bounds is a typed error
naming its field.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from landlord_restate.workflow.convert import GO_DURATION_MAX_NANOS
from landlord_restate.workflow.errors import InvalidInputError, WorkflowError

#: a spec's name and description
MAX_NAME = 256
MAX_DESCRIPTION = 16 * 1024
#: tags and metadata (strings to strings): entries, key and value lengths
MAX_MAP_ENTRIES = 64
MAX_MAP_KEY = 128
MAX_MAP_VALUE = 1024
MAX_TRIGGER_SOURCE = 256
#: a stop reason, and what a handler's error may carry (longer is cut, not refused)
MAX_REASON = 4096
MAX_MESSAGE = 64 * 1024
#: a RetryPolicy: attempts (restate-sdk overflows far above) and the growth factor
MAX_RETRY_ATTEMPTS = 10_000
MAX_BACKOFF_RATE = 100.0
#: Go's time.Duration range, as a timedelta (whole microseconds)
MAX_DURATION = timedelta(microseconds=GO_DURATION_MAX_NANOS // 1000)
#: how deeply input, output and payloads may nest (Python's JSON encoder recurses)
MAX_DEPTH = 64
#: Restate's ingress refuses bodies over 32 MiB; leave room for the envelope around input
MAX_INPUT_BYTES = 32 * 1024 * 1024 - 64 * 1024
#: on AWS Lambda every invocation's request carries the run's whole journal, and its
#: response what the attempt journaled, base64 (4/3) in Lambda's 6 MB payloads: the most JSON
#: a run's journal (its input and every step result) may hold there
MAX_LAMBDA_JOURNAL_BYTES = 4 * 1024 * 1024
#: the largest input a start may carry to a Lambda deployment (room left for the envelope)
MAX_LAMBDA_INPUT_BYTES = MAX_LAMBDA_JOURNAL_BYTES - 64 * 1024
#: Landlord's CallbackOptions: retries, the first pause, and the longest pause however
#: the delay grows
MAX_CALLBACK_RETRIES = 100
MAX_CALLBACK_DELAY = timedelta(hours=1)
CALLBACK_DELAY_CAP = timedelta(minutes=5)

#: a UTF-16 surrogate alone is no Unicode character: UTF-8 cannot carry it (Python's
#: encoder raises) and Go's decoder turns it into U+FFFD, another string
_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(
    value: Any, field: str, limit: int, *, error: type[WorkflowError] = InvalidInputError,
    **ids: str | None,
) -> str:
    """`value` if it is a string of at most `limit` characters."""
    if not isinstance(value, str):
        raise _error(error, f"{field} must be a string, got {type(value).__name__}", field, ids)
    if has_surrogate(value):
        raise _error(error, f"{field} holds a lone surrogate (not Unicode text)", field, ids)
    if len(value) > limit:
        raise _error(
            error, f"{field} is {len(value)} characters; at most {limit} are allowed", field, ids
        )
    return value


def check_string_map(
    value: Any, field: str, *, error: type[WorkflowError] = InvalidInputError,
    **ids: str | None,
) -> dict[str, str]:
    """`value` if it maps non-empty strings to strings, within the entry and length limits."""
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise _error(error, f"{field} must map non-empty strings to strings", field, ids)
    if len(value) > MAX_MAP_ENTRIES:
        raise _error(
            error, f"{field} has {len(value)} entries; at most {MAX_MAP_ENTRIES} are allowed",
            field, ids,
        )
    for key, text in value.items():
        if len(key) > MAX_MAP_KEY or len(text) > MAX_MAP_VALUE:
            raise _error(
                error, f"{field}[{key[:40]!r}]: keys may have at most {MAX_MAP_KEY} and values "
                f"{MAX_MAP_VALUE} characters", field, ids,
            )
        if has_surrogate(key) or has_surrogate(text):
            raise _error(
                error, f"{field}[{key[:40]!r}] holds a lone surrogate (not Unicode text)", field,
                ids,
            )
    return dict(value)


def check_duration(
    value: Any, field: str, *, error: type[WorkflowError] = InvalidInputError,
    **ids: str | None,
) -> timedelta:
    """`value` if it is a timedelta from zero to Go's largest Duration (about 292 years)."""
    if not isinstance(value, timedelta) or not timedelta(0) <= value <= MAX_DURATION:
        raise _error(
            error, f"{field} must be a duration from 0s to 2562047h (Go's range), got {value!r}",
            field, ids,
        )
    return value


def check_json(
    value: Any, field: str, *, error: type[WorkflowError] = InvalidInputError,
    **ids: str | None,
) -> None:
    """Refuse `value` unless it is strict JSON that Go reads back as it was: string keys
    only (so no two keys collapse into one), Unicode strings (no lone surrogates), finite
    numbers within float64's range, at most MAX_DEPTH deep. Any `Mapping` is an object,
    a list or tuple an array. Checks; encodes nothing."""
    problem = json_problem(value)
    if problem is not None:
        raise _error(error, f"{field} is not strict JSON: {problem}", field, ids)


def encode_json(
    value: Any, field: str, *, limit: int | None = None,
    error: type[WorkflowError] = InvalidInputError, **ids: str | None,
) -> str:
    """`value` as strict JSON text (see `check_json`) of at most `limit` bytes, if given.

    ASCII only (other characters as `\\u` escapes), so its length is its size in bytes.
    """
    check_json(value, field, error=error, **ids)
    encoded = json.dumps(value, allow_nan=False, separators=(",", ":"), default=_as_object)
    if limit is not None and len(encoded) > limit:
        raise _error(
            error, f"{field} is {len(encoded) / 2**20:.1f} MiB ({len(encoded)} bytes); at most "
            f"{limit} bytes are allowed (Restate's ingress takes bodies up to 32 MiB)",
            field, ids,
        )
    return encoded


def json_problem(value: Any) -> str | None:
    """What keeps `value` from being strict JSON (see `check_json`), or None. Iterative:
    no recursion limit. What it accepts, `encode_json` encodes."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "$")]
    while stack:
        item, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            return f"nested deeper than {MAX_DEPTH} levels at {path[:80]}"
        if item is None or isinstance(item, bool):
            continue
        if isinstance(item, str):
            if has_surrogate(item):
                return f"a string at {path[:80]} holds a lone surrogate (not Unicode text)"
            continue
        if isinstance(item, int | float):
            problem = number_problem(item)
            if problem is not None:
                return f"{problem} at {path[:80]}"
            continue
        if isinstance(item, Mapping):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"key {key!r} at {path[:80]} is not a string"
                if has_surrogate(key):
                    return f"a key at {path[:80]} holds a lone surrogate (not Unicode text)"
                stack.append((child, depth + 1, f"{path}.{key[:20]}"))
            continue
        if isinstance(item, list | tuple):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(item))
            continue
        return f"{type(item).__name__} at {path[:80]} is not a JSON value"
    return None


def number_problem(number: int | float) -> str | None:
    """Why Go cannot read `number` back as a JSON number (a float64), or None.

    Go's decoder refuses a number beyond float64's range (`1e400`) rather than round it
    to infinity; Python's int has no such limit, and its encoder refuses to print one of
    more than 4,300 digits.
    """
    if isinstance(number, int):
        try:
            float(number)
        except OverflowError:
            return (f"an integer of {number.bit_length()} bits (beyond float64's range, "
                    "which is what Go reads)")
        return None
    if not math.isfinite(number):
        return f"{number} (JSON has no NaN or infinity)"
    return None


def has_surrogate(text: str) -> bool:
    """Whether `text` holds a lone UTF-16 surrogate, which is no Unicode character."""
    return not text.isascii() and _SURROGATE.search(text) is not None


def _as_object(value: Any) -> Any:
    """`json.dumps`' fallback: a Mapping that is not a dict (a MappingProxyType, ...) is
    the JSON object it holds (`json_problem` accepted it as one)."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not a JSON value")


def _error(
    kind: type[WorkflowError], message: str, field: str, ids: Mapping[str, str | None]
) -> WorkflowError:
    return kind(message, field=field, **ids)  # type: ignore[call-arg]
