"""The one JSON edge of the contract: reads what Landlord's Go code writes, writes what it reads.

- `time.Duration` is integer nanoseconds on the wire; people may also write "30m", "1h30m".
- `time.Time` is RFC 3339 (Go writes up to nanoseconds; Python keeps microseconds).
- `json.RawMessage` fields are any JSON value.
- Unknown keys are refused, and a failure names the JSON path of what is wrong.
- `omitempty` fields are left out when empty (Go's zero value), as Go writes them.

The compute types (`landlord_restate.compute.types`) are registered here too; a provider
package registers its own with `register_go_type` and `register_go_enum`.
"""

from __future__ import annotations

import enum
import re
import typing
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import list_structure_factory
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.v import format_exception

# compute.types and compute.errors import nothing that imports this module
from landlord_restate.compute import types as compute
from landlord_restate.compute.errors import InvalidComputeConfigError
from landlord_restate.workflow.errors import InvalidInputError, InvalidSpecError
from landlord_restate.workflow.types import (
    ComputeCallbackPayload,
    CreateWorkflowResult,
    ExecutionCount,
    ExecutionError,
    ExecutionEvent,
    ExecutionInput,
    ExecutionPage,
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


def _is_list_type(type_: Any) -> bool:
    return typing.get_origin(type_) is list


def _strict_list_factory(type_: Any, conv: cattrs.Converter) -> Any:
    inner = list_structure_factory(type_, conv)

    def structure(value: Any, _: type) -> Any:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list, got {type(value).__name__}")
        return inner(value, type_)

    return structure


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
    # cattrs makes a list of any iterable ("abc" -> ["a", "b", "c"]); Go wants an array
    conv.register_structure_hook_factory(_is_list_type, _strict_list_factory)
    for cls in _CONTRACT_TYPES:
        conv.register_structure_hook(cls, _object_hook(conv, cls))
    for enum_cls in _COMPUTE_ENUMS:
        _register_enum(conv, enum_cls)
    for cls, omit_empty in _COMPUTE_OMIT_EMPTY.items():
        _register_go_type(conv, cls, omit_empty=omit_empty, forbid_extra_keys=True)
    return conv


_CONTRACT_TYPES: tuple[type, ...] = (
    WorkflowSpec, RetryPolicy, ExecutionInput, CreateWorkflowResult, ExecutionResult,
    ExecutionStatus, ExecutionError, ExecutionEvent, ProvisionRequest, WorkflowStatus,
    ExecutionSummary, ExecutionPage, ExecutionCount,
    ComputeCallbackPayload,
)
#: Landlord's `internal/compute` types, each with its `omitempty` fields (their Python
#: defaults are Go's zero values, so "omitted when equal to the default" is `omitempty`)
_COMPUTE_OMIT_EMPTY: dict[type, tuple[str, ...]] = {
    compute.TenantComputeSpec: ("secrets", "labels", "provider_config"),
    compute.ContainerSpec: ("command", "args", "env", "ports", "health_check", "resources"),
    compute.PortMapping: ("host_port", "name"),
    compute.HealthCheckConfig: ("http_path", "port", "command"),
    compute.ResourceRequirements: ("storage",),
    compute.NetworkConfig: ("security_groups", "subnets", "dns"),
    compute.DNSConfig: ("hostname", "domain"),
    compute.SecretReference: ("env_var",),
    compute.ProvisionResult: ("endpoints", "message"),
    compute.UpdateResult: ("message",),
    compute.Endpoint: ("url",),
    compute.ComputeStatus: ("metadata",),
    compute.ContainerStatus: ("message",),
}
_COMPUTE_ENUMS: tuple[type[enum.Enum], ...] = (
    compute.ProvisionStatus, compute.UpdateStatus, compute.ComputeState, compute.HealthStatus,
)
#: malformed, these are a compute spec (`InvalidComputeConfigError`), not an input
_COMPUTE_SPEC_TYPES: tuple[type, ...] = (
    compute.TenantComputeSpec, compute.ContainerSpec, compute.PortMapping,
    compute.HealthCheckConfig, compute.ResourceRequirements, compute.NetworkConfig,
    compute.DNSConfig, compute.SecretReference,
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


def _register_enum(conv: cattrs.Converter, enum_cls: type[enum.Enum]) -> None:
    # singledispatch would send a StrEnum to the strict str hook: name each one explicitly
    def structure(value: Any, _: type) -> enum.Enum:
        if not isinstance(value, str):
            raise TypeError(f"expected a {enum_cls.__name__} string, got {value!r}")
        try:
            return enum_cls(value)
        except ValueError:
            valid = ", ".join(str(member.value) for member in enum_cls)
            raise ValueError(
                f"unknown {enum_cls.__name__} {value!r} (one of: {valid})"
            ) from None

    conv.register_structure_hook(enum_cls, structure)


def _collection_fields(cls: type) -> dict[str, type]:
    """The fields of `cls` that are maps or slices in Go, with their empty Python type."""
    attrs.resolve_types(cls)
    empty: dict[str, type] = {}
    for attribute in attrs.fields(cls):
        origin = typing.get_origin(attribute.type)
        if origin in (list, dict):
            empty[attribute.name] = origin
    return empty


def _register_go_type(
    conv: cattrs.Converter, cls: type, *, omit_empty: Collection[str], forbid_extra_keys: bool,
) -> None:
    empty_when_null = _collection_fields(cls)
    names = {attribute.name for attribute in attrs.fields(cls)}
    unknown = set(omit_empty) - names
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {sorted(unknown)}")
    # both generated on first use: cattrs binds nested hooks when it generates, and a nested
    # type may be registered after this one
    structure_inner: Any = None
    unstructure_inner: Any = None

    def structure(value: Any, _: type) -> Any:
        nonlocal structure_inner
        if structure_inner is None:
            structure_inner = make_dict_structure_fn(
                cls, conv, _cattrs_forbid_extra_keys=forbid_extra_keys,
            )
        if not isinstance(value, dict):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        value = {
            k: empty_when_null[k]() if v is None and k in empty_when_null else v
            for k, v in value.items()
        }
        return structure_inner(value, cls)

    order = [attribute.name for attribute in attrs.fields(cls)]

    def unstructure(value: Any) -> Any:
        nonlocal unstructure_inner
        if unstructure_inner is None:
            overrides: dict[str, Any] = {
                name: override(omit_if_default=True) for name in omit_empty
            }
            unstructure_inner = make_dict_unstructure_fn(cls, conv, **overrides)
        data = unstructure_inner(value)
        # cattrs writes omittable fields last; Go writes every field in declaration order
        return {name: data[name] for name in order if name in data}

    conv.register_structure_hook(cls, structure)
    conv.register_unstructure_hook(cls, unstructure)


converter = _make_converter()


def register_go_type(
    cls: type, *, omit_empty: Collection[str] = (), forbid_extra_keys: bool = True,
) -> None:
    """Teach the converter a Go struct mirrored as the attrs class `cls` (field names = the
    Go JSON tags): a JSON object only, Go's `null` for a map or slice read as empty, the
    `omit_empty` fields left out of the output when they hold their default (Go's zero
    value). `forbid_extra_keys=False` ignores unknown keys, as Go's decoder does."""
    _register_go_type(converter, cls, omit_empty=omit_empty, forbid_extra_keys=forbid_extra_keys)


def register_go_enum(enum_cls: type[enum.Enum]) -> None:
    """Teach the converter a Go string type with named constants, mirrored as an Enum: only
    its values are read, and a wrong one is named with the valid ones."""
    _register_enum(converter, enum_cls)


def structure_problems(exc: BaseException) -> list[tuple[str, str]]:
    """What a failed `converter.structure` found wrong, as (JSON path, message) pairs; the
    path is Landlord's (`ports[0].container_port`, `env.KEY`; "" for the whole value)."""
    if isinstance(exc, cattrs.BaseValidationError):
        problems = cattrs.transform_error(exc, path="$", format_exception=_describe)
    else:
        problems = [f"{_describe(exc, None)} @ $"]
    pairs = []
    for problem in problems:
        message, _, path = problem.rpartition(" @ ")
        pairs.append((landlord_path(path), message))
    return pairs


_KEY_STEP = re.compile(r"\['((?:[^'\\]|\\.)*)'\]")


def landlord_path(path: str) -> str:
    """cattrs' `$.env['KEY']` as Landlord's messages write it: `env.KEY` ("" for `$`)."""
    path = path.removeprefix("$")
    path = _KEY_STEP.sub(lambda match: "." + match.group(1), path)
    return path.removeprefix(".")

_SPEC_TYPES: tuple[type, ...] = (WorkflowSpec, RetryPolicy)


def from_json(cls: type[T], data: Any) -> T:
    """Structure Go-shaped JSON data into `cls`; errors name the JSON path.

    A malformed workflow spec raises `InvalidSpecError`, a malformed compute spec
    `InvalidComputeConfigError`, any other malformed payload `InvalidInputError`.
    """
    try:
        value: T = converter.structure(data, cls)
    except Exception as exc:
        if cls in _COMPUTE_SPEC_TYPES:
            pairs = structure_problems(exc)
            raise InvalidComputeConfigError(
                [f"{path or '$'}: {message}" for path, message in pairs],
                field=pairs[0][0] if pairs else None,
            ) from exc
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

