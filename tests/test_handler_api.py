"""The handler authoring API: what a handler sees, and its replay-quiet logger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loguru import logger
from restate.server_context import restate_context_is_replaying

from landlord_restate import ExecutionInput, ExecutionState, RestateProvider
from services.app import build_services, import_handler_modules
from services.context import ReplayQuietLogger
from services.registry import registered_handlers
from tests.conftest import spec_for, unique_id
from tests.waiting import wait_terminal


async def test_context_names_what_is_running(shared_provider: RestateProvider) -> None:
    """ctx.workflow_id, ctx.execution_id and ctx.execution_name inside the handler."""
    spec = spec_for("WhoAmI", unique_id("who"))
    await shared_provider.create_workflow(spec)
    result = await shared_provider.start_execution(
        spec.workflow_id, ExecutionInput(execution_name="me", input={})
    )
    status = await wait_terminal(shared_provider, result.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {
        "workflow_id": spec.workflow_id,
        "execution_id": result.execution_id,
        "execution_name": "me",
    }


def test_logger_is_quiet_while_replaying() -> None:
    """Lines logged during a replay are dropped; live ones pass with their bound ids."""
    seen: list[Any] = []
    sink = logger.add(lambda m: seen.append(m.record), level="DEBUG")
    try:
        quiet = ReplayQuietLogger(logger.bind(workflow_id="w", execution_id="e"))
        token = restate_context_is_replaying.set(True)
        quiet.info("during replay")
        restate_context_is_replaying.reset(token)
        quiet.info("live")
    finally:
        logger.remove(sink)
    assert [r["message"] for r in seen] == ["live"]
    assert seen[0]["extra"] == {"workflow_id": "w", "execution_id": "e"}


def test_app_hosts_environment_modules_in_both_modes() -> None:
    """Modules named in LANDLORD_RESTATE_HANDLERS are hosted, per handler or in one service."""
    import_handler_modules("tests.handlers, ")
    handlers = registered_handlers()
    per_handler = {s.name: s for s in build_services(handlers, None)}
    assert {"LandlordCatalog", "TenantProvisioning", "WhoAmI"} <= set(per_handler)
    assert per_handler["WhoAmI"].service_tag.metadata == {"landlord.handlers": "WhoAmI"}
    (catalog, record, control, hub) = build_services(handlers, "Hub")
    assert (catalog.name, record.name, control.name, hub.name) == (
        "LandlordCatalog", "LandlordCatalogRecord", "LandlordControl", "Hub")
    assert hub.service_tag.metadata is not None
    hosted = set(hub.service_tag.metadata["landlord.handlers"].split(","))
    assert {"TenantProvisioning", "WhoAmI", "SlowSteps"} <= hosted
    assert {"run", "compute_callback"} == set(hub.handlers)


def test_unknown_handler_module_fails_at_start() -> None:
    """A wrong module path in LANDLORD_RESTATE_HANDLERS stops the app from starting."""
    with pytest.raises(ModuleNotFoundError, match="no_such_handlers"):
        import_handler_modules("no_such_handlers")


HANDLER_USING_STEPS = '''
from services import HandlerContext

async def fetch(n: int) -> str:
    return str(n)

def compute(a: int, b: int) -> int:
    return a + b

async def handler(ctx: HandlerContext) -> None:
    ok: str = await ctx.step("fetch", fetch, 3)
    total: int = await ctx.step("compute", compute, 1, 2)
    bad: int = await ctx.step("fetch", fetch, 3)
    wrong: int = await ctx.step("compute", compute, "1", 2)
    print(ok, total, bad, wrong)
'''


def test_mypy_checks_what_ctx_step_returns_and_takes(tmp_path: Path) -> None:
    """ctx.step is typed: mypy --strict accepts the right uses and names the wrong ones
    (an async step's result type, a sync step's arguments)."""
    from mypy import api

    handler_file = tmp_path / "typed_handler.py"
    handler_file.write_text(HANDLER_USING_STEPS)
    out, _, _ = api.run(["--strict", "--no-incremental", "--follow-imports=silent",
                         str(handler_file)])
    lines = {int(line.split(":")[1]) for line in out.splitlines()
             if line.startswith(str(handler_file))}
    assert lines == {13, 14}, out


def test_the_deployment_reads_no_config_file_from_its_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ./config.yaml where the deployment happens to start is not its config; the one
    $LANDLORD_CONFIG names is."""
    from services.settings import DeploymentSettings

    (tmp_path / "config.yaml").write_text("workflow:\n  restate:\n    service_name: Stray\n")
    monkeypatch.chdir(tmp_path)
    assert DeploymentSettings.load({}).service_name is None
    named = {"LANDLORD_CONFIG": str(tmp_path / "config.yaml")}
    assert DeploymentSettings.load(named).service_name == "Stray"
