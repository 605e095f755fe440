"""The rooms of one open provider: a room per family of operations, built on the parts
they share (`parts.Parts`), each handed what it needs rather than reaching for it.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from attrs import frozen

from landlord_restate.restate.actions import OperatorActions
from landlord_restate.restate.deployments import Deployments
from landlord_restate.restate.executions import Executions
from landlord_restate.restate.parts import Parts
from landlord_restate.restate.search import Search
from landlord_restate.restate.stopping import Stopping
from landlord_restate.restate.workflows import Workflows


@frozen
class Rooms:
    """The rooms of one open provider, sharing its parts."""

    parts: Parts
    workflows: Workflows
    deployments: Deployments
    executions: Executions
    stopping: Stopping
    actions: OperatorActions
    search: Search

    @classmethod
    def of(cls, parts: Parts) -> Rooms:
        """Every room, on `parts`; workflows register through deployments, and redrives
        start through executions."""
        deployments = Deployments(parts)
        executions = Executions(parts)
        return cls(
            parts=parts, workflows=Workflows(parts, deployments), deployments=deployments,
            executions=executions, stopping=Stopping(parts),
            actions=OperatorActions(parts, executions), search=Search(parts),
        )
