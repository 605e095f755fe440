"""`make ui-screenshots`: pictures of Restate's UI for docs/operations.md, taken from a real
stack, so they stay true when the code changes.

Starts a local restate-server and deployment (the public harness, free loopback ports),
runs three executions through the provider (one that succeeds, one that fails with
Landlord's code, one an operator stops while it waits for its compute callback), then
points headless Chromium (Debian's `chromium`) at the UI's pages for them and writes
`docs/images/ui-*.png`. Everything it starts is stopped when it ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from landlord_restate import ExecutionInput, RestateProvider, WorkflowSpec
from landlord_restate.testing import LocalRestate

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
#: Chromium as this machine's probe ran it: headless, and never reaching for the network
_CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1440,1000", "--virtual-time-budget=15000",
)


def chromium() -> str:
    """The Chromium binary (Debian's package), or exit saying how to get it."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("ui-screenshots needs Chromium: apt-get install chromium (make ui-screenshots "
             "installs it when run as root)")


def screenshot(url: str, out: Path) -> None:
    """One page, after the UI has loaded its data, as a PNG."""
    with tempfile.TemporaryDirectory(prefix="ui-chromium-") as profile:
        subprocess.run(  # noqa: S603 (argv: a resolved binary, fixed flags, our own URL)
            [chromium(), *_CHROMIUM_FLAGS, f"--user-data-dir={profile}",
             f"--screenshot={out}", url],
            check=True, capture_output=True, timeout=120,
        )
    if out.is_relative_to(ROOT):
        print(f"wrote {out.relative_to(ROOT)}  ({url})")


async def main() -> int:
    """Start the stack, make the three executions, take the pictures."""
    OUT.mkdir(parents=True, exist_ok=True)
    env = {"PYTHONPATH": str(ROOT), "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "mock"}
    async with LocalRestate(handlers=["scripts.ui_handlers"], env=env,
                            config_file=ROOT / "restate.toml") as local, \
            RestateProvider(local.config()) as provider:
        for workflow_id, handler in (("tenant-provisioning", "TenantProvisioning"),
                                     ("provision-with-callback", "ProvisionWithCallback")):
            await provider.create_workflow(WorkflowSpec(
                workflow_id=workflow_id, provider_type="restate",
                definition={"handler": handler}))
        request = {"tenant_id": "acme", "tenant_uuid": "5f1c8d2e-0b7a-4c1e-9a57-3d2f6e8b9c10",
                   "operation": "provision", "desired_config": {"image": "acme/app:1.4"}}
        succeeded = await provider.start_execution("tenant-provisioning", ExecutionInput(
            execution_name="acme-provision", input=request, trigger_source="ui-screenshots"))
        failed = await provider.start_execution("tenant-provisioning", ExecutionInput(
            execution_name="acme-frobnicate", input=request | {"operation": "frobnicate"}))
        waiting = await provider.start_execution("provision-with-callback", ExecutionInput(
            execution_name="globex-provision", input={"tenant_id": "globex"}))
        for started in (succeeded, failed):
            await provider.wait_execution(started.execution_id, timeout=60)
        await _until_waiting(provider, waiting.execution_id)
        await provider.stop_execution(waiting.execution_id, "tenant deleted by operator")
        await provider.wait_execution(waiting.execution_id, timeout=60)
        ui = f"{local.server.admin_url}/ui"
        # a first load fills Chromium's caches: the pictures after it show the loaded UI
        warm = Path(local.server.base_dir) / "warm.png"
        await asyncio.to_thread(screenshot, f"{ui}/overview", warm)
        pages = {
            "ui-stopped-run.png": f"{ui}/invocations/{waiting.execution_id}",
            "ui-failed-run.png": f"{ui}/invocations/{failed.execution_id}",
            "ui-succeeded-run.png": f"{ui}/invocations/{succeeded.execution_id}",
            "ui-overview.png": f"{ui}/overview",
        }
        for name, url in pages.items():
            await asyncio.to_thread(screenshot, url, OUT / name)
    return 0


async def _until_waiting(provider: RestateProvider, execution_id: str) -> None:
    """Wait until the run waits for its compute callback (its journal shows the wait)."""
    for _ in range(300):
        status = await provider.get_execution_status(execution_id)
        if any(e.type == "callback_waiting" for e in status.history):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{execution_id} never waited for its callback")


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(asyncio.run(main()))
