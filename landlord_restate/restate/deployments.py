"""What an operator sees of Restate's deployments: which code serves which services, and
how many executions still run on it.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from datetime import datetime

from attrs import frozen


@frozen(kw_only=True)
class DeploymentInfo:
    """One registered handler deployment, as `list_deployments` reports it."""

    deployment_id: str
    #: the URI restate-server invokes, or the Lambda ARN
    address: str
    created_at: datetime | None
    #: the services it serves (names)
    services: tuple[str, ...]
    #: executions not completed whose invocation is pinned to it
    in_flight: int
    #: whether it serves the newest revision of at least one of its services
    latest: bool
