"""Executions survive kill -9 of restate-server and of the deployment, mid-step.

Each test runs its own server and deployment, so a crash here disturbs no other test.
Steps record each real run in a file: a step journaled before the crash never runs again.
Each runs under both execution mechanisms: the deployment is hypercorn, or the function host
of a local AWS Lambda (its kill is a Lambda instance dying mid-invocation); the server
crashes run on Lambda in `make soak` only.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from landlord_restate import ExecutionInput, ExecutionState, ExecutionStatus
from tests.conftest import LAMBDA_IN_SOAK, Stack, spec_for, unique_id
from tests.waiting import read_marks, wait_marks, wait_status, wait_terminal

pytestmark = pytest.mark.timeout(180)


async def start_slow(
    stack: Stack, marks: Path, step_seconds: float = 1.0, **spec_fields: object
) -> str:
    """Create a SlowSteps workflow and start one execution of four steps (1 s each by
    default: a crash lands inside the step it waits for)."""
    spec = spec_for("SlowSteps", unique_id("crash"), **spec_fields)
    await stack.provider.create_workflow(spec)
    result = await stack.provider.start_execution(
        spec.workflow_id,
        ExecutionInput(input={"marks": str(marks), "step_seconds": step_seconds, "steps": 4}),
    )
    return result.execution_id


def attempt_failed(status: ExecutionStatus) -> bool:
    """Restate recorded a failed attempt of the run and is retrying it."""
    return "last_failure" in status.metadata or int(status.metadata["retry_count"]) > 0


def assert_resumed_after(marks: Path, crashed_step: int) -> None:
    """Steps done before the crash ran once; the one in flight may rerun; later ones once."""
    starts = Counter(line.split()[1] for line in read_marks(marks) if line.startswith("start"))
    for step in range(1, crashed_step):
        assert starts[f"slow-{step}"] == 1, starts
    assert starts[f"slow-{crashed_step}"] >= 1, starts
    for step in range(crashed_step + 1, 5):
        assert starts[f"slow-{step}"] == 1, starts


@LAMBDA_IN_SOAK
async def test_survives_kill_9_of_the_server(
    mechanism_private_stack: Stack, tmp_path: Path
) -> None:
    """Server killed during step 2, restarted on the same data dir: completes, no rerun."""
    stack = mechanism_private_stack
    marks = tmp_path / "marks"
    execution_id = await start_slow(stack, marks)
    await wait_marks(marks, "start slow-2")
    stack.server.kill()  # returns once the process is gone
    assert stack.server.pid is None
    await stack.server.start()
    status = await wait_terminal(stack.provider, execution_id, within=90)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {"steps": 4}
    assert_resumed_after(marks, crashed_step=2)
    steps = [e.details["step"] for e in status.history if e.type == "step_completed"]
    assert steps == ["slow-1", "slow-2", "slow-3", "slow-4"]


async def test_survives_kill_9_of_the_deployment(
    mechanism_private_stack: Stack, tmp_path: Path
) -> None:
    """Deployment (or function host) killed during step 2, restarted on the same address:
    completes, no rerun."""
    stack = mechanism_private_stack
    marks = tmp_path / "marks"
    execution_id = await start_slow(stack, marks)
    await wait_marks(marks, "start slow-2")
    stack.deployment.kill()
    # Restate has seen the attempt die (it retries), so the restart is a real recovery
    await wait_status(stack.provider, execution_id, attempt_failed)
    await stack.deployment.start()
    status = await wait_terminal(stack.provider, execution_id, within=120)
    assert status.state is ExecutionState.SUCCEEDED
    assert_resumed_after(marks, crashed_step=2)


@LAMBDA_IN_SOAK
async def test_timeout_survives_a_server_restart(
    mechanism_private_stack: Stack, tmp_path: Path
) -> None:
    """The timeout is a durable timer in Restate: a restart does not lose it."""
    stack = mechanism_private_stack
    marks = tmp_path / "marks"
    # four 1.5 s steps outlast the 4 s timeout
    execution_id = await start_slow(stack, marks, 1.5, timeout=timedelta(seconds=4))
    await wait_marks(marks, "start slow-1")
    stack.server.kill()
    await stack.server.start()
    status = await wait_terminal(stack.provider, execution_id, within=60)
    assert status.state is ExecutionState.TIMEOUT
    assert "end slow-4" not in read_marks(marks)
