"""A tenant's provider config over the provider's defaults (Landlord's `config_merge.go`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def merge_config(
    base: Mapping[str, Any] | None, override: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`override` over `base`, recursively where both hold a map; any other value in
    `override` replaces the base's (Landlord's `MergeConfigMaps`)."""
    result: dict[str, Any] = dict(base or {})
    for key, value in (override or {}).items():
        below = result.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            result[key] = merge_config(below, value)
        else:
            result[key] = value
    return result
