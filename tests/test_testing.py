"""The public testing harness: `landlord_restate.testing`, as a user of it would run it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import landlord_restate
import landlord_restate.testing
from landlord_restate import ExecutionInput, ExecutionState, RestateProvider
from landlord_restate.testing import _binaries
from tests.conftest import ROOT, spec_for
from tests.waiting import wait_status, wait_terminal

pytestmark = pytest.mark.timeout(180)


def test_a_missing_server_binary_names_all_three_places(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No env variable, nothing on PATH, no checkout: the error says where it looked."""
    monkeypatch.delenv(_binaries.SERVER_BINARY_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(_binaries, "_NPM_GLOB", "no/such/restate-server")
    with pytest.raises(FileNotFoundError) as caught:
        _binaries.find_server_binary(tmp_path)
    message = str(caught.value)
    assert _binaries.SERVER_BINARY_ENV in message
    assert "PATH" in message
    assert "make setup" in message


async def test_a_failed_start_stops_what_started(tmp_path: Path) -> None:
    """A deployment that cannot start (a handler module that does not import): the
    server started before it is stopped again, and the error says why."""
    harness = landlord_restate.testing.LocalRestate(
        handlers=["no_such_module_anywhere"], base_dir=tmp_path, startup_timeout=20
    )
    with pytest.raises(RuntimeError, match="hypercorn exited"):
        await harness.__aenter__()
    with pytest.raises(RuntimeError, match="not started"):
        _ = harness.server


# -- the public surface, pinned ---------------------------------------------------------


def test_the_exported_names_are_pinned() -> None:
    """What `landlord_restate`, `services` and the testing module export, exactly."""
    assert sorted(landlord_restate.__all__) == sorted([
        "AuthType", "BackoffType", "CallbackOptions", "ComputeCallbackPayload", "ConfigError",
        "CreateWorkflowResult", "DeploymentError", "DeploymentInUseError", "DeploymentInfo",
        "ExecutionCount", "ExecutionError", "ExecutionStateError", "ExecutionEvent",
        "ExecutionInput", "ExecutionMechanism", "ExecutionNotFoundError", "ExecutionPage",
        "ExecutionResult", "ExecutionState",
        "ExecutionStatus", "ExecutionSummary", "InvalidInputError", "InvalidSpecError",
        "Provider", "ProviderConflictError", "ProviderNotFoundError", "ProviderStateError",
        "ProvisionRequest", "Registry", "RestateConfig", "RestateConnectionError",
        "RestateProtocolError", "RestateProvider", "RestateServerError",
        "RestateUnavailableError", "RetryPolicy", "WorkflowError", "WorkflowNotFoundError",
        "WorkflowSpec", "WorkflowStatus", "WorkflowSubState", "config_hash",
        "extract_workflow_details", "from_json", "load_config", "to_json",
    ])
    for name in landlord_restate.__all__:
        assert getattr(landlord_restate, name) is not None
    import services

    assert sorted(services.__all__) == ["HandlerContext", "HandlerError", "handler"]
    assert sorted(landlord_restate.testing.__all__) == [
        "DeploymentProcess", "LambdaCall", "LambdaProcess", "LocalCluster", "LocalRestate",
        "ServerProcess",
        "find_server_binary", "poll_until_terminal",
    ]


def test_the_deployment_imports_no_http_client() -> None:
    """`import services.app` loads no aiohttp (on Lambda every import is cold-start time)."""
    probe = "import services.app, sys; print('aiohttp' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    assert done.stdout.strip() == "False"


async def test_doctor_is_healthy_before_anything_is_registered(tmp_path: Path) -> None:
    """A fresh stack: the deployment answers and hosts handlers, nothing is registered
    yet; doctor exits 0 and says that `create` registers it."""
    async with landlord_restate.testing.LocalRestate(base_dir=tmp_path) as fresh:
        config = fresh.config()
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_RESTATE_")}
        env |= {"WORKFLOW_RESTATE_ENDPOINT": config.endpoint,
                "WORKFLOW_RESTATE_ADMIN_ENDPOINT": config.admin_endpoint,
                "WORKFLOW_RESTATE_DEPLOYMENT_URL": str(config.deployment_url),
                "LANDLORD_CONFIG": "", "PYTHONPATH": str(ROOT)}
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "landlord_restate.cli", "doctor"], env=env,
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not registered yet" in done.stdout
    assert "TenantProvisioning" in done.stdout


async def test_always_replay_catches_a_handler_that_is_not_deterministic(
    tmp_path: Path,
) -> None:
    """With always_replay, every step is reached by replay: a handler whose step names
    change between runs fails (Restate reports the journal mismatch), while a
    deterministic one still succeeds."""
    async with landlord_restate.testing.LocalRestate(
        handlers=["tests.handlers"], base_dir=tmp_path, always_replay=True,
        env={"PYTHONPATH": str(ROOT)},
    ) as local, RestateProvider(local.config()) as provider:
        for handler in ("NotDeterministic", "FiveSteps"):
            await provider.create_workflow(spec_for(handler, handler_id(handler)))
        bad = await provider.start_execution(handler_id("NotDeterministic"),
                                             ExecutionInput(input={}))
        good = await provider.start_execution(handler_id("FiveSteps"), ExecutionInput(
            input={"marks": str(tmp_path / "marks")}))
        assert (await wait_terminal(provider, good.execution_id)).state is (
            ExecutionState.SUCCEEDED)
        status = await wait_status(provider, bad.execution_id,
                                   lambda s: s.error is not None and s.error.code != "")
        assert status.state is ExecutionState.RUNNING  # Restate retries it: never succeeds
        assert status.error is not None
        assert "journal mismatch" in status.error.message.lower() or (
            status.error.code == "RT0016"), status.error


def handler_id(handler: str) -> str:
    """The workflow id deriving `handler`'s service name ("FiveSteps" -> "five-steps")."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", handler).lower()
