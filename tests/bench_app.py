"""The benchmark deployment: services.app's services plus the same three steps written as a
plain restate.Workflow, so shim and no-shim run side by side in one process."""

from __future__ import annotations

import os
from typing import Any

import restate

import tests.handlers  # noqa: F401  (registers ThreeSteps and the other test handlers)
from services.app import build_services
from services.registry import registered_handlers

plain = restate.Workflow("PlainThreeSteps")


def _work(name: str) -> str:
    return name


@plain.main(name="run")
async def run(ctx: restate.WorkflowContext, request: dict[str, Any]) -> dict[str, Any]:
    """The three steps of ThreeSteps, without the shim."""
    done = [await ctx.run_typed(f"step-{i}", _work, restate.RunOptions(), f"step-{i}")
            for i in (1, 2, 3)]
    return {"steps": done}


app = restate.app(
    services=[*build_services(registered_handlers(), os.environ.get("BENCH_SERVICE", "Bench")),
              plain]
)
