"""The handler authoring API: what a handler sees, and its replay-quiet logger."""

from __future__ import annotations

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
    (catalog, control, hub) = build_services(handlers, "Hub")
    assert (catalog.name, control.name, hub.name) == ("LandlordCatalog", "LandlordControl", "Hub")
    assert hub.service_tag.metadata is not None
    hosted = set(hub.service_tag.metadata["landlord.handlers"].split(","))
    assert {"TenantProvisioning", "WhoAmI", "SlowSteps"} <= hosted
    assert {"run", "expire", "compute_callback"} == set(hub.handlers)


def test_unknown_handler_module_fails_at_start() -> None:
    """A wrong module path in LANDLORD_RESTATE_HANDLERS stops the app from starting."""
    with pytest.raises(ModuleNotFoundError, match="no_such_handlers"):
        import_handler_modules("no_such_handlers")
