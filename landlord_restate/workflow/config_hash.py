"""Landlord's `tenant.ComputeConfigHash`: the identity of a desired configuration."""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Go's encoding/json escapes these inside strings (HTML safety); so must the hash input
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028",
               "\u2029": "\\u2029"}


def config_hash(config: Any) -> str:
    """SHA-256 hex of the config as Go's `json.Marshal` writes it; "" for none or empty.

    Go sorts map keys and writes no spaces; that is the same bytes for the JSON objects,
    strings, integers and booleans a desired configuration holds.
    """
    if config is None:
        return ""
    encoded = json.dumps(config, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                         allow_nan=False)
    if encoded in ("{}", "[]", ""):
        return ""
    for raw, escaped in _GO_ESCAPES.items():
        encoded = encoded.replace(raw, escaped)
    return hashlib.sha256(encoded.encode()).hexdigest()
