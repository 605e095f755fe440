"""Run the bench: `python -m tests.bench [LINE ...]` (all lines by default)."""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

import tests.bench
from landlord_restate import RestateConfig, RestateProvider
from landlord_restate.testing import DeploymentProcess, ServerProcess
from landlord_restate.testing._binaries import describe_machine
from tests.bench import LINES, ROOT, SERVICE, Bench, Run


def _load_lines() -> None:
    """Import every module of the package: each registers its lines."""
    for module in pkgutil.iter_modules(tests.bench.__path__):
        if module.name != "__main__":
            importlib.import_module(f"tests.bench.{module.name}")


async def main(numbers: Sequence[str] = ()) -> int:
    """Start the shared stack, run the lines asked for (all by default), print the table."""
    _load_lines()
    unknown = [n for n in numbers if n not in LINES]
    if unknown:
        print(f"unknown lines {unknown}; known: {sorted(LINES, key=float)}", file=sys.stderr)
        return 2
    # a function that prints two lines (4 and 5, 10 and 11) runs once
    runs = {LINES[n].run: LINES[n] for n in numbers or LINES}
    chosen = sorted(runs.values(), key=lambda lin: lin.order)
    machine = describe_machine(ROOT)
    print(f"machine: {machine}", flush=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="landlord-bench-") as tmp:
        base = Path(tmp)
        env = {"PYTHONPATH": str(ROOT), "BENCH_SERVICE": SERVICE}
        server = ServerProcess(base / "data", config_file=ROOT / "restate.toml")
        deployment = DeploymentProcess(base / "hypercorn.log", env=env, app="tests.bench_app:app")
        async with server, deployment:
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   deployment_url=deployment.url, service_name=SERVICE)
            async with RestateProvider(config) as provider, aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256)
            ) as raw:
                bench = Bench(server, provider, raw)
                run = Run(bench, config, base)
                for chosen_line in chosen:
                    await chosen_line.run(run)
    print(f"\n{machine}; total {time.perf_counter() - began:.0f} s\n")
    print("| line | provider | raw Restate | ratio |")
    print("|---|---|---|---|")
    for row in sorted(bench.lines, key=lambda r: (float(r[0].split(".")[0]), r[0])):
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
