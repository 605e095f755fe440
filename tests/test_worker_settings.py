"""Landlord's worker keys (`workflow.restate.worker_*`) and `compute:` section, read as
Landlord reads them (file < WORKFLOW_RESTATE_WORKER_* < flags), and `python -m services`,
the worker that takes Landlord's flags."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from landlord_restate import ExecutionState, ProvisionRequest, RestateConfig, RestateProvider
from landlord_restate.compute.landlord_api import normalize_base_url, provider_from_tenant
from landlord_restate.restate.builtin import TENANT_PROVISIONING, resolve_spec
from landlord_restate.restate.config import WorkerConfig, worker_service_name
from landlord_restate.restate.settings import (
    load_config,
    load_settings,
    load_worker_config,
    read_compute_config,
)
from landlord_restate.testing import ServerProcess
from landlord_restate.testing._ports import free_port
from landlord_restate.workflow.errors import ConfigError
from services import compute
from services.__main__ import DEFAULT_BIND, hypercorn_args
from services.__main__ import main as worker_main
from services.app import worker_services
from services.registry import registered_handlers
from services.settings import FLAGS_ENV, HYPERCORN_CONFIG, DeploymentSettings
from tests.conftest import ROOT, deployment_env, unique_id
from tests.waiting import wait_for, wait_terminal

ENDPOINT = {"WORKFLOW_RESTATE_ENDPOINT": "http://127.0.0.1:8080"}


def landlord_file(tmp_path: Path, restate: dict[str, object], **top: object) -> Path:
    """A Landlord config.yaml with this `workflow.restate` section and top-level sections."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"workflow": {"restate": restate}, **top}))
    return path


def test_worker_keys_from_every_source_in_landlords_order(tmp_path: Path) -> None:
    """Each worker key from the file, the environment and flags, later sources winning;
    Landlord's defaults otherwise (register on startup, a 5m cache)."""
    assert load_worker_config(env={}, working_directory=False) == WorkerConfig()
    assert WorkerConfig().worker_register_on_startup is True
    assert WorkerConfig().worker_compute_cache_ttl == timedelta(minutes=5)
    path = landlord_file(tmp_path, {
        "endpoint": "http://r:8080", "worker_compute_provider": "docker",
        "worker_compute_cache_ttl": "1m", "worker_register_on_startup": False,
        "worker_namespace": "prod", "worker_landlord_api_url": "http://landlord:8080",
    })
    env = {"WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "ecs",
           "WORKFLOW_RESTATE_WORKER_COMPUTE_CACHE_TTL": "2m"}
    argv = ["--workflow.restate.worker_compute_cache_ttl=3m",
            "--workflow.restate.worker_service_prefix", "blue"]
    worker = load_worker_config(path, env=env, argv=argv)
    assert worker == WorkerConfig(
        worker_register_on_startup=False, worker_namespace="prod",
        worker_service_prefix="blue", worker_landlord_api_url="http://landlord:8080",
        worker_compute_provider="ecs", worker_compute_cache_ttl=timedelta(minutes=3),
    )
    assert worker.qualified("TenantProvisioning") == "prod_blue_TenantProvisioning"
    assert WorkerConfig(worker_compute_cache_ttl=timedelta(0)).cache_ttl == timedelta(minutes=5)


@pytest.mark.parametrize(("key", "value", "says"), [
    ("worker_register_on_startup", "maybe", "true or false"),
    ("worker_compute_cache_ttl", "5", "invalid duration"),
    ("worker_admin_endpoint", "restate:9070", "no scheme"),
    ("worker_landlord_api_url", "http://me:pw@landlord", "never sent"),
    ("worker_advertised_url", "ftp://w", "only http and https"),
    ("worker_namespace", "team-a", "must match"),
    ("worker_service_prefix", "1st", "must match"),
])
def test_a_bad_worker_key_is_refused_naming_it(key: str, value: str, says: str) -> None:
    """From the environment and as a flag, a value that cannot work is a ConfigError naming
    the key (and the source); a password in a URL is never shown."""
    for env, argv in (({f"WORKFLOW_RESTATE_{key.upper()}": value}, []),
                      ({}, [f"--workflow.restate.{key}={value}"])):
        with pytest.raises(ConfigError) as caught:
            load_worker_config(env=env, argv=argv, working_directory=False)
        assert caught.value.key == key
        assert says in str(caught.value)
        assert "pw@" not in str(caught.value)


def test_the_provider_accepts_worker_keys_from_every_source_and_ignores_them(
    tmp_path: Path,
) -> None:
    """load_config takes every worker key from the file, the environment and flags; only
    the two that name services reach RestateConfig (worker_advertised_url is
    deployment_url); an unknown key is still refused."""
    path = landlord_file(tmp_path, {"endpoint": "http://r:8080",
                                    "worker_compute_provider": "docker"})
    env = {"WORKFLOW_RESTATE_WORKER_REGISTER_ON_STARTUP": "maybe-not-a-bool",
           "WORKFLOW_RESTATE_WORKER_LANDLORD_API_URL": "http://landlord"}
    argv = ["--workflow.restate.worker_compute_cache_ttl=5m",
            "--workflow.restate.worker_admin_endpoint=http://admin:9070",
            "--workflow.restate.worker_namespace=prod",
            "--workflow.restate.worker_advertised_url=http://w:9080"]
    config = load_config(path, env=env, argv=argv)
    assert (config.worker_namespace, config.deployment_url) == ("prod", "http://w:9080")
    assert load_settings(env={}, argv=argv[:2], working_directory=False) == {}
    with pytest.raises(ConfigError, match="unknown key 'worker_color'") as caught:
        load_config(env=ENDPOINT, argv=["--workflow.restate.worker_color=red"])
    assert caught.value.key == "worker_color"
    with pytest.raises(ConfigError) as bad:
        load_config(env=ENDPOINT | {"WORKFLOW_RESTATE_WORKER_NAMESPACE": "team-a"})
    assert bad.value.key == "worker_namespace"


def test_service_names_agree_on_both_sides() -> None:
    """Landlord's WorkerServiceName (prefix, then namespace, in front), joined by '_': the
    worker hosts its services under it and the provider resolves workflows to it."""
    assert worker_service_name("TenantProvisioning", None, None) == "TenantProvisioning"
    assert worker_service_name("TenantProvisioning", "prod", "blue") == (
        "prod_blue_TenantProvisioning")
    worker = WorkerConfig(worker_namespace="prod", worker_service_prefix="blue")
    config = RestateConfig(endpoint="http://r:8080", worker_namespace="prod",
                           worker_service_prefix="blue")
    names = {str(s.name) for s in worker_services(registered_handlers(), None,
                                                  timedelta(days=1), worker)}
    assert resolve_spec(TENANT_PROVISIONING, config).service in names
    assert {"LandlordCatalog", "LandlordControl"} <= names  # the provider finds them by name
    one = worker_services(registered_handlers(), "Shared", timedelta(days=1), worker)
    assert "prod_blue_Shared" in {str(s.name) for s in one}
    shared = RestateConfig(endpoint="http://r:8080", service_name="Shared",
                           worker_namespace="prod", worker_service_prefix="blue")
    assert resolve_spec(TENANT_PROVISIONING, shared).service == "prod_blue_Shared"


def test_the_compute_section_of_the_config_file(tmp_path: Path) -> None:
    """`compute:` (YAML or TOML) is read for the worker through $LANDLORD_CONFIG; a section
    that is no mapping, or a provider section that cannot work, stops the worker naming
    the key; so does a worker_compute_provider no installed provider has."""
    yaml_file = landlord_file(tmp_path, {"endpoint": "http://r:8080"},
                              compute={"mock": None, "default_provider": "mock"})
    assert read_compute_config(env={"LANDLORD_CONFIG": str(yaml_file)},
                               working_directory=False) == {
        "mock": None, "default_provider": "mock"}
    toml_file = tmp_path / "config.toml"
    toml_file.write_text('[compute.docker]\nhost = "unix:///tmp/d.sock"\nstop_timeout = 1\n')
    settings = DeploymentSettings.load({"LANDLORD_CONFIG": str(toml_file)})
    assert settings.compute == {"docker": {"host": "unix:///tmp/d.sock", "stop_timeout": 1}}
    assert compute.WorkerCompute.load(settings.worker, settings.compute).default == "docker"

    bad = landlord_file(tmp_path, {}, compute=["docker"])
    with pytest.raises(ConfigError) as caught:
        DeploymentSettings.load({"LANDLORD_CONFIG": str(bad)})
    assert caught.value.key == "compute"
    for section, key in (({"docker": {"stop_timeout": -1}}, "compute.docker.stop_timeout"),
                         ({"docker": {"ports": [{"container_port": 0}]}},
                          "compute.docker.ports[0].container_port"),
                         ({"nosuch": {}}, "compute.nosuch"),
                         ({"mock": {}, "default_provider": "docker"},
                          "compute.default_provider")):
        with pytest.raises(ConfigError) as caught:
            compute.WorkerCompute.load(WorkerConfig(), section)
        assert caught.value.key == key, section
    with pytest.raises(ConfigError) as unknown:
        compute.WorkerCompute.load(WorkerConfig(worker_compute_provider="nosuch"), {})
    assert unknown.value.key == "worker_compute_provider"
    assert "mock" in str(unknown.value)


def test_landlords_api_address_and_answer() -> None:
    """`/v1` is appended as Landlord's NormalizeBaseURL does; the provider is read from a
    tenant as Landlord's providerFromMaps reads it."""
    assert normalize_base_url("http://landlord:8080") == "http://landlord:8080/v1"
    assert normalize_base_url("http://landlord:8080/") == "http://landlord:8080/v1"
    assert normalize_base_url("http://landlord:8080/v1/") == "http://landlord:8080/v1"
    assert normalize_base_url("http://landlord:8080/api") == "http://landlord:8080/v1"
    assert normalize_base_url("http://l/landlord") == "http://l/landlord/v1"
    assert normalize_base_url("http://l/v2") == "http://l/v2"
    assert provider_from_tenant({"desired_config": {"compute_provider": 1,
                                                    "compute_provider_type": "ecs"}}) == "ecs"
    assert provider_from_tenant({"labels": {"compute_provider": "docker"},
                                 "annotations": {"compute_provider": "ecs"}}) == "docker"
    assert provider_from_tenant({"desired_config": None, "labels": None}) == ""


def test_flags_reach_the_app_through_the_environment(tmp_path: Path) -> None:
    """What `python -m services` hands the app: flags over the environment; a flag that
    cannot work stops it (exit 2) naming the flag; without --bind it binds where the
    provider's `local` mechanism expects it."""
    flags = json.dumps(["--workflow.restate.worker_compute_provider=gamma",
                        "--workflow.restate.service_name=FromFlag"])
    settings = DeploymentSettings.load({
        FLAGS_ENV: flags, "WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER": "beta",
        "WORKFLOW_RESTATE_SERVICE_NAME": "FromEnv"})
    assert (settings.worker.worker_compute_provider, settings.service_name) == (
        "gamma", "FromFlag")
    with pytest.raises(ConfigError) as caught:
        DeploymentSettings.load({FLAGS_ENV: '["--workers=2"]'})
    assert caught.value.key == FLAGS_ENV
    assert worker_main(["--workflow.restate.worker_compute_cache_ttl=soon"]) == 2
    assert worker_main(["--workflow.restate.no_such_key=1"]) == 2
    assert worker_main(["--workflow.restate.worker_compute_provider=nosuch"]) == 2
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert DeploymentSettings.load({"LANDLORD_CONFIG": str(empty)}).compute == {}
    restate = ["--config", HYPERCORN_CONFIG]  # Restate's settings, unless the caller has some
    assert hypercorn_args(["--workers", "0"]) == [
        "services.app:app", "--bind", DEFAULT_BIND, *restate, "--workers", "0"]
    assert hypercorn_args(["-b", "0.0.0.0:9090"]) == [
        "services.app:app", *restate, "-b", "0.0.0.0:9090"]
    assert hypercorn_args(["--bind=unix:/tmp/s", "--config", "mine.toml"]) == [
        "services.app:app", "--bind=unix:/tmp/s", "--config", "mine.toml"]


def spawn(argv: list[str], env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    """`argv` as a process of its own, its output to `log_file`."""
    with log_file.open("w") as log:
        return subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


async def test_the_worker_with_landlords_flags_only(tmp_path: Path) -> None:
    """`python -m services` with Landlord's flags and nothing else: it registers itself,
    hosts TenantProvisioning under the namespace's name, and a provider with the same
    worker_namespace invokes `tenant-provisioning` on it with no create_workflow."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with ServerProcess(tmp_path / "data", config_file=ROOT / "restate.toml") as server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_RESTATE_")}
        env |= deployment_env(WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER="")
        argv = [sys.executable, "-m", "services",
                f"--workflow.restate.worker_advertised_url={url}",
                f"--workflow.restate.worker_admin_endpoint={server.admin_url}",
                f"--workflow.restate.endpoint={server.ingress_url}",
                "--workflow.restate.worker_namespace=prod",
                "--workflow.restate.worker_compute_provider", "mock",
                "--bind", f"127.0.0.1:{port}", "--workers", "0"]
        process = spawn(argv, env, tmp_path / "worker.log")
        try:
            config = RestateConfig(endpoint=server.ingress_url, admin_endpoint=server.admin_url,
                                   deployment_url=url, worker_namespace="prod")
            async with RestateProvider(config) as provider:
                async def invoked() -> str | None:
                    try:
                        return (await provider.invoke("tenant-provisioning", ProvisionRequest(
                            tenant_id=unique_id("acme")))).execution_id
                    except Exception:
                        await asyncio.sleep(0.1)
                        return None

                started = await wait_for(invoked, within=60, what="the worker registered")
                assert started is not None
                status = await wait_terminal(provider, started, within=60)
                assert status.state is ExecutionState.SUCCEEDED, status.error
                assert status.metadata["service_name"] == "prod_TenantProvisioning"
                assert status.output["provider_type"] == "mock"
        finally:
            # SIGINT: the Restate SDK takes SIGTERM over from hypercorn at the first request
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
    assert "self-registration: registered as dp_" in (tmp_path / "worker.log").read_text()
