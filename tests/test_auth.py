"""Authentication to Restate (API key through a real authenticating proxy) and request
identity (a deployment that serves only its own signed restate-server)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from loguru import logger

from landlord_restate import (
    ExecutionInput,
    ExecutionState,
    RestateConfig,
    RestateProvider,
    RestateServerError,
    WorkflowError,
)
from landlord_restate.testing import DeploymentProcess, ServerProcess
from tests.conftest import ROOT, SHARED_SERVICE, deployment_env, spec_for, unique_id
from tests.fakes import AuthProxy, serve
from tests.waiting import wait_for, wait_terminal

API_KEY = "rk_live_5e3f1a9c0d7b4e2a8f6c"


@pytest.fixture
def all_logs() -> Iterator[list[str]]:
    """Every log line, with its bound fields, emitted during the test."""
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(f"{m} {m.record['extra']}"), level="TRACE")
    yield seen
    logger.remove(sink)


@pytest.fixture
async def proxied(shared_config: RestateConfig) -> AsyncIterator[tuple[AuthProxy, AuthProxy]]:
    """Authenticating proxies in front of the real ingress and admin API."""
    ingress = AuthProxy(shared_config.endpoint, API_KEY)
    admin = AuthProxy(shared_config.admin_endpoint, API_KEY)
    async with serve(ingress.app) as ingress_url, serve(admin.app) as admin_url:
        ingress.url, admin.url = ingress_url, admin_url
        yield ingress, admin


def through(
    proxies: tuple[AuthProxy, AuthProxy], shared: RestateConfig, **auth: Any
) -> RestateConfig:
    """A config reaching Restate only through the proxies."""
    ingress, admin = proxies
    return RestateConfig(
        endpoint=ingress.url,
        admin_endpoint=admin.url,
        deployment_url=shared.deployment_url,
        service_name=SHARED_SERVICE,
        retry_attempts=0,
        **auth,
    ).check()


async def test_api_key_works_on_every_request(
    proxied: tuple[AuthProxy, AuthProxy], shared_config: RestateConfig, all_logs: list[str]
) -> None:
    """With the key: the whole contract works and every request carried it."""
    config = through(proxied, shared_config, auth_type="api_key", api_key=API_KEY)
    async with RestateProvider(config) as provider:
        spec = spec_for("GoPair", unique_id("authed"))
        await provider.validate(spec)
        await provider.create_workflow(spec)
        started = await provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
        status = await wait_terminal(provider, started.execution_id)
        await provider.stop_execution(started.execution_id, "done")
        await provider.delete_workflow(spec.workflow_id)
    assert status.state is ExecutionState.SUCCEEDED
    ingress, admin = proxied
    assert admin.seen[0] == f"Bearer {API_KEY}"  # the health check at open, too
    assert set(ingress.seen) == {f"Bearer {API_KEY}"}
    assert set(admin.seen) == {f"Bearer {API_KEY}"}
    assert not [line for line in all_logs if API_KEY in line]


@pytest.mark.parametrize("auth", [{}, {"auth_type": "api_key", "api_key": "rk_wrong"}])
async def test_without_the_right_key_every_operation_fails_clearly(
    proxied: tuple[AuthProxy, AuthProxy],
    shared_config: RestateConfig,
    all_logs: list[str],
    auth: dict[str, str],
) -> None:
    """No key, or a wrong one: each operation raises a 401 that says to check the key;
    with none (auth_type none, the local default) no request carries the header."""
    config = through(proxied, shared_config, **auth)
    spec = spec_for("GoPair", unique_id("refused"))
    execution_id = "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"
    async with RestateProvider(config) as provider:
        calls: list[Callable[[], Any]] = [
            lambda: provider.create_workflow(spec),
            lambda: provider.start_execution(spec.workflow_id, ExecutionInput()),
            lambda: provider.get_execution_status(execution_id),
            lambda: provider.stop_execution(execution_id, "x"),
            lambda: provider.delete_workflow(spec.workflow_id),
        ]
        for call in calls:
            with pytest.raises(RestateServerError) as caught:
                await call()
            assert caught.value.status == 401
            assert "check auth_type and api_key" in str(caught.value)
            assert json.loads(caught.value.body) == {"message": "unauthorized"}  # unchanged
            assert "api_key" in caught.value.hint
    assert any("not reachable at start" in line for line in all_logs)
    assert not [line for line in all_logs if "rk_wrong" in line]
    ingress, admin = proxied
    expected = {None} if not auth else {"Bearer rk_wrong"}
    assert set(ingress.seen) | set(admin.seen) == expected


# -- request identity ---------------------------------------------------------------------


@pytest.fixture
async def signed_stack(tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, DeploymentProcess]]:
    """A restate-server with a request-identity key, and a deployment trusting only it."""
    key = tmp_path / "identity.pem"
    generate_identity_key(key)
    server = ServerProcess(
        tmp_path / "data",
        config_file=ROOT / "restate.toml",
        env={
            "RESTATE_WORKER__INVOKER__REQUEST_IDENTITY_PRIVATE_KEY_PEM_FILE": str(key),
            # the server logs the public key ("kid") it signs with at info
            "RESTATE_LOG_FILTER": "warn,octocrab=off,restate_service_client=info",
        },
    )
    async with server:
        public_key = await _public_key(server.log_file)
        deployment = DeploymentProcess(
            tmp_path / "hypercorn.log",
            env=deployment_env(
                WORKFLOW_RESTATE_SERVICE_NAME="Signed", LANDLORD_RESTATE_IDENTITY_KEYS=public_key
            ),
        )
        async with deployment:
            yield server, deployment


def generate_identity_key(path: Path) -> None:
    """An ed25519 private key, as Restate's docs generate it."""
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(path)], check=True)


async def _public_key(log: Path, within: float = 10.0) -> str:
    """The public key ("kid") the server signs with, once it has logged it."""
    found = await wait_for(
        lambda: re.findall(r"publickeyv1_\w+", log.read_text(errors="replace")),
        within=within, what=f"a publickeyv1_ key in {log}",
    )
    return str(found[0])


async def test_signed_server_works_unsigned_requests_are_refused(
    signed_stack: tuple[ServerProcess, DeploymentProcess],
) -> None:
    """The deployment serves its signing restate-server and refuses an unsigned caller."""
    server, deployment = signed_stack
    config = RestateConfig(
        endpoint=server.ingress_url, admin_endpoint=server.admin_url,
        deployment_url=deployment.url, service_name="Signed",
    )
    async with RestateProvider(config) as provider:
        spec = spec_for("GoPair", unique_id("signed"))
        await provider.create_workflow(spec)
        started = await provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
        status = await wait_terminal(provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    async with aiohttp.ClientSession() as session, session.get(
        f"{deployment.url}/discover",
        headers={"accept": "application/vnd.restate.endpointmanifest.v3+json"},
    ) as unsigned:
        assert unsigned.status == 401


def test_workflow_error_is_the_root() -> None:
    """Auth failures are WorkflowErrors like every other provider failure."""
    assert issubclass(RestateServerError, WorkflowError)
