"""Day-two faults: the handler deployment down for a while with the control plane in use
(issue 18), and new handler code rolled out under executions in flight (issue 21).

The fast variants run in `make test`; the full-size ones are marked `soak` (`make soak`).
Each adds a row to the fault table printed at the end of the run. Every test has a stack
of its own (restate-server + deployment, one service for every test handler), since the
tests kill its deployment or register and remove deployments of its service.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from landlord_restate import RestateProvider
from landlord_restate.testing import LocalRestate
from tests.conftest import ROOT, TEST_HANDLERS, deployment_env
from tests.faults import FaultReport, assert_right_states, outage_scenario, upgrade_scenario

pytestmark = pytest.mark.timeout(600)

#: the one service hosting every test handler on this module's stacks
SERVICE = "DayTwo"
#: "answered at once" while the deployment is down: far below the 30 s retry window a call
#: waiting on the deployment would take, on two cores busy with other servers
AT_ONCE = 5.0


@attrs.frozen
class DayTwoStack:
    """A private server and deployment, and a provider with a 1 s stop_grace."""

    local: LocalRestate
    provider: RestateProvider


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[DayTwoStack]:
    """restate-server + hypercorn of this test alone, stopped at the end."""
    async with LocalRestate(
        handlers=[TEST_HANDLERS], service_name=SERVICE, base_dir=tmp_path / "stack",
        config_file=ROOT / "restate.toml", env=deployment_env(),
    ) as local, RestateProvider(local.config(stop_grace=timedelta(seconds=1))) as provider:
        yield DayTwoStack(local, provider)


async def deployment_outage(
    stack: DayTwoStack, n: int, started_while_down: int, tmp_path: Path
) -> FaultReport:
    """kill -9 the deployment mid-mix; start, stop and call back while it is down; restart.

    Every provider call made while it was down answered at once."""
    report = await outage_scenario(
        "deployment down: start, stop, callback", stack.provider, n, started_while_down,
        tmp_path / "marks", stack.local.kill_deployment, stack.local.restart_deployment,
    )
    assert report.slowest_call < AT_ONCE, report
    return report


async def upgrade(stack: DayTwoStack, n: int, tmp_path: Path) -> FaultReport:
    """Code v2 at a new address under n executions in flight on v1; v1 drained and removed."""
    return await upgrade_scenario(
        "upgrade: new code at a new address", stack.local, stack.provider, SERVICE, n,
        tmp_path / "marks", tmp_path,
    )


async def test_deployment_outage_with_control_calls(stack: DayTwoStack, tmp_path: Path) -> None:
    """9 in flight, 3 started, stops and callbacks while down: each ends right, once."""
    assert_right_states(await deployment_outage(stack, 9, 3, tmp_path))


async def test_upgrade_under_executions_in_flight(stack: DayTwoStack, tmp_path: Path) -> None:
    """6 in flight on v1 while v2 is registered: each finishes on its own code, once."""
    assert_right_states(await upgrade(stack, 6, tmp_path))


@pytest.mark.soak
async def test_soak_deployment_outage_50(stack: DayTwoStack, tmp_path: Path) -> None:
    """50 in flight, 10 started, stops and callbacks while down: each ends right, once."""
    assert_right_states(await deployment_outage(stack, 50, 10, tmp_path))


@pytest.mark.soak
async def test_soak_upgrade_50(stack: DayTwoStack, tmp_path: Path) -> None:
    """50 in flight on v1 while v2 is registered: each finishes on its own code, once."""
    assert_right_states(await upgrade(stack, 50, tmp_path))
