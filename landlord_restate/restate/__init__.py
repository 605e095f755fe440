"""The Restate provider: config, admin and ingress clients, status mapping.

`RestateProvider` (and with it aiohttp) is imported on first use, so the handler
deployment, which imports the wire contract and config from here, never loads an HTTP
client: on AWS Lambda every import is cold-start time.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from landlord_restate.restate.config import AuthType, ExecutionMechanism, RestateConfig
from landlord_restate.restate.settings import load_config

if TYPE_CHECKING:
    from landlord_restate.restate.provider import RestateProvider

__all__ = ["AuthType", "ExecutionMechanism", "RestateConfig", "RestateProvider", "load_config"]

_LAZY = {"RestateProvider": "landlord_restate.restate.provider"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
