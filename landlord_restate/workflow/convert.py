"""The one JSON edge of the contract: reads what Landlord's Go code writes, writes what it reads.

- `time.Duration` is integer nanoseconds on the wire; people may also write "30m", "1h30m".
- `time.Time` is RFC 3339 (Go writes up to nanoseconds; Python keeps microseconds).
- `json.RawMessage` fields are any JSON value.
- Unknown keys are refused, and a failure names the JSON path of what is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import cattrs
from cattrs.gen import make_dict_structure_fn
from cattrs.v import format_exception

from landlord_restate.workflow.errors import InvalidInputError, InvalidSpecError
from landlord_restate.workflow.types import (
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    ExecutionSummary,
    ProvisionRequest,
    RetryPolicy,
    WorkflowSpec,
    WorkflowStatus,
)

T = TypeVar("T")

_NANOS_PER_MICRO = 1_000
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
#: ASCII digits only: `\d` would also take Arabic-Indic and other Unicode digits
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)")
_RFC3339 = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}:[0-9]{2}:[0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)
#: Go's time.Duration is an int64 of nanoseconds
GO_DURATION_MAX_NANOS = 2**63 - 1


def parse_go_duration(text: str) -> timedelta:
    """Parse Go's `time.ParseDuration` syntax ("300ms", "1h30m", "-2.5s", "0").

    As Go: no surrounding spaces, ASCII digits, and within int64 nanoseconds (about 292
    years); anything else is a ValueError.
    """
    s = text
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return timedelta(0)
    pos, total = 0, 0.0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r} (expected Go syntax: '30m', '1h30m')")
        total += float(m.group(1)) * _UNIT_NANOS[m.group(2)]
        pos = m.end()
    if not s:
        raise ValueError(f"invalid duration {text!r} (expected Go syntax: '30m', '1h30m')")
    if total > GO_DURATION_MAX_NANOS:
        raise ValueError(f"duration {text!r} is out of Go's range (at most about 2562047h)")
    return timedelta(microseconds=sign * total / _NANOS_PER_MICRO)


def format_go_duration(value: timedelta) -> str:
    """Render like Go's `Duration.String()` for whole units ("1h30m0s", "2.5s")."""
    micros = value // timedelta(microseconds=1)
    sign, micros = ("-", -micros) if micros < 0 else ("", micros)
    if micros == 0:
        return "0s"
    hours, rest = divmod(micros, 3_600_000_000)
    minutes, rest = divmod(rest, 60_000_000)
    seconds = rest / 1_000_000
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if hours or minutes else ""
    out += f"{seconds:g}s"
    return sign + out


def _structure_duration(value: Any, _: type) -> timedelta:
    if isinstance(value, bool):
        raise TypeError(f"expected a duration (integer nanoseconds or '30m'), got {value!r}")
    if isinstance(value, int):
        if abs(value) > GO_DURATION_MAX_NANOS:
            raise ValueError(f"duration {value} ns is out of Go's int64 range")
        return timedelta(microseconds=value / _NANOS_PER_MICRO)
    if isinstance(value, str):
        return parse_go_duration(value)
    raise TypeError(f"expected a duration (integer nanoseconds or '30m'), got {value!r}")


def _unstructure_duration(value: timedelta) -> int:
    """Integer nanoseconds, as Go's time.Duration: refused beyond its int64 range."""
    nanos = (value // timedelta(microseconds=1)) * _NANOS_PER_MICRO
    if abs(nanos) > GO_DURATION_MAX_NANOS:
        raise ValueError(f"duration {value} is out of Go's range (int64 nanoseconds)")
    return nanos


def parse_rfc3339(value: str) -> datetime:
    """Parse an RFC 3339 time with offset; extra sub-microsecond digits are dropped."""
    m = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"invalid time {value!r} (expected RFC 3339 with an offset)")
    date, clock, frac, offset = m.groups()
    frac = (frac or "")[:7]  # '.' + at most 6 digits
    offset = "+00:00" if offset in ("Z", "z") else offset
    return datetime.fromisoformat(f"{date}T{clock}{frac}{offset}")


def format_rfc3339(value: datetime) -> str:
    """RFC 3339 as Go's `time.RFC3339Nano` writes it: 'Z' for UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _structure_optional_datetime(value: Any, _: type) -> datetime | None:
    """Go's ExecutionError.FailedAt is a string; empty means unset."""
    if value is None or value == "":
        return None
    return _structure_datetime(value, datetime)


def _structure_datetime(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an RFC 3339 time string, got {value!r}")
    return parse_rfc3339(value)


def _structure_strict_str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _structure_strict_int(value: Any, _: type) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _structure_strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


def _structure_strict_float(value: Any, _: type) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _structure_state(value: Any, _: type) -> ExecutionState:
    if not isinstance(value, str):
        raise TypeError(f"expected an execution state string, got {value!r}")
    try:
        return ExecutionState.parse(value)
    except ValueError:
        valid = ", ".join(s.value for s in ExecutionState)
        raise ValueError(f"unknown execution state {value!r} (one of: {valid})") from None


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True)
    conv.register_structure_hook(timedelta, _structure_duration)
    conv.register_unstructure_hook(timedelta, _unstructure_duration)
    conv.register_structure_hook(datetime, _structure_datetime)
    conv.register_unstructure_hook(datetime, format_rfc3339)
    # cattrs would coerce 1 -> "1" and "1" -> 1; Go's decoder refuses both, and so do we
    conv.register_structure_hook(str, _structure_strict_str)
    conv.register_structure_hook(int, _structure_strict_int)
    conv.register_structure_hook(float, _structure_strict_float)
    # singledispatch would send the StrEnum to the str hook above: name it explicitly
    conv.register_structure_hook(ExecutionState, _structure_state)
    conv.register_structure_hook(datetime | None, _structure_optional_datetime)
    conv.register_structure_hook(bool, _structure_strict_bool)
    for cls in _CONTRACT_TYPES:
        conv.register_structure_hook(cls, _object_hook(conv, cls))
    return conv


_CONTRACT_TYPES: tuple[type, ...] = (
    WorkflowSpec, RetryPolicy, ExecutionInput, CreateWorkflowResult, ExecutionResult,
    ExecutionStatus, ExecutionError, ExecutionEvent, ProvisionRequest, WorkflowStatus,
    ExecutionSummary,
    ComputeCallbackPayload,
)
_EMPTY_WHEN_NULL: dict[str, Any] = {
    "tags": {}, "metadata": {}, "resource_ids": {}, "details": {}, "history": [],
}


def _object_hook(conv: cattrs.Converter, cls: type[T]) -> Any:
    """A JSON object only; Go's `null` for a map or slice decodes as empty."""
    # generated on first use: cattrs binds nested hooks when it generates, and a nested
    # contract type may be registered after this one
    inner: Any = None

    def structure(value: Any, _: type) -> T:
        nonlocal inner
        if inner is None:
            inner = make_dict_structure_fn(cls, conv, _cattrs_forbid_extra_keys=True)
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        value = {
            k: type(_EMPTY_WHEN_NULL[k])() if v is None and k in _EMPTY_WHEN_NULL else v
            for k, v in value.items()
        }
        structured: T = inner(value, cls)
        return structured

    return structure


converter = _make_converter()

_SPEC_TYPES: tuple[type, ...] = (WorkflowSpec, RetryPolicy)


def from_json(cls: type[T], data: Any) -> T:
    """Structure Go-shaped JSON data into `cls`; errors name the JSON path.

    A malformed spec raises `InvalidSpecError`, any other malformed payload
    `InvalidInputError`.
    """
    try:
        value: T = converter.structure(data, cls)
    except Exception as exc:
        if isinstance(exc, cattrs.BaseValidationError):
            problems = cattrs.transform_error(exc, path="$", format_exception=_describe)
        else:
            problems = [f"{_describe(exc, None)} @ $"]
        message = f"invalid {cls.__name__}: " + "; ".join(problems)
        field = _first_path(problems)
        if cls in _SPEC_TYPES:
            raise InvalidSpecError(message, field=field) from exc
        raise InvalidInputError(message, field=field) from exc
    return value


def to_json(value: Any) -> Any:
    """Unstructure a contract value into Go-shaped JSON data."""
    return converter.unstructure(value)


def _describe(exc: BaseException, type_: type | None) -> str:
    """Our hooks' messages say what was expected; keep them, else cattrs' own words."""
    if isinstance(exc, ValueError | TypeError) and str(exc):
        return str(exc)
    return format_exception(exc, type_)


def _first_path(problems: list[str]) -> str | None:
    for problem in problems:
        _, sep, path = problem.rpartition(" @ ")
        if sep:
            return path
    return None

