"""Bad input, generated: every malformed spec, name, id, payload, config or server answer
gets a typed WorkflowError naming what is wrong, and nothing stored in Restate changes."""

from __future__ import annotations

import asyncio
import json
import types
from collections import ChainMap
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

import attrs
import pytest
import yaml
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from landlord_restate import (
    ComputeCallbackPayload,
    ConfigError,
    ExecutionInput,
    InvalidInputError,
    InvalidSpecError,
    ProvisionRequest,
    RestateConfig,
    RestateProvider,
    RestateServerError,
    RestateUnavailableError,
    RetryPolicy,
    WorkflowError,
    WorkflowSpec,
    config_hash,
    from_json,
    load_config,
    to_json,
)
from landlord_restate.restate.limits import encode_json, json_problem
from landlord_restate.restate.naming import EXECUTION_NAME, INVOCATION_ID
from landlord_restate.restate.settings import KEYS, env_name
from tests.conftest import dead_endpoint, spec_for, unique_id
from tests.fakes import serve

OFFLINE = RestateConfig(endpoint=dead_endpoint(), admin_endpoint=dead_endpoint(),
                        retry_attempts=0, retry_window=timedelta(0))
EXAMPLES = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
spec_keys = st.sampled_from([
    "workflow_id", "provider_type", "name", "description", "definition", "timeout",
    "retry_policy", "tags", "provider_config", "unknown_key",
])
spec_like = st.dictionaries(spec_keys, json_values, max_size=9) | json_values
injections = st.sampled_from([
    "' OR '1'='1", "x'; DROP TABLE state; --", "../../deployments", "%2e%2e/admin",
    "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW'--", "\x00", "inv_" + "A" * 500,
])


def attempt(call: Callable[[], Any]) -> Exception | None:
    """What `call` raised, or None."""
    try:
        call()
    except Exception as exc:
        return exc
    return None


def offline(call: Callable[[RestateProvider], Awaitable[Any]]) -> BaseException | None:
    """Run `call` on a provider whose Restate is absent; answer what it raised."""

    async def run() -> BaseException | None:
        async with RestateProvider(OFFLINE) as provider:
            try:
                await call(provider)
            except Exception as exc:
                return exc
        return None

    return asyncio.run(run())


@EXAMPLES
@given(spec_like)
def test_any_json_as_a_spec(data: Any) -> None:
    """Any JSON: a WorkflowSpec, or InvalidSpecError naming a field; nothing else."""
    failed = attempt(lambda: from_json(WorkflowSpec, data))
    if failed is not None:
        assert isinstance(failed, InvalidSpecError), repr(failed)
        assert failed.field
        return
    spec = from_json(WorkflowSpec, data)
    raised = offline(lambda p: p.validate(spec))
    assert raised is None or isinstance(raised, InvalidSpecError), repr(raised)
    if isinstance(raised, InvalidSpecError):
        assert raised.field


@EXAMPLES
@given(definition=json_values, provider_config=json_values)
def test_any_definition_and_provider_config(definition: Any, provider_config: Any) -> None:
    """Any definition and provider_config: valid, or InvalidSpecError naming which."""
    spec = WorkflowSpec(
        workflow_id="tenant-provisioning", definition=definition, provider_config=provider_config
    )
    raised = offline(lambda p: p.validate(spec))
    if raised is not None:
        assert isinstance(raised, InvalidSpecError), repr(raised)
        assert raised.field is not None
        assert raised.field.split(".")[0] in ("definition", "provider_config")


@EXAMPLES
@given(st.text(max_size=200) | injections)
def test_any_execution_name(name: str) -> None:
    """Names outside Landlord's rule are InvalidInputError before any I/O."""
    raised = offline(lambda p: p.start_execution("tenant-provisioning",
                                                 ExecutionInput(execution_name=name)))
    assert isinstance(raised, WorkflowError), repr(raised)
    if name and not EXECUTION_NAME.fullmatch(name):
        assert isinstance(raised, InvalidInputError)
        assert raised.field == "execution_name"


@EXAMPLES
@given(st.text(max_size=120) | injections)
def test_any_execution_id(execution_id: str) -> None:
    """Ids that are not invocation ids never reach the server (here: no connection tried)."""
    for call in (
        lambda p: p.get_execution_status(execution_id),
        lambda p: p.stop_execution(execution_id, "x"),
    ):
        raised = offline(call)
        assert isinstance(raised, WorkflowError), repr(raised)
        if not INVOCATION_ID.fullmatch(execution_id):
            assert isinstance(raised, InvalidInputError)


SECRET = "rk_never_shown_7f3a"  # noqa: S105  (a canary, not a credential)


@EXAMPLES
@given(st.dictionaries(st.sampled_from(sorted(set(KEYS) - {"api_key"})),
                       st.text(max_size=40), max_size=6))
def test_any_environment(values: dict[str, str]) -> None:
    """Any WORKFLOW_RESTATE_* values: a checked config or ConfigError naming a key;
    the API key never shows."""
    env = {env_name(k): v for k, v in values.items()} | {env_name("api_key"): SECRET}
    raised = attempt(lambda: load_config(env=env))
    assert raised is None or isinstance(raised, ConfigError), repr(raised)
    if isinstance(raised, ConfigError):
        assert raised.key
        assert SECRET not in str(raised)


@EXAMPLES
@given(st.text(max_size=300) | json_values.map(lambda v: yaml.safe_dump({"workflow": v})))
def test_any_config_file(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    """Any file content: a config or ConfigError; never an unhandled exception."""
    path = tmp_path_factory.mktemp("cfg") / "config.yaml"
    path.write_text(text)
    raised = attempt(
        lambda: load_config(path, env={"WORKFLOW_RESTATE_ENDPOINT": "http://127.0.0.1:8080"})
    )
    assert raised is None or isinstance(raised, ConfigError), repr(raised)


@pytest.mark.parametrize(
    "value",
    [object(), float("nan"), {1, 2}, {"when": b"bytes"}, {"deep": [float("inf")]}],
    ids=["object", "nan", "set", "bytes", "inf"],
)
def test_inputs_that_are_not_json(value: Any) -> None:
    """Input Restate cannot carry: InvalidInputError naming input, before any I/O."""
    raised = offline(
        lambda p: p.start_execution("tenant-provisioning", ExecutionInput(input=value))
    )
    assert isinstance(raised, InvalidInputError)
    assert raised.field == "input"


def test_oversized_input_is_refused_before_sending() -> None:
    """Restate refuses bodies over 32 MiB: say so without sending 32 MiB."""
    big = "x" * (32 * 1024 * 1024 + 1)
    raised = offline(lambda p: p.start_execution("tenant-provisioning", ExecutionInput(input=big)))
    assert isinstance(raised, InvalidInputError)
    assert "32 MiB" in str(raised)
    assert raised.field == "input"


# -- nothing stored changes ---------------------------------------------------------------------


async def stored(provider: RestateProvider) -> tuple[Any, Any]:
    """What bad input must not change: catalog entries and execution runs."""
    catalog = await provider.admin.query(
        "SELECT service_key, value_utf8 FROM state WHERE service_name = 'LandlordCatalog' "
        "ORDER BY service_key"
    )
    runs = await provider.admin.query(
        "SELECT id, status FROM sys_invocation WHERE target_handler_name = 'run' ORDER BY id"
    )
    return catalog, [r["id"] for r in runs]


async def test_bad_input_changes_nothing_stored(shared_provider: RestateProvider) -> None:
    """A battery of bad calls against the real server: catalog and runs are unchanged."""
    good = spec_for("GoPair", unique_id("kept"))
    await shared_provider.create_workflow(good)
    before = await stored(shared_provider)
    bad_specs = [
        WorkflowSpec(workflow_id=good.workflow_id, definition={"handler": "lower"}),
        spec_for("GoPair", good.workflow_id, provider_config={"oops": 1}),
        spec_for("NotHosted", unique_id("nothosted")),
        WorkflowSpec(workflow_id="UPPER", definition={"handler": "GoPair"}),
    ]
    for spec in bad_specs:
        with pytest.raises(InvalidSpecError):
            await shared_provider.create_workflow(spec)
    bad_starts = [
        ExecutionInput(execution_name="bad name"),
        ExecutionInput(input={"x": object()}),
        ExecutionInput(input=float("nan")),
        ExecutionInput(tags={"k": 1}),  # type: ignore[dict-item]
    ]
    for execution in bad_starts:
        with pytest.raises(InvalidInputError):
            await shared_provider.start_execution(good.workflow_id, execution)
    for bad_id in ("x' OR '1'='1", "../deployments", "inv_" + "a" * 200):
        with pytest.raises(InvalidInputError):
            await shared_provider.get_execution_status(bad_id)
        with pytest.raises(InvalidInputError):
            await shared_provider.stop_execution(bad_id, "x")
    assert await stored(shared_provider) == before


# -- answers the provider did not expect --------------------------------------------------------


def odd_server(answer: Callable[[web.Request], web.Response]) -> web.Application:
    """A server that answers everything with `answer`."""
    app = web.Application()

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return answer(request)

    app.router.add_route("*", "/{tail:.*}", handle)
    return app


HTML = "<html><body><h1>502 Bad Gateway</h1>nginx</body></html>"
ODD_ANSWERS: dict[str, Callable[[web.Request], web.Response]] = {
    "html error page": lambda r: web.Response(status=502, text=HTML, content_type="text/html"),
    "html with 200": lambda r: web.Response(status=200, text=HTML, content_type="text/html"),
    "truncated json": lambda r: web.Response(status=200, text='{"rows": [{"id": "inv_',
                                             content_type="application/json"),
    "rows not a list": lambda r: web.json_response({"rows": "many"}),
    "json array": lambda r: web.json_response([1, 2, 3]),
    "unknown status": lambda r: web.json_response({"rows": [{
        "id": "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", "target_handler_name": "run",
        "target_service_name": "S", "target_service_key": "w.e", "status": "exploded",
        "created_at": "2026-01-01T00:00:00Z",
    }]}),
    "unknown completion": lambda r: web.json_response({"rows": [{
        "id": "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", "target_handler_name": "run",
        "target_service_name": "S", "target_service_key": "w.e", "status": "completed",
        "completion_result": "maybe", "created_at": "2026-01-01T00:00:00Z",
    }]}),
    "bad time": lambda r: web.json_response({"rows": [{
        "id": "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", "target_handler_name": "run",
        "target_service_name": "S", "target_service_key": "w.e", "status": "running",
        "created_at": "yesterday",
    }]}),
}


@pytest.fixture(params=sorted(ODD_ANSWERS))
async def odd_provider(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[str, RestateProvider]]:
    """A provider whose 'Restate' answers oddly."""
    async with serve(odd_server(ODD_ANSWERS[request.param])) as url:
        config = RestateConfig(
            endpoint=url, admin_endpoint=url, retry_attempts=0, retry_window=timedelta(0)
        )
        async with RestateProvider(config) as provider:
            yield request.param, provider


async def test_unexpected_answers_are_server_errors(
    odd_provider: tuple[str, RestateProvider],
) -> None:
    """HTML pages, truncated JSON, unknown statuses: RestateServerError with an excerpt.

    A 502 page is a proxy that lost Restate: transient, so once retries are spent it is
    RestateUnavailableError carrying the page as the reason.
    """
    kind, provider = odd_provider
    if kind == "html error page":
        with pytest.raises(RestateUnavailableError) as unavailable:
            await provider.get_execution_status("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
        assert "502 Bad Gateway" in unavailable.value.reason
        assert unavailable.value.status == 502
        assert isinstance(unavailable.value.__cause__, RestateServerError)
        return
    with pytest.raises(RestateServerError) as caught:
        await provider.get_execution_status("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW")
    assert caught.value.body, kind
    if "html" in kind:
        assert "502 Bad Gateway" in caught.value.body
    if kind in ("unknown status", "unknown completion"):
        assert ("exploded" if kind == "unknown status" else "maybe") in caught.value.body
    for call in (
        lambda: provider.create_workflow(spec_for("GoPair", "odd-one")),
        lambda: provider.start_execution("odd-one", ExecutionInput()),
    ):
        with pytest.raises(WorkflowError):
            await call()
    json.dumps(caught.value.body)  # printable, as it goes into logs


# -- shapes the hostile review found (issue 12) --------------------------------------------

#: names and ids that pass a rule but for a final newline
with_newline = st.from_regex(r"[a-zA-Z0-9_-]{1,40}", fullmatch=True).map(lambda s: s + "\n")
#: anything that is not a string where a string belongs
not_strings = st.integers() | st.binary(max_size=8) | st.floats() | st.none() | st.lists(
    st.text(max_size=3), max_size=2)


@EXAMPLES
@given(with_newline)
def test_a_final_newline_never_passes(name: str) -> None:
    """A trailing newline is refused as a workflow id, an execution name and an id."""
    for call in (
        lambda p: p.start_execution(name.lower(), ExecutionInput()),
        lambda p: p.start_execution("tenant-provisioning", ExecutionInput(execution_name=name)),
        lambda p: p.get_execution_status("inv_" + name),
    ):
        raised = offline(call)
        assert isinstance(raised, InvalidInputError | InvalidSpecError), repr(raised)


@EXAMPLES
@given(
    timeout=st.timedeltas(),
    interval=st.timedeltas(),
    attempts=st.integers(min_value=-(2**70), max_value=2**70),
    rate=st.floats(allow_nan=True, allow_infinity=True),
)
def test_extreme_durations_and_counts(
    timeout: timedelta, interval: timedelta, attempts: int, rate: float
) -> None:
    """Any duration, attempt count or rate: a valid spec, or InvalidSpecError naming it."""
    spec = WorkflowSpec(
        workflow_id="tenant-provisioning", definition={"handler": "TenantProvisioning"},
        timeout=timeout,
        retry_policy=RetryPolicy(max_attempts=attempts, backoff_rate=rate,
                                 initial_interval=interval),
    )
    raised = attempt(lambda: RestateProvider(OFFLINE).resolve(spec))
    assert raised is None or isinstance(raised, InvalidSpecError), repr(raised)
    if raised is None:  # what validates also goes to JSON within Go's int64
        encoded = to_json(spec)
        assert abs(encoded["timeout"]) < 2**63


@EXAMPLES
@given(st.integers(min_value=-(2**80), max_value=2**80) | st.text(max_size=30))
def test_any_duration_in_json(value: Any) -> None:
    """A spec's timeout as Go writes it (nanoseconds) or a person does ('30m'): read within
    Go's range, or InvalidSpecError naming timeout."""
    raised = attempt(lambda: from_json(WorkflowSpec, {"workflow_id": "w", "timeout": value}))
    assert raised is None or isinstance(raised, InvalidSpecError), repr(raised)


@EXAMPLES
@given(st.integers(min_value=0, max_value=3000))
def test_any_nesting_depth(depth: int) -> None:
    """Input nested to any depth: started, or InvalidInputError naming input; never a
    RecursionError."""
    value: Any = "leaf"
    for _ in range(depth):
        value = {"x": value} if depth % 2 else [value]
    raised = offline(lambda p: p.start_execution("tenant-provisioning",
                                                 ExecutionInput(input=value)))
    assert isinstance(raised, WorkflowError), repr(raised)
    if depth > 64:
        assert isinstance(raised, InvalidInputError)
        assert raised.field == "input"


@EXAMPLES
@given(value=not_strings, field=st.sampled_from(["trigger_source", "tags", "metadata"]))
def test_non_string_fields(value: Any, field: str) -> None:
    """A number, bytes or list where a string belongs: InvalidInputError naming the field."""
    fields: dict[str, Any] = {field: value if field == "trigger_source" else {"k": value}}
    raised = offline(lambda p: p.start_execution("tenant-provisioning",
                                                 ExecutionInput(**fields)))
    assert isinstance(raised, InvalidInputError), repr(raised)
    assert raised.field == field


@EXAMPLES
@given(value=not_strings, field=st.sampled_from(
    ["execution_id", "tenant_id", "status", "error_code", "error_message"]))
def test_non_string_callback_fields(value: Any, field: str) -> None:
    """The same for each string field of a compute callback payload."""
    fields = {"execution_id": "c", "tenant_id": "t", "status": "failed"} | {field: value}
    payload = ComputeCallbackPayload(**fields)
    raised = offline(lambda p: p.post_compute_callback(
        "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", payload))
    assert isinstance(raised, InvalidInputError), repr(raised)
    assert raised.field == f"payload.{field}"


# -- shapes the second hostile review found (issue 19) --------------------------------------

#: a lone UTF-16 surrogate somewhere in a string: no Unicode text, Go reads it as U+FFFD
surrogate_text = st.tuples(
    st.text(max_size=4), st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"]),
    st.text(max_size=4),
).map("".join)
#: ints around float64's edge (2**1024) and past what Python prints (4,300 digits);
#: drawn as powers, since hypothesis cannot show a strategy holding a 5,000-digit int
edge_ints = (
    st.integers(min_value=2**1023, max_value=2**1025)
    | st.sampled_from([308, 309, 400, 5000]).map(lambda digits: 10**digits)
).flatmap(lambda n: st.sampled_from([n, -n]))
hostile_keys = st.text(max_size=6) | surrogate_text
hostile_json = st.recursive(
    st.none() | st.booleans() | st.integers() | edge_ints | st.floats() | st.text(max_size=8)
    | surrogate_text,
    lambda inner: (
        st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
        | st.dictionaries(hostile_keys, inner, max_size=4)
        | st.dictionaries(hostile_keys, inner, max_size=4).map(types.MappingProxyType)
        | st.dictionaries(hostile_keys, inner, max_size=4).map(ChainMap)
    ),
    max_leaves=12,
)
hostile_objects = (
    st.dictionaries(hostile_keys, hostile_json, max_size=4)
    | st.dictionaries(hostile_keys, hostile_json, max_size=4).map(types.MappingProxyType)
)


def plain(value: Any) -> Any:
    """`value` with every Mapping a dict and every tuple a list: what JSON reads back."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


@EXAMPLES
@given(hostile_json)
@example(10**5000)
@example(types.MappingProxyType({"a": 1}))
@example({"x": "\ud800"})
def test_the_bounds_check_and_both_encoders_agree(value: Any) -> None:
    """What json_problem accepts both encoders encode; what it refuses both refuse, typed."""
    problem = json_problem(value)
    if problem is None:
        assert json.loads(encode_json(value, "input")) == plain(value)
        config_hash({"v": value})
        return
    with pytest.raises(InvalidInputError) as caught:
        encode_json(value, "input")
    assert caught.value.field == "input"
    with pytest.raises(InvalidInputError):
        config_hash({"v": value})


@EXAMPLES
@given(hostile_json)
def test_any_input_value(value: Any) -> None:
    """start_execution: InvalidInputError naming input, or sent (to an absent Restate)."""
    raised = offline(lambda p: p.start_execution("tenant-provisioning",
                                                 ExecutionInput(input=value)))
    if isinstance(raised, InvalidInputError):
        assert raised.field == "input"
        assert json_problem(value) is not None
    else:
        assert isinstance(raised, RestateUnavailableError), repr(raised)


@EXAMPLES
@given(hostile_objects)
@example({"replicas": 10**5000})
@example({"x": "\ud800"})
def test_any_desired_config(desired: Any) -> None:
    """invoke: InvalidInputError naming request.desired_config, or hashed and sent."""
    raised = offline(lambda p: p.invoke(
        "tenant-provisioning", ProvisionRequest(tenant_id="t", desired_config=desired)))
    if isinstance(raised, InvalidInputError):
        assert raised.field == "request.desired_config"
    else:
        assert isinstance(raised, RestateUnavailableError), repr(raised)


@EXAMPLES
@given(hostile_objects)
@example({"ids": [10**5000]})
def test_any_callback_resource_ids(resource_ids: Any) -> None:
    """A compute callback's resource_ids: InvalidInputError naming them, or sent."""
    payload = ComputeCallbackPayload(execution_id="c", tenant_id="t", status="succeeded",
                                     resource_ids=resource_ids)
    raised = offline(lambda p: p.post_compute_callback(
        "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", payload))
    if isinstance(raised, InvalidInputError):
        assert raised.field == "payload.resource_ids"
    else:
        assert isinstance(raised, RestateUnavailableError), repr(raised)


@EXAMPLES
@given(text=surrogate_text, field=st.sampled_from([
    "trigger_source", "tags", "metadata", "request.tenant_id", "request.tenant_uuid",
    "request.operation", "request.compute_provider", "payload.tenant_id",
    "payload.error_message",
]))
def test_lone_surrogates_in_string_fields(text: str, field: str) -> None:
    """A lone surrogate in any string field: InvalidInputError naming that field."""
    owner, _, name = field.rpartition(".")
    change: dict[str, Any] = {name: text}
    if owner == "request":
        request = attrs.evolve(ProvisionRequest(tenant_id="t"), **change)
        raised = offline(lambda p: p.invoke("tenant-provisioning", request))
    elif owner == "payload":
        payload = attrs.evolve(ComputeCallbackPayload(
            execution_id="c", tenant_id="t", status="failed"), **change)
        raised = offline(lambda p: p.post_compute_callback(
            "inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW", payload))
    else:
        fields: dict[str, Any] = {field: text if field == "trigger_source" else {"k": text}}
        raised = offline(lambda p: p.start_execution(
            "tenant-provisioning", ExecutionInput(**fields)))
    assert isinstance(raised, InvalidInputError), repr(raised)
    assert raised.field == field


@EXAMPLES
@given(st.integers() | edge_ints | st.floats() | st.none())
@example(10**400)
def test_any_wait_timeout(timeout: Any) -> None:
    """A timeout float64 cannot hold (10**400: OverflowError) is InvalidInputError, timeout."""
    raised = offline(lambda p: p.wait_execution("inv_1foAirY4KKzi2RJXBPQGnuUqPCtVxmQPQW",
                                                timeout=timeout))
    try:
        valid = timeout is None or 0 < float(timeout) < float("inf")
    except OverflowError:
        valid = False
    if valid:
        assert not isinstance(raised, InvalidInputError), repr(raised)
    else:
        assert isinstance(raised, InvalidInputError), repr(raised)
        assert raised.field == "timeout"
