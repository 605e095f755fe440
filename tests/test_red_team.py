"""Hostile and careless use, round three: the stop path, redrive chains, provider facts.

One test per finding of the red-team pass over the operator verbs, redrive and the CLI,
against the real restate-server through the public API; each failed before its fix, the
races (a stop before the first step, a redrive racing a purge) often enough to fail every
run. List filters, page tokens and the CLI's deployment id rule are in test_search.py and
test_cli.py; self-registration's credentials in tests/compute.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ExecutionInput,
    ExecutionNotFoundError,
    ExecutionState,
    InvalidInputError,
    RestateConfig,
    RestateProvider,
)
from landlord_restate.restate.redrive import redrive_name
from landlord_restate.restate.wire import CONTROL_SERVICE, STOP_STATE
from tests.conftest import Stack, cli, spec_for, unique_id
from tests.waiting import read_marks, wait_status, wait_terminal

pytestmark = pytest.mark.timeout(120)


async def created(provider: RestateProvider, handler: str) -> str:
    """A new workflow running `handler`; answer its id."""
    spec = spec_for(handler, unique_id(handler.lower()))
    await provider.create_workflow(spec)
    return spec.workflow_id


async def started(provider: RestateProvider, workflow_id: str, name: str = "",
                  **request: Any) -> str:
    """Start one execution of `workflow_id`; answer its id."""
    result = await provider.start_execution(
        workflow_id, ExecutionInput(execution_name=name, input=request))
    return result.execution_id


# -- 1: a stop before the first step ends stopped, with its reason ------------------------


async def test_a_stop_while_the_deployment_is_down_ends_stopped_with_its_reason(
    private_stack: Stack,
) -> None:
    """Deployment down (a rollout): start, stop with a reason, bring it back within the
    grace: `stopped`, the reason, stopped_by cancelled; never workflow_not_found."""
    provider = private_stack.provider
    workflow_id = await created(provider, "SlowSteps")
    await asyncio.to_thread(private_stack.deployment.kill)
    execution_id = await started(provider, workflow_id, step_seconds=0.1)
    await provider.stop_execution(execution_id, "tenant deleted by operator")
    await private_stack.deployment.start()
    status = await wait_terminal(provider, execution_id)
    assert status.state is ExecutionState.STOPPED, status.error
    assert status.error is not None
    assert status.error.message == "tenant deleted by operator"
    assert status.metadata["stopped_by"] == "cancelled"
    assert "workflow_not_found" not in str(status.history)


async def test_stops_right_after_starts_all_end_stopped(shared_provider: RestateProvider) -> None:
    """Thirty starts each stopped at once, the deployment up: every one ends `stopped` with
    its own reason (before the fix about one in twelve ended workflow_not_found)."""
    workflow_id = await created(shared_provider, "SlowSteps")

    async def start_and_stop(i: int) -> str:
        execution_id = await started(shared_provider, workflow_id, step_seconds=0.2)
        await shared_provider.stop_execution(execution_id, f"reason {i}")
        return execution_id

    ids = await asyncio.gather(*(start_and_stop(i) for i in range(30)))
    for i, execution_id in enumerate(ids):
        status = await wait_terminal(shared_provider, execution_id)
        assert status.state is ExecutionState.STOPPED, (i, status.error)
        assert status.error is not None
        assert status.error.message == f"reason {i}"


# -- 2: the CLI's stop keeps its promise of a kill after stop_grace ------------------------


async def test_cli_stop_kills_a_handler_that_ignores_its_cancellation(
    shared_provider: RestateProvider, cli_env: dict[str, str]
) -> None:
    """`landlord-restate stop` of a handler whose cancellation never completes: the CLI
    waits out stop_grace (it says so) and the execution ends killed, with the reason."""
    workflow_id = await created(shared_provider, "IgnoresCancel")
    execution_id = await started(shared_provider, workflow_id, sleep_s=60)
    await wait_status(shared_provider, execution_id,
                      lambda s: any(e.type == "timer_started" for e in s.history))
    done = await asyncio.to_thread(
        cli, cli_env, "stop", execution_id, "--reason", "runaway handler",
        "--workflow.restate.stop_grace=1s",
    )
    assert done.returncode == 0, done.stderr
    assert "stop_grace" in done.stderr + done.stdout
    status = await shared_provider.get_execution_status(execution_id)
    assert status.state is ExecutionState.STOPPED
    assert status.metadata["stopped_by"] == "killed"
    assert status.error is not None
    assert status.error.message == "runaway handler"


async def test_a_provider_closed_inside_the_grace_still_kills(
    shared_config: RestateConfig,
) -> None:
    """stop_execution, then close the provider at once: the kill promised after
    stop_grace still happens (closing waits for it)."""
    async with RestateProvider(shared_config) as provider:
        workflow_id = await created(provider, "IgnoresCancel")
        execution_id = await started(provider, workflow_id, sleep_s=60)
        await wait_status(provider, execution_id,
                          lambda s: any(e.type == "timer_started" for e in s.history))
    async with RestateProvider(attrs.evolve(shared_config,
                                            stop_grace=timedelta(seconds=1))) as provider:
        await provider.stop_execution(execution_id, "closing soon")
    async with RestateProvider(shared_config) as provider:
        status = await provider.get_execution_status(execution_id)
        assert status.state is ExecutionState.STOPPED
        assert status.metadata["stopped_by"] == "killed"


# -- 3: reuse carries across a chain of redrives, and `reused` marks only what did not run --


async def test_a_redrive_of_a_redrive_reuses_what_both_completed(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Original fails at step four, redrive 1 at step five, redrive 2 succeeds: redrive 2
    runs only step five; each history marks reused exactly the steps that did not run."""
    workflow_id = await created(shared_provider, "Chain")
    marks, broken = tmp_path / "marks", tmp_path / "broken"
    (tmp_path / "broken-four").touch()
    original = await started(shared_provider, workflow_id, marks=str(marks), broken=str(broken))
    assert (await wait_terminal(shared_provider, original)).state is ExecutionState.FAILED
    assert read_marks(marks) == ["one", "two", "three", "four"]

    (tmp_path / "broken-four").unlink()
    (tmp_path / "broken-five").touch()
    first = (await shared_provider.redrive_execution(original)).execution_id
    assert (await wait_terminal(shared_provider, first)).state is ExecutionState.FAILED
    assert read_marks(marks)[4:] == ["four", "five"]

    (tmp_path / "broken-five").unlink()
    second = (await shared_provider.redrive_execution(first)).execution_id
    done = await wait_terminal(shared_provider, second)
    assert done.state is ExecutionState.SUCCEEDED, done.error
    assert read_marks(marks)[6:] == ["five"]
    assert done.metadata["redriven_from"] == first
    assert _reused(done) == ["one", "two", "three", "four"]
    assert _reused(await shared_provider.get_execution_status(first)) == ["one", "two", "three"]


def _reused(status: Any) -> list[str]:
    """The steps a status's history marks as reused, in order."""
    return [e.details["step"] for e in status.history
            if e.type == "step_completed" and e.details.get("reused")]


# -- 4, 5: a redrive's name is its original's alone ----------------------------------------


async def test_a_redrive_never_answers_a_users_execution(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """A user's executions named `job-redrive` and exactly like the redrive's would-be name
    exist: the redrive is a new execution of its own, redriven_from its original."""
    workflow_id = await created(shared_provider, "Chain")
    (tmp_path / "broken-one").touch()
    failed = await started(shared_provider, workflow_id, "job",
                           marks=str(tmp_path / "m"), broken=str(tmp_path / "broken"))
    assert (await wait_terminal(shared_provider, failed)).state is ExecutionState.FAILED
    users = [await started(shared_provider, workflow_id, name, marks=str(tmp_path / "u"))
             for name in ("job-redrive", redrive_name("job", failed))]
    redriven = await shared_provider.redrive_execution(failed)
    assert redriven.execution_id not in users
    status = await shared_provider.get_execution_status(redriven.execution_id)
    assert status.metadata["redriven_from"] == failed
    again = await shared_provider.redrive_execution(failed)
    assert again.execution_id == redriven.execution_id


async def test_redrives_of_long_names_sharing_a_prefix_do_not_collide(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Two 128-character names sharing their first 120 characters: two redrives, each of
    its own original."""
    workflow_id = await created(shared_provider, "Chain")
    (tmp_path / "broken-one").touch()
    prefix = "t" * 120
    originals = [
        await started(shared_provider, workflow_id, prefix + tail, marks=str(tmp_path / "m"),
                      broken=str(tmp_path / "broken"))
        for tail in ("-aaaaaaa", "-bbbbbbb")
    ]
    for original in originals:
        await wait_terminal(shared_provider, original)
    redriven = [await shared_provider.redrive_execution(o) for o in originals]
    assert redriven[0].execution_id != redriven[1].execution_id
    for original, redrive in zip(originals, redriven, strict=True):
        status = await shared_provider.get_execution_status(redrive.execution_id)
        assert status.metadata["redriven_from"] == original


# -- 8: a callback's resource_ids of the wrong shape ----------------------------------------


@pytest.mark.parametrize("resource_ids", [[1], "x", 7])
async def test_callback_resource_ids_of_the_wrong_shape_are_named(
    shared_provider: RestateProvider, resource_ids: Any
) -> None:
    """resource_ids that is not a JSON object: InvalidInputError naming
    payload.resource_ids, never a raw AttributeError."""
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.post_compute_callback(
            "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW",
            ComputeCallbackPayload(execution_id="c-1", tenant_id="t", status="succeeded",
                                   resource_ids=resource_ids),
        )
    assert caught.value.field == "payload.resource_ids"


async def test_callback_resource_ids_null_reads_as_empty(
    shared_provider: RestateProvider,
) -> None:
    """resource_ids None (Go's null): delivered as an empty object."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    execution_id = await started(shared_provider, workflow_id)
    await shared_provider.post_compute_callback(
        execution_id, ComputeCallbackPayload(execution_id="c-1", tenant_id="t",
                                             status="succeeded", resource_ids=None),  # type: ignore[arg-type]
    )
    status = await wait_terminal(shared_provider, execution_id)
    assert status.state is ExecutionState.SUCCEEDED, status.error
    assert status.output["compute"]["resource_ids"] == {}


# -- 9: a redrive racing a purge -------------------------------------------------------------


async def test_a_redrive_racing_a_purge_is_not_found_never_a_protocol_error(
    shared_provider: RestateProvider, tmp_path: Path
) -> None:
    """Eight failed executions, each redriven while it is purged: the redrive starts, or it
    is ExecutionNotFoundError; never a RestateProtocolError blaming Restate."""
    workflow_id = await created(shared_provider, "Chain")
    (tmp_path / "broken-one").touch()
    failed = [await started(shared_provider, workflow_id, marks=str(tmp_path / "m"),
                            broken=str(tmp_path / "broken")) for _ in range(8)]
    for execution_id in failed:
        await wait_terminal(shared_provider, execution_id)

    async def redrive(execution_id: str) -> str:
        try:
            await shared_provider.redrive_execution(execution_id)
        except ExecutionNotFoundError:
            return "not found"
        return "redriven"

    for execution_id in failed:
        outcome, _ = await asyncio.gather(
            redrive(execution_id), shared_provider.purge_execution(execution_id))
        assert outcome in ("redriven", "not found")


# -- 10: caller metadata cannot state provider facts -----------------------------------------


async def test_caller_metadata_cannot_forge_provider_facts(
    shared_provider: RestateProvider,
) -> None:
    """A start whose metadata names deployment_id, redriven_from and stopped_by: status of
    the running execution reports none of them; the caller's own keys stay."""
    workflow_id = await created(shared_provider, "SlowSteps")
    result = await shared_provider.start_execution(workflow_id, ExecutionInput(
        input={"step_seconds": 5},
        metadata={"deployment_id": "dp_FAKE000000000", "redriven_from": "inv_forged",
                  "stopped_by": "killed", "team": "payments"},
    ))
    status = await wait_status(shared_provider, result.execution_id,
                               lambda s: "deployment_id" in s.metadata)
    assert status.state is ExecutionState.RUNNING
    assert status.metadata["deployment_id"].startswith("dp_")
    assert status.metadata["deployment_id"] != "dp_FAKE000000000"
    assert "redriven_from" not in status.metadata
    assert "stopped_by" not in status.metadata
    assert status.metadata["team"] == "payments"
    await shared_provider.kill_execution(result.execution_id, "done")


# -- 11: what an execution carries never drives the operator's terminal ---------------------


async def test_status_escapes_terminal_control_sequences(
    shared_provider: RestateProvider, cli_env: dict[str, str]
) -> None:
    """A stop reason holding ESC[2J ESC[1;1H: `status` shows the escapes as text, `--json`
    keeps the exact reason."""
    workflow_id = await created(shared_provider, "SlowSteps")
    execution_id = await started(shared_provider, workflow_id, step_seconds=5)
    reason = "gone \x1b[2J\x1b[1;1H \u202eevil"
    await shared_provider.kill_execution(execution_id, reason)
    await wait_terminal(shared_provider, execution_id)
    shown = await asyncio.to_thread(cli, cli_env, "status", execution_id)
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout
    assert "\\x1b[2J" in shown.stdout
    assert "\u202e" not in shown.stdout
    as_json = await asyncio.to_thread(cli, cli_env, "status", execution_id, "--json")
    assert json.loads(as_json.stdout)["error"]["message"] == reason


# -- 12: a timeout is not a stop; concurrent stops keep the first reason ---------------------


async def test_a_timed_out_runs_history_has_no_stop_nobody_requested(
    shared_provider: RestateProvider,
) -> None:
    """A run that times out: its history ends execution_timed_out, with no
    stop_requested in it."""
    spec = spec_for("SlowSteps", unique_id("timeout"), timeout=timedelta(seconds=1))
    await shared_provider.create_workflow(spec)
    execution_id = await started(shared_provider, spec.workflow_id, step_seconds=3)
    status = await wait_terminal(shared_provider, execution_id)
    assert status.state is ExecutionState.TIMEOUT
    types = [e.type for e in status.history]
    assert types[-1] == "execution_timed_out"
    assert "stop_requested" not in types


async def test_concurrent_stops_and_kills_keep_one_first_reason(
    shared_provider: RestateProvider,
) -> None:
    """Stops and kills racing on one execution: once a reason is recorded it never
    changes, and the status reports that reason."""
    workflow_id = await created(shared_provider, "SlowSteps")
    for _ in range(4):
        execution_id = await started(shared_provider, workflow_id, step_seconds=5)
        seen: list[str] = []

        async def watch(execution_id: str = execution_id, seen: list[str] = seen) -> None:
            for _ in range(40):
                stop = (await shared_provider.admin.query(
                    "SELECT value_utf8 FROM state WHERE "
                    f"service_name = '{CONTROL_SERVICE}' AND service_key = '{execution_id}' "
                    f"AND key = '{STOP_STATE}'"))
                if stop:
                    seen.append(stop[0]["value_utf8"])
                await asyncio.sleep(0.01)

        actions = [shared_provider.stop_execution(execution_id, f"stop {i}") for i in range(3)]
        actions += [shared_provider.kill_execution(execution_id, f"kill {i}") for i in range(3)]
        await asyncio.gather(watch(), *actions)
        status = await wait_terminal(shared_provider, execution_id)
        reasons = {json.loads(value)["reason"] for value in seen}
        assert len(reasons) <= 1, reasons
        assert status.error is not None
        if reasons:
            assert status.error.message == reasons.pop()
