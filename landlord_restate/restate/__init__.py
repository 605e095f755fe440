"""The Restate provider: config, admin and ingress clients, status mapping.

One module per concept:

- `provider`: `RestateProvider`, the one public door. `connection` opens its sessions and
  builds `parts` (the clients, the spec catalog, the logger), which `rooms` hands to a room
  per family of operations: `workflows` (validate, create, delete), `builtin` (the workflows a
  worker brings, and where a workflow runs), `deployments` (discover, register, list,
  remove; `DeploymentInfo`), `executions` (start, invoke, status, wait, the compute
  callback), `stopping` (stop, kill, the kill after `stop_grace`), `actions` (pause,
  resume, purge, redrive), `search` (pages, counts, lookups of executions) and `tags`
  (where a start's tags are kept so a search by tag is bounded).
- `config` (the value and its cross-field rules), `settings` (its sources: file <
  environment < flags), `urls` (the URL grammar).
- `wire` (what provider and deployment share: handler, state and promise names, the
  envelope, the outcome, the catalog record), `naming` (ids, keys, service names),
  `vocabulary` (Restate's statuses, entry kinds and rows), `limits` and `inputs` (bounds and
  checks of what callers pass), `validation` (offline spec checks).
- `catalog` (specs: written once through the deployment, read and deleted with the
  server alone), `introspection` (every SQL statement), `reading` (one read of all a
  status needs), `records` (what the shim and the provider recorded, from the rows),
  `status` (a pure build of the ExecutionStatus and its history), `redrive` (what a failed
  run completed, from its journal).
- `http` (where HTTP meets Restate: errors, retries, nodes), `transience` (which answers
  mean "not ready"), `admin` and `ingress` (the two APIs), `errors`, `tracing`.
- `waiting` (polling an execution until it ends). The local server, cluster and deployment
  processes (for tests and `make run`) are `landlord_restate.testing`, which builds on
  this package, never the other way round.

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
