"""The landlord-restate CLI against the real server: through its entry point in this
process (`cli`), and as a real process where the process itself matters (`cli_process`)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from landlord_restate.cli import main
from tests.conftest import (
    ROOT,
    SHARED_SERVICE,
    Stack,
    cli,
    cli_process,
    dead_endpoint,
    unique_id,
)
from tests.waiting import wait_for

pytestmark = pytest.mark.timeout(180)


def spec_file(tmp_path: Path, handler: str = "GoPair", **fields: Any) -> tuple[str, Path]:
    """A spec JSON file for a fresh workflow id."""
    workflow_id = unique_id("cli")
    path = tmp_path / f"{workflow_id}.json"
    spec = {"workflow_id": workflow_id, "provider_type": "restate",
            "definition": {"handler": handler}} | fields
    path.write_text(json.dumps(spec))
    return workflow_id, path


def test_the_console_script_as_a_real_process(cli_env: dict[str, str]) -> None:
    """`python -m landlord_restate.cli` exits with the codes main answers: 2 and one JSON
    object for a malformed id, 1 for an unknown one, 0 for a listing."""
    bad = cli_process(cli_env, "--json", "status", "not-an-id")
    assert bad.returncode == 2, bad.stderr
    assert json.loads(bad.stdout)["field"] == "execution_id"
    unknown = cli_process(cli_env, "status", "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr
    assert cli_process(cli_env, "list", "--limit", "1").returncode == 0


def test_doctor(cli_env: dict[str, str], tmp_path: Path) -> None:
    """doctor: settings with secrets masked, one ok line per check, exit 0."""
    _, path = spec_file(tmp_path)
    assert cli(cli_env, "create", str(path)).returncode == 0  # registers the deployment
    done = cli(cli_env, "doctor", "--workflow.restate.auth_type=api_key",
               "--workflow.restate.api_key=rk_doctor_secret")
    # the key would be refused by a proxy; self-hosted Restate ignores it
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rk_doctor_secret" not in done.stdout + done.stderr
    assert "***" in done.stdout
    for check in ("admin health", "server version", "ingress", "deployment"):
        assert f"ok   {check}" in done.stdout
    assert "restate-server 1.7.12" in done.stdout
    assert "hosting " in done.stdout
    assert "GoPair" in done.stdout
    as_json = json.loads(cli(cli_env, "doctor", "--json").stdout)
    assert as_json["ok"] is True
    assert as_json["settings"]["service_name"] == SHARED_SERVICE


def test_doctor_says_what_to_do(cli_env: dict[str, str]) -> None:
    """Restate absent: FAIL lines saying what to do, exit 1."""
    done = cli(cli_env | {"WORKFLOW_RESTATE_ENDPOINT": dead_endpoint(),
                          "WORKFLOW_RESTATE_ADMIN_ENDPOINT": dead_endpoint(),
                          "WORKFLOW_RESTATE_RETRY_ATTEMPTS": "0"}, "doctor")
    assert done.returncode == 1
    assert "FAIL admin health" in done.stdout
    assert "start restate-server" in done.stdout


def test_validate(cli_env: dict[str, str], tmp_path: Path) -> None:
    """validate: 0 for a good spec (file or stdin); 1 naming the field for a bad one."""
    _, good = spec_file(tmp_path)
    assert cli(cli_env, "validate", str(good)).returncode == 0
    piped = cli(cli_env, "validate", "-", stdin=good.read_text())
    assert piped.returncode == 0, piped.stderr
    _, bad = spec_file(tmp_path, definition={"handler": "lowercase"}, tags={"a": 1})
    done = cli(cli_env, "validate", str(bad))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "$.tags['a']" in done.stderr
    _, unhosted = spec_file(tmp_path, handler="NotHosted")
    done = cli(cli_env, "validate", str(unhosted))
    assert done.returncode == 1
    assert done.stderr.startswith("error: definition.handler")


def test_usage_and_config_errors_exit_2(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Bad flags, bad config, unreadable files: one line, exit 2, no traceback."""
    for args in (
        ("frobnicate",),
        ("status",),
        ("doctor", "--workflow.restate.timeout=-1s"),
        ("doctor", "--workflow.restate.execution_mechanism=docker"),
        ("validate", str(tmp_path / "absent.json")),
        ("start", "x", "--input", "{not json"),
    ):
        done = cli(cli_env, *args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    done = cli(cli_env, "doctor", "--workflow.restate.execution_mechanism=docker")
    assert done.stderr.strip().splitlines() == [
        "error: flag --workflow.restate.execution_mechanism: execution_mechanism 'docker' "
        "must be one of: local, self-hosted, kubernetes, fargate, lambda"
    ]


def test_create_start_wait_status_list_stop_delete(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The whole operator session, each command's exit code and output checked."""
    workflow_id, path = spec_file(tmp_path, handler="FiveSteps")
    created = cli(cli_env, "create", str(path), "--json")
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["workflow_id"] == workflow_id

    waited = cli(cli_env, "start", workflow_id, "--name", "first", "--input", "{}", "--wait")
    assert waited.returncode == 0, waited.stderr
    assert "succeeded" in waited.stdout
    assert "step-5" in waited.stdout

    started = json.loads(cli(cli_env, "start", workflow_id, "--name", "first", "--json").stdout)
    status = json.loads(cli(cli_env, "status", started["execution_id"], "--json").stdout)
    assert status["state"] == "succeeded"
    assert [e["details"]["step"] for e in status["history"] if e["type"] == "step_completed"] == [
        f"step-{i}" for i in range(1, 6)
    ]
    shown = cli(cli_env, "status", started["execution_id"])
    assert shown.returncode == 0
    assert "history" in shown.stdout
    assert "execution_succeeded" in shown.stdout

    input_file = tmp_path / "input.json"
    input_file.write_text(json.dumps({"marks": str(tmp_path / "marks")}))
    second = json.loads(cli(cli_env, "start", workflow_id, "--name", "second",
                            "--input", f"@{input_file}", "--json").stdout)
    listed = json.loads(cli(cli_env, "list", "--workflow", workflow_id, "--json").stdout)
    assert [s["execution_name"] for s in listed["executions"]] == ["second", "first"]
    assert listed["executions"][0]["execution_id"] == second["execution_id"]
    assert listed["next_page_token"] is None
    only = json.loads(cli(cli_env, "list", "--workflow", workflow_id, "--limit", "1",
                          "--json").stdout)
    assert len(only["executions"]) == 1
    table = cli(cli_env, "list", "--workflow", workflow_id)
    assert "second" in table.stdout

    deleted = cli(cli_env, "delete", workflow_id)
    assert deleted.returncode == 0
    refused = cli(cli_env, "start", workflow_id)
    assert refused.returncode == 1
    assert refused.stderr.strip() == f"error: workflow '{workflow_id}' not found"


def test_stop_and_list_by_state(cli_env: dict[str, str], tmp_path: Path) -> None:
    """stop --reason ends the execution stopped; list --state finds it."""
    workflow_id, path = spec_file(tmp_path, handler="SlowSteps")
    assert cli(cli_env, "create", str(path)).returncode == 0
    started = json.loads(cli(cli_env, "start", workflow_id, "--input",
                             '{"step_seconds": 5}', "--json").stdout)
    stopped = cli(cli_env, "stop", started["execution_id"], "--reason", "operator said so")
    assert stopped.returncode == 0, stopped.stderr
    deadline = time.monotonic() + 30
    while True:
        status = json.loads(cli(cli_env, "status", started["execution_id"], "--json").stdout)
        if status["state"] == "stopped" or time.monotonic() > deadline:
            break
    assert status["state"] == "stopped"
    assert status["error"]["message"] == "operator said so"
    found = json.loads(cli(cli_env, "list", "--workflow", workflow_id, "--state", "stopped",
                           "--json").stdout)
    assert [s["execution_id"] for s in found["executions"]] == [started["execution_id"]]
    assert json.loads(cli(cli_env, "list", "--workflow", workflow_id, "--state", "succeeded",
                          "--json").stdout)["executions"] == []
    missing = cli(cli_env, "status", "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
    assert missing.returncode == 1
    assert "not found" in missing.stderr


def test_status_watch_in_a_terminal(cli_env: dict[str, str], tmp_path: Path) -> None:
    """status --watch in a pseudo-terminal: a live progress line, then the final state."""
    workflow_id, path = spec_file(tmp_path, handler="SlowSteps")
    assert cli(cli_env, "create", str(path)).returncode == 0
    started = json.loads(cli(cli_env, "start", workflow_id, "--input",
                             '{"step_seconds": 0.7, "steps": 3}', "--json").stdout)
    primary, secondary = os.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "landlord_restate.cli", "status", started["execution_id"],
         "--watch"],
        env=cli_env | {"TERM": "xterm-256color", "COLUMNS": "160", "LINES": "50"},
        stdin=secondary, stdout=secondary, stderr=secondary, cwd=ROOT,
    )
    os.close(secondary)
    screen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([primary], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif process.poll() is not None:
            break
    os.close(primary)
    assert process.wait(10) == 0
    text = screen.decode(errors="replace")
    assert "current step: slow-" in text
    assert "running for" in text
    assert "succeeded after" in text
    assert "\x1b[" in text  # drawn for a terminal, redrawn in place


def _one_json_error(stdout: str) -> dict[str, Any]:
    """stdout as exactly one JSON object with the error keys."""
    shown = json.loads(stdout)
    assert isinstance(shown, dict), stdout
    assert {"error", "message", "field"} <= shown.keys(), shown
    return shown


@pytest.mark.parametrize(
    ("args", "code", "error", "field"),
    [
        (("status", "not-an-id"), 2, "UsageError", "execution_id"),
        (("list", "--limit", "0"), 2, "UsageError", "limit"),
        (("list", "--limit", "many"), 2, "UsageError", "limit"),  # a bad flag value
        (("list", "--state", "sleeping"), 2, "UsageError", "state"),
        (("list", "--page-size", "0"), 2, "UsageError", "page_size"),
        (("list", "--page-size", "1001"), 2, "UsageError", "page_size"),
        (("list", "--tag", "tenant_id"), 2, "UsageError", "tag"),
        (("count", "--tag", "=acme"), 2, "UsageError", "tag"),
        (("count", "--since", "yesterday"), 2, "UsageError", "since"),
        (("list", "--until", "2026-13-01"), 2, "UsageError", "until"),
        (("list", "--page-token", "not a token"), 2, "UsageError", "page_token"),
        (("list", "--page-token", "eyJ2IjoxfQ"), 2, "UsageError", "page_token"),
        (("deployments", "remove", "dp_abc"), 2, "UsageError", "deployment_id"),
        (("deployments", "remove", "xx"), 2, "UsageError", "deployment_id"),
        (("frobnicate",), 2, "UsageError", "command"),  # an unknown command
        (("status",), 2, "UsageError", "execution_id"),  # a missing argument
        (("start", "wf", "--input", "{not json"), 2, "UsageError", "input"),
        (("stop", "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"), 2, "UsageError", "reason"),
        (("list", "--workflow.restate.timeout=-1s"), 2, "ConfigError", "timeout"),
        (("list", "--workflow.restate.retry_attempts=many"), 2, "ConfigError",
         "retry_attempts"),
        (("list", "--workflow.restate.endpoint"), 2, "ConfigError", "endpoint"),
        (("list", "--bogus-flag=rk_secret"), 2, "UsageError", None),
    ],
)
@pytest.mark.parametrize("where", ["after", "before"])
def test_json_errors_are_one_json_object(
    args: tuple[str, ...], code: int, error: str, field: str | None, where: str,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With --json (after the command or before it), every usage or config error prints one
    {"error", "message", "field"} object on stdout, with the usual exit code."""
    monkeypatch.setenv("WORKFLOW_RESTATE_ENDPOINT", dead_endpoint())
    monkeypatch.setenv("LANDLORD_CONFIG", "")
    argv = [*args, "--json"] if where == "after" else ["--json", *args]
    assert main(argv) == code
    captured = capsys.readouterr()
    shown = _one_json_error(captured.out)
    assert (shown["error"], shown["field"]) == (error, field)
    assert shown["message"]
    assert "rk_secret" not in captured.out + captured.err
    assert captured.err.startswith("error: ")  # people still get their line


def test_json_before_the_command_and_operation_errors(cli_env: dict[str, str]) -> None:
    """`landlord-restate --json stop ...` works; an operation that fails exits 1 with one
    JSON error object naming the execution."""
    missing = "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"
    done = cli(cli_env, "--json", "status", missing)
    assert done.returncode == 1, done.stderr
    shown = _one_json_error(done.stdout)
    assert shown["error"] == "ExecutionNotFoundError"
    assert shown["execution_id"] == missing
    listed = cli(cli_env, "--json", "list", "--limit", "1")
    assert listed.returncode == 0, listed.stderr
    assert isinstance(json.loads(listed.stdout)["executions"], list)
    helped = cli(cli_env, "--json", "--help")
    assert helped.returncode == 0
    assert "usage: landlord-restate" in json.loads(helped.stdout)["help"]


# -- operator verbs (issues 20 and 21) ----------------------------------------------------


def run_json(env: dict[str, str], *args: str) -> tuple[int, Any]:
    """Run `landlord-restate ARGS --json`; answer the exit code and the one JSON document."""
    done = cli(env, *args, "--json")
    try:
        return done.returncode, json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"not one JSON document: {done.stdout!r} {done.stderr!r}") from None


def wait_state(env: dict[str, str], execution_id: str, *states: str,
               within: float = 30) -> dict[str, Any]:
    """The execution's status (via the CLI) once its state is one of `states`."""
    deadline = time.monotonic() + within
    while True:
        code, status = run_json(env, "status", execution_id)
        assert code == 0, status
        if status["state"] in states or time.monotonic() > deadline:
            assert status["state"] in states, status
            return dict(status)
        time.sleep(0.2)


def slow_execution(env: dict[str, str], tmp_path: Path, **request: Any) -> tuple[str, str]:
    """A created SlowSteps workflow and a started execution of it: (workflow id, id)."""
    workflow_id, path = spec_file(tmp_path, handler="SlowSteps")
    assert cli(env, "create", str(path)).returncode == 0
    code, started = run_json(env, "start", workflow_id, "--input",
                             json.dumps({"step_seconds": 5} | request))
    assert code == 0, started
    return workflow_id, started["execution_id"]


def test_kill_ends_an_execution_now(cli_env: dict[str, str], tmp_path: Path) -> None:
    """kill ID --reason: stopped at once with the reason; text and JSON, exit 0."""
    _, execution_id = slow_execution(cli_env, tmp_path)
    code, status = run_json(cli_env, "kill", execution_id, "--reason", "runaway tenant")
    assert code == 0, status
    status = wait_state(cli_env, execution_id, "stopped")
    assert status["error"]["message"] == "runaway tenant"
    again = cli(cli_env, "kill", execution_id, "--reason", "again")  # finished: unchanged
    assert again.returncode == 0, again.stderr
    assert f"{execution_id}: killed, now stopped" in again.stdout
    code, refused = run_json(cli_env, "kill", execution_id)  # --reason is required
    assert (code, refused["field"]) == (2, "reason")


def test_pause_then_resume(cli_env: dict[str, str], tmp_path: Path) -> None:
    """pause ID: it runs no step; resume ID: it goes on and succeeds."""
    _, execution_id = slow_execution(cli_env, tmp_path, step_seconds=0.5, steps=3)
    paused = cli(cli_env, "pause", execution_id)
    assert paused.returncode == 0, paused.stderr
    assert execution_id in paused.stdout
    code, status = run_json(cli_env, "status", execution_id)
    assert code == 0
    assert status["state"] == "running"
    deadline = time.monotonic() + 30
    while status["metadata"].get("restate_status") != "paused" and time.monotonic() < deadline:
        time.sleep(0.2)
        status = run_json(cli_env, "status", execution_id)[1]
    assert status["metadata"]["restate_status"] == "paused", status["metadata"]
    code, resumed = run_json(cli_env, "resume", execution_id)
    assert code == 0, resumed
    assert wait_state(cli_env, execution_id, "succeeded")["output"] == {"steps": 3}


def test_purge_forgets_a_finished_execution(cli_env: dict[str, str], tmp_path: Path) -> None:
    """purge ID: a finished execution is gone (status exits 1); a running one is refused
    with exit 1 and its state, and keeps running."""
    workflow_id, path = spec_file(tmp_path)
    assert cli(cli_env, "create", str(path)).returncode == 0
    started = run_json(cli_env, "start", workflow_id, "--input", "{}")[1]
    wait_state(cli_env, started["execution_id"], "succeeded")
    code, purged = run_json(cli_env, "purge", started["execution_id"])
    assert (code, purged) == (0, {"purged": started["execution_id"]})
    code, gone = run_json(cli_env, "status", started["execution_id"])
    assert (code, gone["error"]) == (1, "ExecutionNotFoundError")
    _, running = slow_execution(cli_env, tmp_path)
    code, refused = run_json(cli_env, "purge", running)
    assert code == 1, refused
    assert refused["error"] == "ExecutionStateError"
    assert refused["execution_id"] == running
    assert refused["state"] in ("pending", "running")
    assert cli(cli_env, "kill", running, "--reason", "cleanup").returncode == 0


def test_redrive_goes_on_from_where_it_stopped(cli_env: dict[str, str], tmp_path: Path) -> None:
    """redrive ID: a new execution of a stopped one, printed as start prints it; --wait
    shows its terminal status; a succeeded execution is refused with exit 1."""
    _, execution_id = slow_execution(cli_env, tmp_path, step_seconds=1, steps=2)
    assert cli(cli_env, "stop", execution_id, "--reason", "try again later").returncode == 0
    wait_state(cli_env, execution_id, "stopped")
    code, redriven = run_json(cli_env, "redrive", execution_id)
    assert code == 0, redriven
    assert redriven["execution_id"] != execution_id
    assert redriven["state"] in ("pending", "running")
    waited = cli(cli_env, "redrive", execution_id, "--wait")  # idempotent: the same one
    assert waited.returncode == 0, waited.stderr
    assert redriven["execution_id"] in waited.stdout
    assert "succeeded" in waited.stdout
    code, refused = run_json(cli_env, "redrive", redriven["execution_id"])
    assert (code, refused["error"]) == (1, "InvalidInputError")


def test_list_by_name_prefix(cli_env: dict[str, str], tmp_path: Path) -> None:
    """list --name-prefix: only executions whose name starts so (a tenant's), newest first."""
    workflow_id, path = spec_file(tmp_path)
    assert cli(cli_env, "create", str(path)).returncode == 0
    for name in ("acme-1", "globex-1", "acme-2"):
        assert cli(cli_env, "start", workflow_id, "--name", name).returncode == 0
    code, found = run_json(cli_env, "list", "--workflow", workflow_id, "--name-prefix", "acme-")
    assert code == 0, found
    assert [s["execution_name"] for s in found["executions"]] == ["acme-2", "acme-1"]
    table = cli(cli_env, "list", "--workflow", workflow_id, "--name-prefix", "globex")
    assert table.returncode == 0, table.stderr
    assert "globex-1" in table.stdout
    assert "acme-1" not in table.stdout
    code, refused = run_json(cli_env, "list", "--name-prefix", "acme 1")
    assert (code, refused["field"]) == (2, "name_prefix")


async def test_deployments_and_removing_one(
    private_stack: Stack, cli_env: dict[str, str], tmp_path: Path
) -> None:
    """deployments: a table (id, address, services, in flight, latest) and JSON; deployments
    remove ID refuses one that executions run on (exit 1, in flight), --force removes it.
    On a server of its own: every deployment also serves the catalog, so removing one must
    not touch the session's server."""
    stack = private_stack
    env = cli_env | {"WORKFLOW_RESTATE_ENDPOINT": stack.server.ingress_url,
                     "WORKFLOW_RESTATE_ADMIN_ENDPOINT": stack.server.admin_url,
                     "WORKFLOW_RESTATE_DEPLOYMENT_URL": stack.deployment.url,
                     "WORKFLOW_RESTATE_SERVICE_NAME": "Crash"}
    _, execution_id = await asyncio.to_thread(slow_execution, env, tmp_path, step_seconds=30)
    # in flight once Restate pinned the run to the deployment, at its first attempt
    await wait_for(lambda: stack.provider.get_execution_status(execution_id),
                   lambda s: "deployment_id" in s.metadata, what="the run's first attempt")
    code, listed = await asyncio.to_thread(run_json, env, "deployments")
    assert code == 0, listed
    ours = [d for d in listed if d["address"].rstrip("/") == stack.deployment.url]
    assert len(ours) == 1, listed
    deployment_id = ours[0]["deployment_id"]
    assert "Crash" in ours[0]["services"]
    assert ours[0]["in_flight"] >= 1
    assert ours[0]["latest"] is True
    table = await asyncio.to_thread(cli, env, "deployments")
    assert table.returncode == 0, table.stderr
    assert deployment_id in table.stdout
    assert "in flight" in table.stdout
    code, refused = await asyncio.to_thread(run_json, env, "deployments", "remove",
                                            deployment_id)
    assert code == 1, refused
    assert refused["error"] == "DeploymentInUseError"
    assert refused["deployment_id"] == deployment_id
    assert refused["in_flight"] >= 1
    code, removed = await asyncio.to_thread(run_json, env, "deployments", "remove",
                                            deployment_id, "--force")
    assert (code, removed) == (0, {"removed": deployment_id})
    listed = (await asyncio.to_thread(run_json, env, "deployments"))[1]
    assert deployment_id not in [d["deployment_id"] for d in listed]
    code, refused = await asyncio.to_thread(run_json, env, "deployments", "remove",
                                            "not-a-deployment")
    assert (code, refused["field"]) == (2, "deployment_id")
