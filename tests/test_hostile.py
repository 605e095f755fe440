"""Hostile input and buggy handlers: nothing crashes, hangs, leaks or poisons state.

One test (or one parametrized case) per finding of the attack on the public API, the
config loader, the CLI and the deployment; each failed before its fix.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import types
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest

from landlord_restate import (
    ComputeCallbackPayload,
    ConfigError,
    ExecutionInput,
    ExecutionState,
    InvalidInputError,
    InvalidSpecError,
    ProviderStateError,
    ProvisionRequest,
    RestateConfig,
    RestateProvider,
    RetryPolicy,
    WorkflowSpec,
    from_json,
    load_config,
    to_json,
)
from landlord_restate.restate.naming import (
    check_execution_id,
    check_execution_name,
    check_workflow_id,
)
from landlord_restate.testing import DeploymentProcess
from landlord_restate.workflow.convert import parse_go_duration, parse_rfc3339
from services.app import create_app
from tests.conftest import cli, dead_endpoint, spec_for, unique_id
from tests.waiting import wait_status, wait_terminal

pytestmark = pytest.mark.timeout(120)

LOCAL_ENV = {"WORKFLOW_RESTATE_ENDPOINT": "http://127.0.0.1:8080"}
EXECUTION_ID = "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW"


async def misbehave(provider: RestateProvider, bug: str) -> Any:
    """Run the Misbehaves handler with `bug`; answer its terminal status."""
    spec = spec_for("Misbehaves", unique_id("bug"))
    await provider.create_workflow(spec)
    started = await provider.start_execution(spec.workflow_id, ExecutionInput(input={"bug": bug}))
    return await wait_terminal(provider, started.execution_id, within=20)


# -- 1, 2: a handler cannot take the deployment down, nor hang an execution ---------------


@pytest.mark.parametrize(
    "bug",
    ["raise SystemExit", "raise KeyboardInterrupt", "raise custom",
     "step raises SystemExit", "step raises KeyboardInterrupt", "step raises custom"],
)
async def test_base_exceptions_fail_the_execution_not_the_process(
    shared_provider: RestateProvider, shared_deployment: DeploymentProcess, bug: str
) -> None:
    """SystemExit and friends, from the handler or a sync step: failed, process still up."""
    pid = shared_deployment.pid
    status = await misbehave(shared_provider, bug)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "handler_crashed"
    assert bug.rsplit(" ", 1)[1].replace("custom", "_CustomBase") in status.error.message
    assert shared_deployment.pid == pid  # never restarted
    # another execution on the same deployment, no restart in between
    assert (await misbehave(shared_provider, "nothing")).state is ExecutionState.SUCCEEDED


def test_an_absurd_retry_policy_is_refused() -> None:
    """max_attempts past the SDK's range (it overflowed and hung) is an InvalidSpecError."""
    dead = dead_endpoint()
    provider = RestateProvider(RestateConfig(endpoint=dead, admin_endpoint=dead))
    for policy, field in (
        (RetryPolicy(max_attempts=2**32), "retry_policy.max_attempts"),
        (RetryPolicy(backoff_rate=float("nan")), "retry_policy.backoff_rate"),
        (RetryPolicy(backoff_rate=1e9), "retry_policy.backoff_rate"),
    ):
        with pytest.raises(InvalidSpecError) as caught:
            provider.resolve(spec_for("GoPair", retry_policy=policy))
        assert caught.value.field == field


# -- 3: a trailing newline passes no rule --------------------------------------------------


def test_a_trailing_newline_passes_no_id_or_name_rule() -> None:
    """Full-string matches: `$` no longer accepts a final newline."""
    for check, value in (
        (check_workflow_id, "rt-echo\n"),
        (check_execution_name, "n1\n"),
        (check_execution_id, EXECUTION_ID + "\n"),
    ):
        with pytest.raises((InvalidSpecError, InvalidInputError)):
            check(value)


async def test_trailing_newlines_reach_no_server(shared_provider: RestateProvider) -> None:
    """A workflow 'x\\n' cannot be created; 'n1' and 'n1\\n' cannot start two runs."""
    with pytest.raises(InvalidSpecError):
        await shared_provider.create_workflow(spec_for("GoPair", "rt-echo\n"))
    spec = spec_for("GoPair", unique_id("nl"))
    await shared_provider.create_workflow(spec)
    await shared_provider.start_execution(spec.workflow_id, ExecutionInput(execution_name="n1"))
    with pytest.raises(InvalidInputError):
        await shared_provider.start_execution(
            spec.workflow_id, ExecutionInput(execution_name="n1\n")
        )
    with pytest.raises(InvalidInputError):
        await shared_provider.get_execution_status(EXECUTION_ID + "\n")


def test_the_cli_refuses_a_name_with_a_newline(cli_env: dict[str, str]) -> None:
    """`--name $'nl\\n'`: one line, exit 2, before any call."""
    done = cli(cli_env, "start", "some-workflow", "--name", "nl\n")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "execution_name" in done.stderr


# -- 4, 5: a refused spec changes nothing on the server ------------------------------------


@pytest.mark.parametrize(
    "fields",
    [{"timeout": timedelta.max},
     {"retry_policy": RetryPolicy(initial_interval=timedelta.max)},
     {"retry_policy": RetryPolicy(max_interval=timedelta(days=300 * 365))}],
)
async def test_durations_beyond_go_are_refused_and_poison_nothing(
    shared_provider: RestateProvider, fields: dict[str, Any]
) -> None:
    """timedelta.max is an InvalidSpecError; the id stays usable for a good spec."""
    spec = spec_for("GoPair", unique_id("poison"), **fields)
    with pytest.raises(InvalidSpecError):
        await shared_provider.validate(spec)
    with pytest.raises(InvalidSpecError):
        await shared_provider.create_workflow(spec)
    good = spec_for("GoPair", spec.workflow_id)
    await shared_provider.create_workflow(good)
    started = await shared_provider.start_execution(good.workflow_id, ExecutionInput(input={}))
    assert (await wait_terminal(shared_provider, started.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )


async def test_a_refused_spec_leaves_the_deployment_as_it_was(
    shared_provider: RestateProvider,
) -> None:
    """A handler the deployment does not host: refused, and no re-registration happened."""
    await shared_provider.create_workflow(spec_for("GoPair", unique_id("before")))
    before = await shared_provider.admin.deployments()
    with pytest.raises(InvalidSpecError) as caught:
        await shared_provider.create_workflow(spec_for("NotHostedAnywhere", unique_id("nh")))
    assert caught.value.field == "definition.handler"
    assert await shared_provider.admin.deployments() == before


# -- 6, 7: identity and secrets fail closed ------------------------------------------------


@pytest.mark.parametrize("keys", [",", " ", "", "not-a-key", "publickeyv1_!!!"])
def test_identity_keys_that_name_no_key_refuse_to_start(keys: str) -> None:
    """Set but holding no valid key: the app refuses to start instead of serving anyone."""
    with pytest.raises(ConfigError) as caught:
        create_app({"LANDLORD_RESTATE_IDENTITY_KEYS": keys})
    assert caught.value.key == "LANDLORD_RESTATE_IDENTITY_KEYS"


@pytest.mark.parametrize("key", ["rk_secret\n", "rk secret", "rk_secret\t", "rk_sécret"])
def test_an_api_key_a_header_cannot_carry_is_a_config_error(key: str) -> None:
    """A trailing newline (a secret from a file): ConfigError naming api_key, not showing it."""
    with pytest.raises(ConfigError) as caught:
        RestateConfig(endpoint="http://127.0.0.1:8080", auth_type="api_key", api_key=key).check()
    assert caught.value.key == "api_key"
    assert "rk_s" not in str(caught.value)


def test_the_cli_says_so_in_one_line(cli_env: dict[str, str]) -> None:
    """The same key through the CLI: one line, exit 2, no traceback, no secret."""
    done = cli(cli_env | {"WORKFLOW_RESTATE_AUTH_TYPE": "api_key",
                          "WORKFLOW_RESTATE_API_KEY": "rk_from_file\n"}, "doctor")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "rk_from_file" not in done.stdout + done.stderr


# -- 8, 9, 12: the config loader never lets a raw exception or a huge message out ---------


def alias_bomb(levels: int) -> str:
    """A 'billion laughs' YAML document: each level references the previous nine times."""
    lines = ['a0: &a0 ["lol"]']
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "workflow:\n  restate:\n    endpoint: " + f"*a{levels - 1}\n" + "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [9, 12])
def test_a_yaml_alias_bomb_is_a_short_config_error(tmp_path: Path, levels: int) -> None:
    """Refused quickly, with a message of bounded size, without expanding the aliases."""
    path = tmp_path / "bomb.yaml"
    path.write_text(alias_bomb(levels))
    began = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert time.monotonic() - began < 5
    assert len(str(caught.value)) < 1000


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (" ", "request_timeout"),
        ("99999999999999999999h", "timeout"),
        ("9999999999h", "timeout"),
        ("\u0663\u0660m", "timeout"),  # Arabic-Indic digits: 30m
        ("30m ", "timeout"),
        ("http://[::1", "endpoint"),
    ],
)
def test_bad_values_are_config_errors_not_raw_exceptions(value: str, key: str) -> None:
    """Each was an IndexError, OverflowError, ValueError or an accepted value."""
    with pytest.raises(ConfigError) as caught:
        load_config(env=LOCAL_ENV | {f"WORKFLOW_RESTATE_{key.upper()}": value})
    assert caught.value.key == key


def test_files_that_are_not_utf8_or_too_big_are_config_errors(tmp_path: Path) -> None:
    """Non-UTF-8 bytes and 2**63 nanoseconds in a file: ConfigError naming the problem."""
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"workflow:\n  restate:\n    endpoint: http://h\xe9:1\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(latin, env={})
    nanos = tmp_path / "nanos.yaml"
    nanos.write_text(f"workflow:\n  restate:\n    endpoint: http://h:1\n    timeout: {2**63}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(nanos, env={})
    assert caught.value.key == "timeout"


def test_go_durations_and_times_keep_to_go() -> None:
    """int64 nanoseconds both ways; RFC 3339 without a trailing newline or a 60-minute offset."""
    for text in ("9999999999h", "\u0663\u0660m", " 30m", "30m\n", ""):
        with pytest.raises(ValueError):  # noqa: PT011  (the message varies by input)
            parse_go_duration(text)
    with pytest.raises(InvalidSpecError):
        from_json(WorkflowSpec, {"workflow_id": "w", "timeout": 2**63})
    with pytest.raises(ValueError, match="Go's range"):
        to_json(WorkflowSpec(workflow_id="w", timeout=timedelta.max))
    for text in ("2026-01-01T00:00:00Z\n", "2026-01-01T00:00:00+00:60"):
        with pytest.raises(ValueError, match="invalid time"):
            parse_rfc3339(text)


# -- 9, 10, 13: the provider's inputs --------------------------------------------------------


def nested(depth: int) -> Any:
    """A list nested `depth` deep."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("execution", "field"),
    [
        (ExecutionInput(input=nested(10_000)), "input"),
        (ExecutionInput(input={1: "a", "1": "b"}), "input"),
        (ExecutionInput(input={"x": float("nan")}), "input"),
        (ExecutionInput(trigger_source=b"cli"), "trigger_source"),  # type: ignore[arg-type]
        (ExecutionInput(trigger_source=7), "trigger_source"),  # type: ignore[arg-type]
        (ExecutionInput(trigger_source="x" * 10_000), "trigger_source"),
        (ExecutionInput(tags={f"k{i}": "v" for i in range(1000)}), "tags"),
        (ExecutionInput(tags={"k": "v" * 100_000}), "tags"),
        (ExecutionInput(metadata={"k" * 1000: "v"}), "metadata"),
    ],
)
async def test_bad_execution_input_is_refused_before_any_io(
    execution: ExecutionInput, field: str
) -> None:
    """Each a typed InvalidInputError naming the field (the endpoint here is dead)."""
    config = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                           retry_window=timedelta(0))
    async with RestateProvider(config) as offline:
        with pytest.raises(InvalidInputError) as caught:
            await offline.start_execution("some-workflow", execution)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (ComputeCallbackPayload(execution_id="c", tenant_id="t", status=5), "payload.status"),  # type: ignore[arg-type]
        (ComputeCallbackPayload(execution_id=b"c", tenant_id="t", status="failed"),  # type: ignore[arg-type]
         "payload.execution_id"),
        (ComputeCallbackPayload(execution_id="c", tenant_id="t", status="failed",
                                resource_ids={"raw": b"bytes"}), "payload.resource_ids"),
        (ComputeCallbackPayload(execution_id="c", tenant_id="t", status="failed",
                                error_message="m" * (1024 * 1024)), "payload.error_message"),
    ],
)
async def test_bad_callback_payloads_are_refused_before_any_io(
    payload: ComputeCallbackPayload, field: str
) -> None:
    """Bytes, numbers and oversized fields in a callback: InvalidInputError naming them."""
    config = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                           retry_window=timedelta(0))
    async with RestateProvider(config) as offline:
        with pytest.raises(InvalidInputError) as caught:
            await offline.post_compute_callback(EXECUTION_ID, payload)
    assert caught.value.field == field


async def test_oversized_fields_are_ours_to_refuse_not_the_servers(
    shared_provider: RestateProvider,
) -> None:
    """Description, tags and stop reasons past the limits: typed errors, nothing registered."""
    before = await shared_provider.admin.deployments()
    for fields, field in (
        ({"description": "d" * 100_000}, "description"),
        ({"tags": {"k": "v" * 100_000}}, "tags"),
    ):
        with pytest.raises(InvalidSpecError) as caught:
            await shared_provider.create_workflow(spec_for("GoPair", unique_id("big"), **fields))
        assert caught.value.field == field
    assert await shared_provider.admin.deployments() == before
    with pytest.raises(InvalidInputError) as stopped:
        await shared_provider.stop_execution(EXECUTION_ID, "r" * 100_000)
    assert stopped.value.field == "reason"


# -- 11: handler bugs fail at once, with a clear code ----------------------------------------


@pytest.mark.parametrize(
    ("bug", "code"),
    [
        ("set output", "invalid_output"),
        ("nan output", "invalid_output"),
        ("int keys output", "invalid_output"),
        ("step nan output", "invalid_step_output"),
        ("error with int code", "invalid_handler_error"),
        ("unprintable", "invalid_handler_error"),
        ("step unprintable", "invalid_handler_error"),
    ],
)
async def test_deterministic_handler_bugs_fail_at_once(
    shared_provider: RestateProvider, bug: str, code: str
) -> None:
    """Retrying cannot help: the execution fails on the first attempt with a clear code."""
    status = await misbehave(shared_provider, bug)
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == code
    assert status.metadata["retry_count"] == "0"
    json.dumps(to_json(status), allow_nan=False)  # strict JSON, NaN nowhere


async def test_a_huge_error_message_is_cut_not_retried(shared_provider: RestateProvider) -> None:
    """A 40 MiB HandlerError message: failed at once with its code, the message cut."""
    status = await misbehave(shared_provider, "huge error")
    assert status.state is ExecutionState.FAILED
    assert status.error is not None
    assert status.error.code == "huge"
    assert len(status.error.message) < 100_000
    assert "cut: 41943040 characters" in status.error.message


# -- 13: lifetime misuse and the CLI -------------------------------------------------------


async def test_nested_async_with_keeps_the_outer_session(config: RestateConfig) -> None:
    """An inner `async with provider` does not close the outer block's session."""
    provider = RestateProvider(config)
    async with provider:
        async with provider:
            await provider.list_executions(limit=1)
        await provider.list_executions(limit=1)  # still open
    with pytest.raises(ProviderStateError):
        await provider.list_executions(limit=1)


async def test_calls_in_flight_at_aclose_end_typed(hanging_endpoint: str) -> None:
    """aclose() with calls waiting: each ends with ProviderStateError, not aiohttp's."""
    config = RestateConfig(endpoint=hanging_endpoint, admin_endpoint=hanging_endpoint,
                           request_timeout=timedelta(seconds=5))
    provider = RestateProvider(config)
    await provider.open()
    calls = [asyncio.ensure_future(provider.get_execution_status(EXECUTION_ID))
             for _ in range(3)]
    await asyncio.sleep(0.2)
    await provider.aclose()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ProviderStateError) for r in results), results


async def test_use_from_another_event_loop_is_a_typed_error(config: RestateConfig) -> None:
    """An aiohttp session belongs to one loop: another loop gets ProviderStateError."""
    async with RestateProvider(config) as provider:
        caught: list[BaseException] = []

        def elsewhere() -> None:
            try:
                asyncio.run(provider.list_executions(limit=1))
            except BaseException as exc:
                caught.append(exc)

        thread = threading.Thread(target=elsewhere)
        thread.start()
        thread.join(30)
    assert len(caught) == 1
    assert isinstance(caught[0], ProviderStateError)


def test_a_misspelt_flag_never_echoes_its_value(cli_env: dict[str, str]) -> None:
    """argparse would print `--workflow_restate.api_key=SECRET` back: it does not."""
    done = cli(cli_env, "doctor", "--workflow_restate.api_key=SECRET_VALUE")
    assert done.returncode == 2
    assert "SECRET_VALUE" not in done.stdout + done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [("status", "inv_bad"), ("stop", EXECUTION_ID + "x!", "--reason", "r"),
     ("start", "Bad_Workflow"), ("list", "--limit", "0"), ("delete", "UPPER")],
)
def test_argument_errors_exit_2_like_argparse(
    cli_env: dict[str, str], args: tuple[str, ...]
) -> None:
    """Malformed ids, names and limits on the command line: exit 2, one line."""
    done = cli(cli_env, *args)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1


def test_a_non_utf8_spec_file_is_one_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A spec file in Latin-1: exit 2 with one line, no traceback."""
    spec = tmp_path / "spec.json"
    spec.write_bytes(b'{"workflow_id": "caf\xe9"}')
    done = cli(cli_env, "validate", str(spec))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "not UTF-8" in done.stderr


@pytest.mark.parametrize(
    "url",
    ["http://127.1:9080", "http://0.0.0.0:9080", "http://[::ffff:127.0.0.1]:9080",
     "http://2130706433:9080", "http://localhost.:9080", "http://[::]:9080"],
)
def test_every_spelling_of_loopback_is_refused_for_remote_mechanisms(url: str) -> None:
    """A Kubernetes deployment at a loopback address restate-server cannot reach."""
    with pytest.raises(ConfigError) as caught:
        RestateConfig(endpoint="http://restate:8080", execution_mechanism="kubernetes",
                      deployment_url=url).check()
    assert caught.value.key == "deployment_url"


# -- issue 19: values Go cannot read, Mappings, names of fields -----------------------------

#: an int Python's encoder refuses to print (past 4,300 digits), and one it prints but Go's
#: decoder refuses (beyond float64's range)
UNPRINTABLE_INT = 10**5000
BEYOND_FLOAT64 = 10**400


async def runs_of(provider: RestateProvider, workflow_id: str) -> list[dict[str, Any]]:
    """Every `run` invocation of the workflow, oldest first."""
    return await provider.admin.query(
        "SELECT id, status FROM sys_invocation WHERE target_handler_name = 'run' "
        f"AND target_service_key LIKE '{workflow_id}.%' ORDER BY created_at"
    )


async def created(provider: RestateProvider, handler: str) -> str:
    """A fresh workflow running `handler`; answers its id."""
    spec = spec_for(handler, unique_id(handler.lower()))
    await provider.create_workflow(spec)
    return spec.workflow_id


@pytest.mark.parametrize(
    ("execution", "field"),
    [
        (ExecutionInput(input=UNPRINTABLE_INT), "input"),
        (ExecutionInput(input={"ids": [BEYOND_FLOAT64]}), "input"),
        (ExecutionInput(input={"x": "\ud800"}), "input"),
        (ExecutionInput(input={"\udc80": 1}), "input"),
        (ExecutionInput(tags={"k": "\ud800"}), "tags"),
        (ExecutionInput(trigger_source="cli\udfff"), "trigger_source"),
    ],
    ids=["unprintable int", "int beyond float64", "lone surrogate", "surrogate key",
         "surrogate tag", "surrogate trigger"],
)
async def test_values_go_cannot_read_start_nothing(
    shared_provider: RestateProvider, execution: ExecutionInput, field: str
) -> None:
    """Huge ints (a ValueError before) and lone surrogates: InvalidInputError, no run."""
    workflow_id = await created(shared_provider, "GoPair")
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.start_execution(workflow_id, execution)
    assert caught.value.field == field
    assert await runs_of(shared_provider, workflow_id) == []


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (ProvisionRequest(tenant_id="t", desired_config={"replicas": UNPRINTABLE_INT}),
         "request.desired_config"),
        (ProvisionRequest(tenant_id="t", desired_config={"ids": [BEYOND_FLOAT64]}),
         "request.desired_config"),
        (ProvisionRequest(tenant_id="t", desired_config={"x": "\ud800"}),
         "request.desired_config"),
        (ProvisionRequest(tenant_id="t", desired_config={"x": {"\ud800": 1}}),
         "request.desired_config"),
        (ProvisionRequest(tenant_id="t\ud800"), "request.tenant_id"),
        (ProvisionRequest(tenant_id="t", api_base_url="http://x/\udc00"),
         "request.api_base_url"),
        (ProvisionRequest(tenant_id="t", metadata={"config_hash": "\ud800"}), "metadata"),
    ],
    ids=["unprintable int", "int beyond float64", "lone surrogate", "surrogate key",
         "surrogate tenant", "surrogate url", "surrogate metadata"],
)
async def test_a_configuration_go_cannot_read_invokes_nothing(
    shared_provider: RestateProvider, request_: ProvisionRequest, field: str
) -> None:
    """invoke: a ValueError or UnicodeEncodeError before; now InvalidInputError, no run."""
    workflow_id = await created(shared_provider, "GoPair")
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.invoke(workflow_id, request_)
    assert caught.value.field == field
    assert await runs_of(shared_provider, workflow_id) == []


@pytest.mark.parametrize("name", ["tenant_id", "tenant_uuid", "operation"])
async def test_an_overlong_tenant_is_named_as_the_caller_passed_it(
    shared_provider: RestateProvider, name: str
) -> None:
    """1,025 characters name request.<field> (was `tags`), start nothing; 1,024 invokes."""
    workflow_id = await created(shared_provider, "GoPair")
    base = ProvisionRequest(tenant_id=unique_id("tenant"))
    too_long: dict[str, Any] = {name: "x" * 1025}
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.invoke(workflow_id, attrs.evolve(base, **too_long))
    assert caught.value.field == f"request.{name}"
    assert "1025 characters" in str(caught.value)
    assert await runs_of(shared_provider, workflow_id) == []
    longest: dict[str, Any] = {name: "x" * 1024}
    fine = await shared_provider.invoke(workflow_id, attrs.evolve(base, **longest))
    assert (await wait_terminal(shared_provider, fine.execution_id)).state is (
        ExecutionState.SUCCEEDED
    )


async def test_any_mapping_is_the_json_object_it_holds(shared_provider: RestateProvider) -> None:
    """MappingProxyType (was a TypeError) runs as its object; invoke hashes it as a dict."""
    echo = await created(shared_provider, "GoPair")
    started = await shared_provider.start_execution(echo, ExecutionInput(
        input=types.MappingProxyType({"value": types.MappingProxyType({"n": (1, 2)})})
    ))
    status = await wait_terminal(shared_provider, started.execution_id)
    assert status.state is ExecutionState.SUCCEEDED
    assert status.output == {"echo": {"n": [1, 2]}}
    workflow_id = await created(shared_provider, "SleepThenCallback")
    tenant = unique_id("mapping")
    as_dict = await shared_provider.invoke(
        workflow_id, ProvisionRequest(tenant_id=tenant, desired_config={"image": {"tag": "1"}})
    )
    try:
        proxied = ProvisionRequest(tenant_id=tenant, desired_config=types.MappingProxyType(
            {"image": types.MappingProxyType({"tag": "1"})}))  # type: ignore[arg-type]
        again = await shared_provider.invoke(workflow_id, proxied)
        assert again.execution_id == as_dict.execution_id
    finally:
        await shared_provider.stop_execution(as_dict.execution_id, "test over")
    assert (await wait_terminal(shared_provider, as_dict.execution_id)).state is (
        ExecutionState.STOPPED
    )


async def test_one_and_one_point_zero_answer_one_run(shared_provider: RestateProvider) -> None:
    """{"replicas": 1} while {"replicas": 1.0} runs answers that run: one float64 in Go."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    tenant = unique_id("replicas")
    first = await shared_provider.invoke(
        workflow_id, ProvisionRequest(tenant_id=tenant, desired_config={"replicas": 1.0})
    )
    try:
        second = await shared_provider.invoke(
            workflow_id, ProvisionRequest(tenant_id=tenant, desired_config={"replicas": 1})
        )
        assert second.execution_id == first.execution_id
        assert second.message == "execution already started"
        assert len(await runs_of(shared_provider, workflow_id)) == 1
        other = await shared_provider.invoke(
            workflow_id, ProvisionRequest(tenant_id=tenant, desired_config={"replicas": 2})
        )
        assert other.execution_id != first.execution_id  # a changed configuration still is
    finally:
        for run in await runs_of(shared_provider, workflow_id):
            await shared_provider.stop_execution(run["id"], "test over")
    assert (await wait_terminal(shared_provider, first.execution_id)).state is (
        ExecutionState.STOPPED
    )


@pytest.mark.parametrize(
    "resource_ids",
    [{"ids": [UNPRINTABLE_INT]}, {"n": BEYOND_FLOAT64}, {"arn": "arn:\ud800"}, {"\udc00": "x"}],
    ids=["unprintable int", "int beyond float64", "lone surrogate", "surrogate key"],
)
async def test_a_callback_go_cannot_read_leaves_the_run_waiting(
    shared_provider: RestateProvider, resource_ids: dict[str, Any]
) -> None:
    """Huge ints or lone surrogates in resource_ids: refused by name; the run still waits."""
    workflow_id = await created(shared_provider, "SleepThenCallback")
    started = await shared_provider.start_execution(workflow_id, ExecutionInput(input={}))
    await wait_status(shared_provider, started.execution_id,
                      lambda s: bool(s.history) and s.history[-1].type == "callback_waiting")
    bad = ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded",
                                 resource_ids=resource_ids)
    with pytest.raises(InvalidInputError) as caught:
        await shared_provider.post_compute_callback(started.execution_id, bad)
    assert caught.value.field == "payload.resource_ids"
    assert not (await shared_provider.get_execution_status(started.execution_id)).state.is_terminal
    await shared_provider.post_compute_callback(started.execution_id, ComputeCallbackPayload(
        execution_id="c", tenant_id="t", status="succeeded", resource_ids={"ids": [1, 2.5]}))
    done = await wait_terminal(shared_provider, started.execution_id)
    assert done.state is ExecutionState.SUCCEEDED
    assert done.output["compute"]["resource_ids"] == {"ids": [1, 2.5]}


async def test_a_wait_timeout_beyond_float_is_refused() -> None:
    """wait_execution(id, timeout=10**400): InvalidInputError naming timeout, before I/O."""
    config = RestateConfig(endpoint="http://127.0.0.1:9", retry_window=timedelta(0))
    async with RestateProvider(config) as offline:
        with pytest.raises(InvalidInputError) as caught:
            await offline.wait_execution(EXECUTION_ID, timeout=BEYOND_FLOAT64)
    assert caught.value.field == "timeout"
