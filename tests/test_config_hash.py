"""config_hash is Landlord's ComputeConfigHash byte for byte, numbers included.

Every expected text and digest below is what Go (go1.19.8, `encoding/json`) wrote for
the same value: `json.Marshal(float64)` for the numbers, and `json.Unmarshal` into
`map[string]interface{}` then `json.Marshal` (what Landlord does) for the maps.
"""

from __future__ import annotations

import hashlib
import json
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landlord_restate import InvalidInputError, config_hash
from landlord_restate.workflow.config_hash import go_json, go_number

#: float64 -> what Go's json.Marshal wrote for it
GO_NUMBERS = [
    (1.0, "1"),
    (1e20, "100000000000000000000"),
    (1e21, "1e+21"),
    (-1e21, "-1e+21"),
    (1e22, "1e+22"),
    (1e-7, "1e-7"),
    (1.5e-7, "1.5e-7"),
    (1e-10, "1e-10"),
    (2.5e-100, "2.5e-100"),
    (1e-6, "0.000001"),
    (1.234e-6, "0.000001234"),
    (1e-5, "0.00001"),
    (123456789.125, "123456789.125"),
    (0.1, "0.1"),
    (0.3, "0.3"),
    (2.0 / 3, "0.6666666666666666"),
    (-0.0, "-0"),
    (5e-324, "5e-324"),
    (1.7976931348623157e308, "1.7976931348623157e+308"),
    (1.5e300, "1.5e+300"),
    (1e15, "1000000000000000"),
    (1e16, "10000000000000000"),
    (1.2345678901234568e20, "123456789012345680000"),
    (-42.5, "-42.5"),
    (4.35, "4.35"),
    # ints: what Go's decoder makes of the JSON number, a float64
    (100, "100"),
    (12345678901234567890, "12345678901234567000"),
    (2**53 + 1, "9007199254740992"),
]

#: a desired configuration as JSON text -> Go's marshalled bytes and their sha256
NESTED_TEXT = (
    '{"b":{"z":[1,2.50,{"y":1e-7}],"a":"x<y&z\\u2028"},"a":[true,null,"\\u0001\\n"],'
    '"é":1,"z":-0.0,"big":12345678901234567890,"tiny":[5e-324,1e21,1e20]}'
)
NESTED_GO = (
    '{"a":[true,null,"\\u0001\\n"],"b":{"a":"x\\u003cy\\u0026z\\u2028","z":[1,2.5,'
    '{"y":1e-7}]},"big":12345678901234567000,"tiny":[5e-324,1e+21,100000000000000000000],'
    '"z":-0,"é":1}'
)
NESTED_GO_SHA256 = "edc55cc6f0eb5903d51d1089cd9991981f9dc5e6d1cae08d6d560b7118807ddf"
REPLICAS_GO_SHA256 = "cf528d468fef72e7e82fd99f5302c49b3f76ca1e52e849cfd841c2d3f356718f"


@pytest.mark.parametrize(("number", "go"), GO_NUMBERS, ids=[g for _, g in GO_NUMBERS])
def test_numbers_are_written_as_go_writes_a_float64(number: float, go: str) -> None:
    """Shortest digits, plain inside [1e-6, 1e21), Go's exponent form outside, "-0"."""
    assert go_number(number) == go
    assert go_json([number]) == f"[{go}]"


def test_a_nested_configuration_is_go_s_bytes_and_hash() -> None:
    """Sorted keys at every level, HTML escapes, numbers as float64: Go's text and digest."""
    config = json.loads(NESTED_TEXT)
    assert go_json(config) == NESTED_GO
    assert config_hash(config) == NESTED_GO_SHA256
    assert hashlib.sha256(NESTED_GO.encode()).hexdigest() == NESTED_GO_SHA256


def test_one_and_one_point_zero_are_one_configuration() -> None:
    """{"replicas": 1} and {"replicas": 1.0}: one float64 in Go, so one hash (Go's)."""
    assert config_hash({"replicas": 1}) == config_hash({"replicas": 1.0}) == REPLICAS_GO_SHA256
    assert config_hash({"replicas": 1}) != config_hash({"replicas": 1.5})
    # tuples are arrays and any Mapping an object, as the bounds check accepts them
    assert config_hash({"r": (1, 2)}) == config_hash({"r": [1.0, 2.0]})
    assert config_hash(types.MappingProxyType({"replicas": 1})) == REPLICAS_GO_SHA256


def test_what_go_cannot_decode_is_an_invalid_input_error() -> None:
    """Beyond float64, NaN, lone surrogates, non-string keys: InvalidInputError, not raw."""
    for config in ({"x": 10**400}, {"x": 10**5000}, {"x": float("nan")}, {"x": "\ud800"},
                   {"\udfff": 1}, {1: "a"}, {"x": {1, 2}}):
        with pytest.raises(InvalidInputError) as caught:
            config_hash(config)
        assert caught.value.field == "desired_config"
    # the largest int that rounds to a finite float64 is still a number Go reads
    assert go_number(2**1024 - 2**970 - 1) == "1.7976931348623157e+308"


def test_deep_nesting_needs_no_recursion() -> None:
    """A configuration nested 10,000 deep is encoded, not a RecursionError."""
    value: Any = 1
    for _ in range(10_000):
        value = {"x": [value]}
    assert go_json(value).startswith('{"x":[{"x":[')


finite_numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(
    min_value=-(2**1023), max_value=2**1023)
configs = st.recursive(
    st.none() | st.booleans() | finite_numbers | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(configs)
def test_go_reads_back_what_it_wrote(config: Any) -> None:
    """Go's text decoded as Go does (numbers as float64) encodes to the same text again."""
    encoded = go_json(config)
    assert go_json(json.loads(encoded, parse_int=float)) == encoded


@settings(max_examples=500, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_reads_back_exactly(number: float) -> None:
    """The digits written are the float64 itself, in Go's form for its magnitude."""
    text = go_number(number)
    assert float(text) == number
    assert ("e" in text) == (number != 0 and not 1e-6 <= abs(number) < 1e21)
