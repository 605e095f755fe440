"""examples/compute_provider.py, the compute provider of one's own the docs show: its
contract directly, and TenantProvisioning running on it in a worker."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
import yaml

from landlord_restate import ExecutionState, ProvisionRequest, RestateProvider
from landlord_restate.compute import (
    ComputeProvider,
    InvalidComputeConfigError,
    TenantAlreadyProvisionedError,
    TenantComputeSpec,
    TenantNotFoundError,
    UpdateStatus,
    create_provider,
    registry,
)
from landlord_restate.testing import LocalRestate
from tests.conftest import ROOT, deployment_env, unique_id
from tests.waiting import wait_terminal

EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True)
def _own_factories(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example registers `files` when imported: in this test's copy of the table of
    registered factories, so no other test sees it."""
    monkeypatch.setattr(registry, "_FACTORIES", dict(registry._FACTORIES))


def load_example() -> Any:
    """examples/compute_provider.py, imported by path (examples are not a package)."""
    spec = importlib.util.spec_from_file_location("compute_provider",
                                                  EXAMPLES / "compute_provider.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tenant_spec(tenant: str, **config: Any) -> TenantComputeSpec:
    """A spec as TenantProvisioning builds it for the files provider."""
    return TenantComputeSpec(tenant_id=tenant, provider_type="files",
                             provider_config=config or None)


async def test_the_example_keeps_the_contract(tmp_path: Path) -> None:
    """Provision twice answers the same; another spec is refused; update lists changes,
    then no_changes; a new provider on the same folder knows the tenant; destroy twice
    succeeds; bad config names each field."""
    example = load_example()
    provider = example.create({"root": str(tmp_path / "tenants")})
    assert isinstance(provider, ComputeProvider)
    assert create_provider("files", {"root": str(tmp_path / "tenants")}).name == "files"
    made = await provider.provision(tenant_spec("acme", size=2))
    assert await provider.provision(tenant_spec("acme", size=2)) == made
    with pytest.raises(TenantAlreadyProvisionedError):
        await provider.provision(tenant_spec("acme", size=3))
    changed = await provider.update("acme", tenant_spec("acme", size=3, owner="ops"))
    assert (changed.status, changed.changes) == (UpdateStatus.SUCCESS,
                                                 ["owner changed", "size changed"])
    again = await provider.update("acme", tenant_spec("acme", size=3, owner="ops"))
    assert again.status is UpdateStatus.NO_CHANGES
    restarted = example.create({"root": str(tmp_path / "tenants")})
    assert (await restarted.get_status("acme")).metadata == {"size": "3"}
    for _ in range(2):
        await restarted.destroy("acme")
    with pytest.raises(TenantNotFoundError):
        await provider.get_status("acme")
    with pytest.raises(InvalidComputeConfigError) as caught:
        await provider.provision(tenant_spec("acme", size=11, owner=7))
    assert caught.value.field == "provider_config.size"
    assert [p.split(":")[0] for p in caught.value.problems] == [
        "provider_config.size", "provider_config.owner"]
    with pytest.raises(InvalidComputeConfigError):
        provider.validate_config('{"size": 0}')


async def test_the_example_in_a_worker(tmp_path: Path) -> None:
    """Named in LANDLORD_RESTATE_HANDLERS, the module adds the `files` provider to the
    worker; its `compute.files` section says where; TenantProvisioning provisions and
    destroys a tenant file through it, and a bad config fails naming the field."""
    root = tmp_path / "tenants"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"compute": {"files": {"root": str(root)}}}))
    env = deployment_env(
        PYTHONPATH=f"{EXAMPLES}:{ROOT}", LANDLORD_RESTATE_HANDLERS="compute_provider",
        LANDLORD_CONFIG=str(config), WORKFLOW_RESTATE_WORKER_COMPUTE_PROVIDER="",
    )
    async with LocalRestate(base_dir=tmp_path / "stack", config_file=ROOT / "restate.toml",
                            env=env, always_replay=True) as local, \
            RestateProvider(local.config()) as provider:
        await provider.register_deployment()
        tenant = unique_id("acme")

        async def run(operation: str, **config: Any) -> Any:
            started = await provider.invoke("tenant-provisioning", ProvisionRequest(
                tenant_id=tenant, operation=operation, desired_config=config))
            return await wait_terminal(provider, started.execution_id, within=60)

        made = await run("provision", size=2)
        assert made.state is ExecutionState.SUCCEEDED, made.error
        assert made.output["resource_ids"] == {"file": str(root / f"{tenant}.json")}
        assert (root / f"{tenant}.json").exists()
        bad = await run("update", size="large")
        assert bad.state is ExecutionState.FAILED
        assert bad.error is not None
        assert (bad.error.code, bad.error.cause) == ("invalid_compute_config",
                                                     "desired_config.size")
        gone = await run("delete")
        assert gone.output == {"status": "archived", "tenant_id": tenant}
        assert not (root / f"{tenant}.json").exists()
