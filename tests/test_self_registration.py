"""Self-registration, Landlord's worker keys (`worker_register_on_startup`, on by default):
the deployment registers itself with the provider's own auth and registration settings,
and once it has, Landlord invokes `tenant-provisioning` with no create_workflow."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from loguru import logger

from landlord_restate import ExecutionState, ProvisionRequest, RestateConfig, RestateProvider
from landlord_restate.restate.settings import load_worker_config
from landlord_restate.testing import DeploymentProcess, ServerProcess
from landlord_restate.workflow.errors import ConfigError, WorkflowNotFoundError
from services.registration import SelfRegistration, register_when_serving
from tests.conftest import ROOT, deployment_env, unique_id
from tests.fakes import AuthProxy, FakeRestateAdmin, serve
from tests.waiting import wait_for, wait_terminal

API_KEY = "rk_worker_4b1f0c9e7a2d"


class KeyedAdmin(FakeRestateAdmin):
    """The fake admin API and ingress, answering only `Authorization: Bearer <key>` (as
    Restate Cloud's does) and 401 to anything else."""

    def __init__(self, key: str) -> None:
        super().__init__("TenantProvisioning", ["TenantProvisioning"])
        self.expected = f"Bearer {key}"
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self._keyed)

    async def _keyed(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.expected:
            self.requests.append((request.method, request.path, None, dict(request.headers)))
            return web.json_response({"message": "unauthorized"}, status=401)
        return await self._handle(request)


@pytest.fixture
def logs() -> Iterator[list[str]]:
    """Every log line emitted during the test, with its fields."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(f"{m} {m.record['extra']}"), level="TRACE")
    yield seen
    logger.remove(sink)


def registration(env: dict[str, str]) -> SelfRegistration | None:
    """What the deployment would register with, from its environment alone."""
    from landlord_restate.restate.settings import load_settings

    return SelfRegistration.load(load_worker_config(env=env, working_directory=False),
                                 load_settings(env=env, working_directory=False))


async def test_a_key_the_admin_api_requires_is_sent(logs: list[str]) -> None:
    """auth_type/api_key reach the admin API (and the ingress, for the built-in workflow's
    spec); use_http_11 and deployment_headers reach the registration; the key is never
    logged. With a wrong key the log says what is set, not the key."""
    admin = KeyedAdmin(API_KEY)
    async with serve(admin.app) as url:
        env = {
            "WORKFLOW_RESTATE_ENDPOINT": url, "WORKFLOW_RESTATE_WORKER_ADMIN_ENDPOINT": url,
            "WORKFLOW_RESTATE_WORKER_ADVERTISED_URL": "http://worker.internal:9080",
            "WORKFLOW_RESTATE_AUTH_TYPE": "api_key", "WORKFLOW_RESTATE_API_KEY": API_KEY,
            "WORKFLOW_RESTATE_USE_HTTP_11": "true",
            "WORKFLOW_RESTATE_DEPLOYMENT_HEADERS": "x-alb-route=landlord",
        }
        found = registration(env)
        assert found is not None
        assert await register_when_serving(found) == "dp_fake"
        assert {headers.get("Authorization") for _, _, _, headers in admin.requests} == {
            f"Bearer {API_KEY}"}
        registered = admin.registrations()[-1]
        assert registered["uri"] == "http://worker.internal:9080"
        assert registered["use_http_11"] is True
        assert registered["additional_headers"] == {"x-alb-route": "landlord"}
        assert any(path == "/LandlordCatalog/tenant-provisioning/put"
                   for _, path, _, _ in admin.requests)

        admin.requests.clear()
        wrong = registration(env | {"WORKFLOW_RESTATE_API_KEY": "rk_wrong_key_000"})
        assert wrong is not None
        assert await register_when_serving(wrong) is None
        tried = [path for _, path, _, _ in admin.requests if path != "/health"]
        assert len(tried) == 1  # refused at once: not retried
    refused = [line for line in logs if "refused by the admin API (401)" in line]
    assert refused
    assert "auth_type is api_key and an api_key is set" in refused[0]
    assert not [line for line in logs if API_KEY in line or "rk_wrong_key_000" in line]


def test_worker_keys_decide_whether_and_where(logs: list[str]) -> None:
    """On by default; off with worker_register_on_startup=false; without an address a log
    line says what to set and nothing fails; credentials in the admin URL are refused with
    advice that works here (api_key is sent); iam (Lambda's) sends nothing."""
    base = {"WORKFLOW_RESTATE_ENDPOINT": "http://restate:8080"}
    assert registration(base) is None
    assert any("self-registration skipped: no address" in line for line in logs)
    on = registration(base | {"WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080"})
    assert on is not None
    assert (on.address, on.config.admin_endpoint) == ("http://w:9080", "http://restate:9070")
    assert registration(base | {"WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080",
                                "WORKFLOW_RESTATE_WORKER_REGISTER_ON_STARTUP": "false"}) is None
    with pytest.raises(ConfigError) as caught:
        registration(base | {"WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080",
                             "WORKFLOW_RESTATE_WORKER_ADMIN_ENDPOINT":
                                 "http://admin:s3cret@restate:9070"})
    assert caught.value.key == "worker_admin_endpoint"
    assert "s3cret" not in str(caught.value)
    assert "api_key" in str(caught.value)
    keyed = registration(base | {"WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080",
                                 "WORKFLOW_RESTATE_AUTH_TYPE": "api_key",
                                 "WORKFLOW_RESTATE_API_KEY": "s3cret"})
    assert keyed is not None
    assert keyed.config.auth_headers() == {"Authorization": "Bearer s3cret"}
    with pytest.raises(ConfigError) as missing:
        registration(base | {"WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080",
                             "WORKFLOW_RESTATE_AUTH_TYPE": "api_key"})
    assert missing.value.key == "api_key"
    lambda_auth = registration(base | {
        "WORKFLOW_RESTATE_DEPLOYMENT_URL": "http://w:9080", "WORKFLOW_RESTATE_AUTH_TYPE": "iam",
        "WORKFLOW_RESTATE_EXECUTION_MECHANISM": "lambda",
        "WORKFLOW_RESTATE_LAMBDA_ARN": "arn:aws:lambda:eu-west-1:123456789012:function:f:1"})
    assert lambda_auth is not None
    assert lambda_auth.config.auth_headers() == {}
    assert lambda_auth.config.registration() == {"uri": "http://w:9080"}


async def test_a_worker_registers_itself_through_an_authenticating_proxy_and_is_invoked(
    tmp_path: Path,
) -> None:
    """A real restate-server behind a proxy that wants the key; the worker, with Landlord's
    keys and the key, registers itself; then `invoke("tenant-provisioning")` runs on it with
    no create_workflow: what Landlord does with its Go worker."""
    async with ServerProcess(tmp_path / "data", config_file=ROOT / "restate.toml") as server:
        admin = AuthProxy(server.admin_url, API_KEY)
        ingress = AuthProxy(server.ingress_url, API_KEY)
        async with serve(admin.app) as admin_url, serve(ingress.app) as ingress_url:
            admin.url, ingress.url = admin_url, ingress_url
            worker = DeploymentProcess(tmp_path / "worker.log", env=deployment_env(
                WORKFLOW_RESTATE_ENDPOINT=ingress_url,
                WORKFLOW_RESTATE_WORKER_ADMIN_ENDPOINT=admin_url,
                WORKFLOW_RESTATE_AUTH_TYPE="api_key", WORKFLOW_RESTATE_API_KEY=API_KEY,
            ))
            worker.env["WORKFLOW_RESTATE_WORKER_ADVERTISED_URL"] = worker.url
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   deployment_url=worker.url)
            async with RestateProvider(config) as provider:
                with pytest.raises(WorkflowNotFoundError):
                    await provider.invoke("tenant-provisioning",
                                          ProvisionRequest(tenant_id="early"))
                async with worker:
                    async def registered() -> list[Any]:
                        return [d for d in await provider.list_deployments()
                                if d.address.rstrip("/") == worker.url]

                    await wait_for(registered, within=30, what="the worker registered itself")
                    started = await wait_for(
                        lambda: _invoke(provider, unique_id("acme")), within=30,
                        what="tenant-provisioning stored")
                    assert started is not None
                    status = await wait_terminal(provider, started, within=60)
                    assert status.state is ExecutionState.SUCCEEDED, status.error
                    assert status.output["provider_type"] == "mock"
            assert admin.seen
            assert set(admin.seen) == {f"Bearer {API_KEY}"}
            assert set(ingress.seen) == {f"Bearer {API_KEY}"}
    assert API_KEY not in (tmp_path / "worker.log").read_text()


async def _invoke(provider: RestateProvider, tenant: str) -> str | None:
    """An invoke's execution id, or None while the workflow does not exist yet."""
    try:
        return (await provider.invoke("tenant-provisioning",
                                      ProvisionRequest(tenant_id=tenant))).execution_id
    except WorkflowNotFoundError:
        await asyncio.sleep(0.05)
        return None
