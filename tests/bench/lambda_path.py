"""Shim completions on AWS Lambda's path against a plain restate.Workflow on the same path
(line 17): a stack of its own, restate-server invoking a local Lambda through its Lambda
client (request/response: each step ends an invocation, the next replays the journal)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

import aiohttp

from landlord_restate import RestateProvider
from landlord_restate.restate.naming import workflow_key
from landlord_restate.testing import LocalRestate
from tests.bench import ROOT, SERVICE, Bench, Run, gated, line


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
        shim_rates, plain_rates, shim_invokes, plain_invokes = [], [], [], []
        for _ in range(rounds):
            workflow_id = await bench.workflow("ThreeSteps")
            before = len(local.function.invocations())
            began = time.perf_counter()

            async def shim(i: int, w: str = workflow_id) -> Any:
                return await bench.raw_send(
                    SERVICE, workflow_key(w, f"e{i}"), bench.envelope(w, "ThreeSteps", f"e{i}"))

            await gated(n, shim)
            await bench.wait_completed(f"{workflow_id}.", n)
            shim_rates.append(n / (time.perf_counter() - began))
            await bench.drain()
            shim_invokes.append((len(local.function.invocations()) - before) / n)
            prefix = f"plain{uuid.uuid4().hex[:6]}"
            before = len(local.function.invocations())
            began = time.perf_counter()

            async def plain(i: int, p: str = prefix) -> Any:
                return await bench.raw_send("PlainThreeSteps", f"{p}{i}", {})

            await gated(n, plain)
            await bench.wait_completed(prefix, n)
            plain_rates.append(n / (time.perf_counter() - began))
            await bench.drain()
            plain_invokes.append((len(local.function.invocations()) - before) / n)
    s, p = statistics.median(shim_rates), statistics.median(plain_rates)
    run.bench.add(
        f"17. completions/s on Lambda's path, {n} runs of 3 steps", f"{s:.0f}/s (shim)",
        f"{p:.0f}/s (plain)",
        f"{s / p:.2f}x (goal >= 0.9x); invokes per run {statistics.median(shim_invokes):.1f} "
        f"/ {statistics.median(plain_invokes):.1f}",
    )


@line("17", order=1500)  # a stack of its own, after the shared one's lines
async def _line_17(run: Run) -> None:
    await lambda_completions(run)
