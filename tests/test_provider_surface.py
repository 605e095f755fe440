"""RestateProvider is the one public door: its signatures and docstrings are pinned.

The behaviour behind each method lives in rooms named after it (`landlord_restate.restate`);
moving it there must not change what a caller sees. A deliberate change to the surface
updates `fixtures/provider_surface.json` in the same commit.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from landlord_restate import RestateProvider

PINNED = Path(__file__).parent / "fixtures" / "provider_surface.json"
#: dunder methods that are part of the door (the async context manager)
_DOOR_DUNDERS = frozenset({"__aenter__", "__aexit__", "__init__"})


def surface() -> dict[str, dict[str, Any]]:
    """Every public member of RestateProvider: kind, signature, docstring, async or not."""
    found: dict[str, dict[str, Any]] = {}
    for name, member in sorted(vars(RestateProvider).items()):
        if name.startswith("_") and name not in _DOOR_DUNDERS:
            continue
        if isinstance(member, property):
            found[name] = {"kind": "property", "doc": inspect.getdoc(member)}
            continue
        function = getattr(member, "__wrapped__", member)
        found[name] = {"kind": "method", "signature": str(inspect.signature(function)),
                       "doc": inspect.getdoc(member),
                       "async": inspect.iscoroutinefunction(function)}
    return found


def test_the_public_surface_is_as_pinned() -> None:
    """Every public method keeps its name, signature, docstring and async-ness."""
    pinned = json.loads(PINNED.read_text())
    current = surface()
    assert sorted(current) == sorted(pinned)
    for name, expected in pinned.items():
        assert current[name] == expected, name
