"""Shim completions on AWS Lambda's path against a plain restate.Workflow on the same path
(line 17): a stack of its own, restate-server invoking a local Lambda through its Lambda
client (request/response: each step ends an invocation, the next replays the journal)."""

from __future__ import annotations

import statistics

import aiohttp

from landlord_restate import RestateProvider
from landlord_restate.testing import LocalRestate
from tests.bench import ROOT, SERVICE, Bench, Run, line
from tests.bench.core import completion_rounds


async def lambda_completions(run: Run, n: int = 300, rounds: int = 2) -> None:
    """Line 17: n runs of ThreeSteps through the shim, then n of PlainThreeSteps, both
    started raw on the Lambda path, in alternating rounds; completions per second, and
    how many invokes a run took."""
    env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": SERVICE}
    async with LocalRestate(
        execution_mechanism="lambda", app="tests.bench_app:app", service_name=SERVICE,
        base_dir=run.base / "lambda", config_file=ROOT / "restate.toml", env=env,
    ) as local, RestateProvider(local.config()) as provider, aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256)
    ) as raw:
        bench = Bench(local.server, provider, raw)
        found = await completion_rounds(
            bench, n, rounds, counted=lambda: len(local.function.invocations()))
    s, p = statistics.median(found.shim), statistics.median(found.plain)
    run.bench.add(
        f"17. completions/s on Lambda's path, {n} runs of 3 steps", f"{s:.0f}/s (shim)",
        f"{p:.0f}/s (plain)",
        f"{s / p:.2f}x (goal >= 0.9x); invokes per run {statistics.median(found.shim_counted):.1f} "
        f"/ {statistics.median(found.plain_counted):.1f}",
    )


@line("17", order=1500)  # a stack of its own, after the shared one's lines
async def _line_17(run: Run) -> None:
    await lambda_completions(run)
