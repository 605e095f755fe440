"""Landlord's `tenant.ComputeConfigHash`: the identity of a desired configuration."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from landlord_restate.workflow.errors import InvalidInputError

#: Go's encoding/json escapes these inside strings (HTML safety); so must the hash input
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}
#: a lone UTF-16 surrogate: no Go string holds one (its decoder makes it U+FFFD)
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Go writes a float64 in exponent form outside [1e-6, 1e21)
_GO_PLAIN_MIN = 1e-6
_GO_PLAIN_LIMIT = 1e21


def config_hash(config: Any) -> str:
    """SHA-256 hex of the config as Go's `json.Marshal` writes it; "" for none or empty.

    Landlord decodes a desired configuration into `map[string]interface{}` and hashes
    Go's encoding of that (`go_json`): every JSON number is a float64 there, so
    `{"replicas": 1}` and `{"replicas": 1.0}` are one configuration. A value Go could not
    have decoded (a number beyond float64's range, NaN, a lone surrogate, a key that is
    not a string, anything JSON has no word for) is an InvalidInputError naming
    `desired_config`.
    """
    if config is None:
        return ""
    encoded = go_json(config)
    if encoded in ("{}", "[]"):
        return ""
    return hashlib.sha256(encoded.encode()).hexdigest()


def go_json(value: Any) -> str:
    """`value` as Go's `json.Marshal` writes what Go's `json.Unmarshal` made of it.

    Maps (any Mapping) with their keys sorted, no spaces, HTML-safe string escapes, and
    numbers as float64 (`go_number`). Iterative: no recursion limit.
    """
    out: list[str] = []
    # each entry: text to write as it is, or a (value, JSON path) to encode
    stack: list[str | tuple[Any, str]] = [(value, "$")]
    while stack:
        entry = stack.pop()
        if isinstance(entry, str):
            out.append(entry)
            continue
        item, path = entry
        if item is None:
            out.append("null")
        elif isinstance(item, bool):
            out.append("true" if item else "false")
        elif isinstance(item, str):
            out.append(_go_string(item, path))
        elif isinstance(item, int | float):
            out.append(go_number(item, path))
        elif isinstance(item, Mapping):
            keys = list(item.keys())
            for key in keys:
                if not isinstance(key, str):
                    raise _invalid(f"key {key!r} at {path[:80]} is not a string")
            parts: list[str | tuple[Any, str]] = ["{"]
            for i, key in enumerate(sorted(keys)):  # Go sorts by bytes: UTF-8 keeps this order
                parts += [("," if i else "") + _go_string(key, path) + ":",
                          (item[key], f"{path}.{key[:20]}")]
            stack.extend(reversed([*parts, "}"]))
        elif isinstance(item, list | tuple):
            parts = ["["]
            for i, child in enumerate(item):
                parts += [",", (child, f"{path}[{i}]")] if i else [(child, f"{path}[{i}]")]
            stack.extend(reversed([*parts, "]"]))
        else:
            raise _invalid(f"{type(item).__name__} at {path[:80]} is not a JSON value")
    return "".join(out)


def go_number(number: int | float, path: str = "$") -> str:
    """The float64 nearest `number` as Go's encoding/json writes it.

    Its floatEncoder: the shortest digits that read back as the same float64 (Python's
    `repr` finds the same), plain decimals inside [1e-6, 1e21) ("1", "0.000001",
    "100000000000000000000"), else exponent form with a sign and no padded zero ("1e+21",
    "1e-7", "5e-324"); negative zero is "-0". An int is the float64 Go's decoder makes of
    it (2**53 + 1 reads as 2**53); one beyond float64's range Go refuses to decode.
    """
    try:
        value = float(number)
    except OverflowError:
        raise _invalid(
            f"an integer of {int(number).bit_length()} bits at {path[:80]} is beyond "
            "float64's range (Go's decoder refuses it)",
        ) from None
    if not math.isfinite(value):
        raise _invalid(f"{value} at {path[:80]} (JSON has no NaN or infinity)")
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    shortest = Decimal(repr(abs(value))).normalize()
    digits = "".join(map(str, shortest.as_tuple().digits))
    exponent = int(shortest.as_tuple().exponent)  # abs(value) == int(digits) * 10**exponent
    if _GO_PLAIN_MIN <= abs(value) < _GO_PLAIN_LIMIT:
        if exponent >= 0:
            return sign + digits + "0" * exponent
        point = len(digits) + exponent
        if point > 0:
            return f"{sign}{digits[:point]}.{digits[point:]}"
        return f"{sign}0.{'0' * -point}{digits}"
    # strconv's 'e' form, d.ddde+XX; encoding/json cleans e-07 up to e-7 (and positive
    # exponents here are 21 or more: two digits anyway)
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    scientific = exponent + len(digits) - 1
    return f"{sign}{mantissa}e{scientific:+d}"


def _go_string(text: str, path: str) -> str:
    """A JSON string as Go writes it: UTF-8, `\\u003c`-style HTML escapes, short escapes
    for `\\n`, `\\r`, `\\t`, `\\b`, `\\f` (Go 1.22 on), `\\u00XX` for other control bytes."""
    if not text.isascii() and _SURROGATE.search(text):
        raise _invalid(f"a string at {path[:80]} holds a lone surrogate (not Unicode text)")
    encoded = json.dumps(text, ensure_ascii=False)
    for raw, escaped in _GO_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return encoded


def _invalid(problem: str) -> InvalidInputError:
    return InvalidInputError(f"desired_config is not what Go decodes: {problem}",
                             field="desired_config")
