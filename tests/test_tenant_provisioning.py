"""TenantProvisioning's compute provider, resolved in Landlord's order, and the requests it
refuses: against a real restate-server, with a stand-in for Landlord's own API (Landlord is
Go and cannot run here: the one stand-in these tests use)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml
from aiohttp import web

from landlord_restate import (
    ExecutionInput,
    ExecutionState,
    ExecutionStatus,
    ProvisionRequest,
    RestateProvider,
)
from landlord_restate.testing import DeploymentProcess, LocalRestate
from tests.conftest import ROOT, deployment_env, spec_for, unique_id
from tests.fakes import serve
from tests.waiting import wait_terminal


class LandlordAPI:
    """Landlord's `GET /v1/tenants/{uuid}`: the tenants it knows, and every path asked."""

    def __init__(self) -> None:
        self.tenants: dict[str, Any] = {}
        self.asked: list[str] = []
        self.app = web.Application()
        self.app.router.add_get("/{tail:.*}", self._get)

    async def _get(self, request: web.Request) -> web.Response:
        self.asked.append(request.path)
        prefix = "/v1/tenants/"
        if request.path.startswith(prefix):
            tenant = self.tenants.get(request.path.removeprefix(prefix))
            if isinstance(tenant, int):
                return web.json_response({"error": "boom"}, status=tenant)
            if tenant is not None:
                return web.json_response(tenant)
        return web.json_response({"error": "not found"}, status=404)


@attrs.frozen
class Worker:
    """A deployment of its own on the shared server: its service and a provider for it."""

    service: str
    workflow_id: str
    provider: RestateProvider


@pytest.fixture(scope="module")
async def landlord_api() -> AsyncIterator[tuple[LandlordAPI, str]]:
    """The stand-in for Landlord's API, and its base URL (no `/v1`: the worker adds it)."""
    api = LandlordAPI()
    async with serve(api.app) as url:
        yield api, url


@pytest.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[LocalRestate]:
    """A server of this module's own (its deployment unused: each test's worker is its
    own process, with its own settings)."""
    base = tmp_path_factory.mktemp("resolution")
    async with LocalRestate(base_dir=base, config_file=ROOT / "restate.toml",
                            env=deployment_env()) as local:
        yield local


def compute_file(folder: Path, compute: Mapping[str, Any]) -> Path:
    """A Landlord config file holding `compute:` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({"compute": dict(compute)}))
    return config


async def start_worker(
    stack: LocalRestate, folder: Path, compute: Mapping[str, Any], **env: str
) -> tuple[DeploymentProcess, Worker]:
    """A worker hosting every handler in one service of its own, its `compute:` section and
    worker keys as given (no `worker_compute_provider` unless given), and a workflow on it."""
    service = f"Resolve{uuid.uuid4().hex[:8]}"
    config = compute_file(folder, compute)
    process = DeploymentProcess(folder / "worker.log", env=deployment_env(**{
        "LANDLORD_RESTATE_HANDLERS": "tests.compute.providers",
        "WORKFLOW_RESTATE_SERVICE_NAME": service,
        "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "",
        "LANDLORD_CONFIG": str(config),
        **env,
    }))
    await process.start()
    provider = RestateProvider(attrs.evolve(stack.config(), deployment_url=process.url,
                                            service_name=service))
    workflow_id = unique_id("tp")
    await provider.open()
    await provider.create_workflow(spec_for("TenantProvisioning", workflow_id))
    return process, Worker(service, workflow_id, provider)


async def run(worker: Worker, **request: Any) -> ExecutionStatus:
    """One TenantProvisioning run of `request` on the worker, to its end."""
    started = await worker.provider.start_execution(worker.workflow_id, ExecutionInput(
        execution_name=unique_id("run"), input=request))
    return await wait_terminal(worker.provider, started.execution_id, within=60)


async def provider_of(worker: Worker, **request: Any) -> str:
    """The compute provider a provision of `request` ran on."""
    status = await run(worker, **request)
    assert status.state is ExecutionState.SUCCEEDED, status.error
    return str(status.output["provider_type"])


async def test_landlord_order_request_api_worker_key(
    stack: LocalRestate, landlord_api: tuple[LandlordAPI, str], tmp_path: Path,
) -> None:
    """The request's compute_provider first; then Landlord's API (desired_config's
    compute_provider, then compute_provider_type, labels, annotations), its answer cached;
    then worker_compute_provider when the API names none, fails, or has no uuid to ask."""
    api, url = landlord_api
    process, worker = await start_worker(
        stack, tmp_path, {"alpha": None, "beta": None, "default_provider": "beta"},
        WORKFLOW_RESTATE_WORKER_LANDLORD_API_URL=url,
        WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER="gamma",
    )
    async with process, worker.provider:
        ids = {name: str(uuid.uuid4()) for name in
               ("config", "type", "labels", "annotations", "nothing", "failing", "unknown")}
        api.tenants |= {
            ids["config"]: {"name": "a", "desired_config": {"compute_provider": "delta",
                                                            "compute_provider_type": "beta"},
                            "labels": {"compute_provider": "beta"}},
            ids["type"]: {"name": "b", "desired_config": {"compute_provider_type": "alpha"},
                          "labels": {"compute_provider": "beta"}},
            ids["labels"]: {"name": "c", "labels": {"compute_provider": "beta"},
                            "annotations": {"compute_provider": "alpha"}},
            ids["annotations"]: {"name": "d", "annotations": {"compute_provider": "alpha"}},
            ids["nothing"]: {"name": "e", "desired_config": {"image": "x"}},
            ids["failing"]: 500,
        }
        assert await provider_of(worker, tenant_id="r", tenant_uuid=ids["config"],
                                 compute_provider="alpha") == "alpha"
        assert f"/v1/tenants/{ids['config']}" not in api.asked  # the request named one
        assert await provider_of(worker, tenant_id="a", tenant_uuid=ids["config"]) == "delta"
        assert await provider_of(worker, tenant_id="b", tenant_uuid=ids["type"]) == "alpha"
        assert await provider_of(worker, tenant_id="c", tenant_uuid=ids["labels"]) == "beta"
        assert await provider_of(worker, tenant_id="d",
                                 tenant_uuid=ids["annotations"]) == "alpha"
        for case in ("nothing", "failing", "unknown"):
            assert await provider_of(worker, tenant_id=case, tenant_uuid=ids[case]) == "gamma"
        asked_before = len(api.asked)
        assert await provider_of(worker, tenant_id=unique_id("no-uuid")) == "gamma"
        assert len(api.asked) == asked_before  # no uuid: nothing to ask

        # cached for worker_compute_cache_ttl (5m): a changed answer is not seen yet
        api.tenants[ids["config"]]["desired_config"]["compute_provider"] = "alpha"
        await run(worker, tenant_id="a", tenant_uuid=ids["config"], operation="delete")
        assert await provider_of(worker, tenant_id="a", tenant_uuid=ids["config"]) == "delta"
        assert api.asked.count(f"/v1/tenants/{ids['config']}") == 1
        await worker.provider.aclose()


async def test_landlord_order_default_provider_then_none(
    stack: LocalRestate, tmp_path: Path,
) -> None:
    """With no API and no worker_compute_provider, the config's compute.default_provider;
    with no compute section either, a terminal "compute provider not specified"; a name no
    installed provider has fails naming it and the known ones. Neither is retried."""
    process, worker = await start_worker(
        stack, tmp_path / "default", {"alpha": None, "beta": None, "default_provider": "beta"},
    )
    async with process, worker.provider:
        assert await provider_of(worker, tenant_id=unique_id("t")) == "beta"
        unknown = await run(worker, tenant_id=unique_id("t"), compute_provider="nope")
        assert unknown.state is ExecutionState.FAILED
        assert unknown.error is not None
        assert unknown.error.code == "compute_provider_not_found"
        assert "'nope'" in unknown.error.message
        assert "alpha" in unknown.error.message  # what is known
        assert unknown.metadata["retry_count"] == "0"
        await worker.provider.aclose()
    process, worker = await start_worker(stack, tmp_path / "none", {})
    async with process, worker.provider:
        none = await run(worker, tenant_id=unique_id("t"))
        assert none.state is ExecutionState.FAILED
        assert none.error is not None
        assert none.error.code == "compute_provider_not_found"
        assert none.error.message.startswith("compute provider not specified")
        planned = await run(worker, tenant_id="t", operation="plan")  # needs no provider
        assert planned.output == {"status": "planned", "tenant_id": "t"}
        await worker.provider.aclose()


async def test_requests_refused_naming_what_is_wrong(provider: RestateProvider) -> None:
    """An unknown operation fails naming it; no tenant id, a field of the wrong type or a
    request that is no object fails as invalid_request naming the field; none is retried,
    none reaches a compute provider."""
    await provider.create_workflow(spec_for("TenantProvisioning"))
    cases: list[tuple[Any, str, str]] = [
        ({"tenant_id": "t", "operation": "resize"}, "unknown_operation",
         "unknown operation: resize"),
        ({"operation": "provision"}, "invalid_request", "tenant identifier is required"),
        ({"tenant_id": "t", "desired_config": ["image"]}, "invalid_request",
         "request.desired_config must be a JSON object"),
        ({"tenant_id": 7}, "invalid_request", "request.tenant_id must be a string"),
        ({"tenant_id": "t", "compute_provider": 1}, "invalid_request",
         "request.compute_provider must be a string"),
        (["t"], "invalid_request", "request must be a JSON object"),
    ]
    for request, code, says in cases:
        started = await provider.start_execution("tenant-provisioning", ExecutionInput(
            execution_name=unique_id("bad"), input=request))
        status = await wait_terminal(provider, started.execution_id)
        assert status.state is ExecutionState.FAILED, request
        assert status.error is not None
        assert (status.error.code, status.error.message.startswith(says)) == (code, True), (
            request, status.error)
        assert [e.type for e in status.history if e.type.startswith("step")] == []


async def test_provision_of_a_provisioned_tenant_answers_its_status(
    provider: RestateProvider,
) -> None:
    """Landlord's mock refuses a second provision of a tenant; as in Landlord's worker, the
    run then reads the tenant's status, and that (what really runs) is its output."""
    await provider.create_workflow(spec_for("TenantProvisioning"))
    tenant = unique_id("twice")
    first = await provider.invoke("tenant-provisioning", ProvisionRequest(tenant_id=tenant))
    made = await wait_terminal(provider, first.execution_id)
    assert made.output["status"] == "success"
    changed = ProvisionRequest(tenant_id=tenant, desired_config={"replicas": 2})
    second = await wait_terminal(
        provider, (await provider.invoke("tenant-provisioning", changed)).execution_id)
    assert second.state is ExecutionState.SUCCEEDED, second.error
    assert (second.output["tenant_id"], second.output["state"]) == (tenant, "running")
    assert [(e.type, e.details.get("step")) for e in second.history
            if e.type.startswith("step")] == [
        ("step_started", "resolve-compute-provider"),
        ("step_completed", "resolve-compute-provider"),
        ("step_started", "provision-compute"), ("step_failed", "provision-compute"),
        ("step_started", "compute-status"), ("step_completed", "compute-status"),
    ]
