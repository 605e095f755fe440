"""Upgrades: new handler code while executions are in flight, against the real server.

Two deployments host the same handlers with different code: `Versioned` answers which
code version ran it (LANDLORD_TEST_CODE_VERSION), so each test can tell which ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    DeploymentInUseError,
    ExecutionInput,
    ExecutionState,
    RestateProvider,
)
from landlord_restate.testing import DeploymentProcess, LocalRestate
from tests.conftest import ROOT, deployment_env, spec_for, unique_id
from tests.handlers import CODE_VERSION_ENV
from tests.waiting import wait_status, wait_terminal

SERVICE = "Upgrades"


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[LocalRestate]:
    """A server with deployment "v1" of the test handlers, on one service."""
    async with LocalRestate(
        handlers=["tests.handlers"], service_name=SERVICE, base_dir=tmp_path / "v1",
        config_file=ROOT / "restate.toml", env=deployment_env(**{CODE_VERSION_ENV: "v1"}),
    ) as local:
        yield local


def v2_env(**extra: str) -> dict[str, str]:
    """The environment of deployment "v2": the same handlers, other code."""
    return deployment_env(**{CODE_VERSION_ENV: "v2", "WORKFLOW_RESTATE_SERVICE_NAME": SERVICE},
                          **extra)


def waiting_for_callback(status: object) -> bool:
    """The execution waits for its compute callback."""
    history = status.history  # type: ignore[attr-defined]
    return bool(history) and history[-1].type == "callback_waiting"


async def test_new_code_at_a_new_address_drains_the_old(
    stack: LocalRestate, tmp_path: Path
) -> None:
    """In flight on v1 finishes on v1 after v2 is registered; new runs take v2; the old
    deployment shows 1 then 0 in flight and can be removed only once drained."""
    spec = spec_for("Versioned", unique_id("versioned"))
    async with RestateProvider(stack.config()) as provider:
        created = await provider.create_workflow(spec)
        v1_id = created.resource_ids["deployment_id"]
        first = await provider.start_execution(spec.workflow_id, ExecutionInput(
            execution_name="first", input={"callback": True}))
        waiting = await wait_status(provider, first.execution_id, waiting_for_callback)
        assert waiting.metadata["deployment_id"] == v1_id
        async with DeploymentProcess(tmp_path / "v2.log", env=v2_env()) as v2:
            async with RestateProvider(stack.config(deployment_url=v2.url)) as upgrader:
                registered = await upgrader.create_workflow(spec)
            v2_id = registered.resource_ids["deployment_id"]
            assert v2_id != v1_id
            deployments = {d.deployment_id: d for d in await provider.list_deployments()}
            assert deployments[v1_id].in_flight == 1
            assert deployments[v1_id].latest is False
            assert deployments[v2_id].latest is True
            assert deployments[v2_id].address.rstrip("/") == v2.url.rstrip("/")
            assert SERVICE in deployments[v2_id].services
            with pytest.raises(DeploymentInUseError) as caught:
                await provider.remove_deployment(v1_id)
            assert caught.value.in_flight == 1
            assert "1 executions" in str(caught.value)

            second = await provider.start_execution(spec.workflow_id, ExecutionInput(
                execution_name="second", input={}))
            done = await wait_terminal(provider, second.execution_id)
            assert done.output == {"code": "v2", "steps": ["v2", "v2"], "name": "second"}
            assert done.metadata["deployment_id"] == v2_id

            await provider.post_compute_callback(first.execution_id, ComputeCallbackPayload(
                execution_id="c", tenant_id="t", status="succeeded"))
            finished = await wait_terminal(provider, first.execution_id)
            assert finished.state is ExecutionState.SUCCEEDED
            assert finished.output == {"code": "v1", "steps": ["v1", "v1"], "name": "first"}
            assert finished.metadata["deployment_id"] == v1_id
            drained = {d.deployment_id: d for d in await provider.list_deployments()}
            assert drained[v1_id].in_flight == 0
            await provider.remove_deployment(v1_id)
            assert v1_id not in {d.deployment_id for d in await provider.list_deployments()}
            await provider.remove_deployment(v1_id)  # unknown now: fine
            with pytest.raises(DeploymentInUseError):  # the only one serving the workflow
                await provider.remove_deployment(v2_id)


async def test_changed_handlers_at_the_same_address_are_refused_while_in_flight(
    stack: LocalRestate,
) -> None:
    """The process at a registered address now serves other handlers while an execution
    runs there: create_workflow refuses with the count; once drained it re-registers."""
    spec = spec_for("Versioned", unique_id("versioned"))
    async with RestateProvider(stack.config()) as provider:
        await provider.create_workflow(spec)
        running = await provider.start_execution(spec.workflow_id, ExecutionInput(
            input={"callback": True}))
        await wait_status(provider, running.execution_id, waiting_for_callback)
        # the same address now serves one more handler module: a different handler set
        stack.deployment.env = {**stack.deployment.env,
                                "LANDLORD_RESTATE_HANDLERS": "tests.handlers,tests.more_handlers"}
        await stack.kill_deployment()
        await stack.restart_deployment()
        changed = spec_for("Extra", unique_id("extra"), provider_config={"service_name": SERVICE})
        with pytest.raises(DeploymentInUseError) as caught:
            await provider.create_workflow(changed)
        assert caught.value.in_flight == 1
        assert "new address" in str(caught.value)
        assert "1 executions" in str(caught.value)
        await provider.post_compute_callback(running.execution_id, ComputeCallbackPayload(
            execution_id="c", tenant_id="t", status="succeeded"))
        await wait_terminal(provider, running.execution_id)
        await provider.create_workflow(changed)  # drained: registered again


async def test_a_deployment_registers_itself_with_the_worker_keys(
    stack: LocalRestate, tmp_path: Path
) -> None:
    """A third process started with Landlord's worker keys appears in list_deployments
    without any provider call registering it."""
    itself = DeploymentProcess(tmp_path / "self.log", env=v2_env(**{
        "WORKFLOW_RESTATE_WORKER_REGISTER_ON_STARTUP": "true",
        "WORKFLOW_RESTATE_WORKER_ADMIN_ENDPOINT": stack.server.admin_url,
    }))
    itself.env["WORKFLOW_RESTATE_WORKER_ADVERTISED_URL"] = itself.url
    async with itself, RestateProvider(stack.config()) as provider:
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            found = [d for d in await provider.list_deployments()
                     if d.address.rstrip("/") == itself.url]
            if found:
                break
            assert asyncio.get_running_loop().time() < deadline, (
                (tmp_path / "self.log").read_text()[-2000:])
            await asyncio.sleep(0.1)
        assert SERVICE in found[0].services
