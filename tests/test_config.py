"""Configuration: sources and their precedence, validation, mechanisms, secrets."""

from __future__ import annotations

import enum
import shutil
from datetime import timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, get_args, get_type_hints

import attrs
import pytest
from attrs import Attribute

from landlord_restate import (
    AuthType,
    ConfigError,
    ExecutionMechanism,
    RestateConfig,
    load_config,
)
from landlord_restate.doctor import shown_settings
from landlord_restate.restate.config import SECRET_KEYS
from landlord_restate.restate.settings import (
    ALIASES,
    KEYS,
    env_name,
    load_settings,
    parsers,
    split_flags,
)

FIXTURES = Path(__file__).parent / "fixtures" / "config"
YAML_FILE = FIXTURES / "landlord.yaml"


def test_yaml_file_in_landlords_layout() -> None:
    """workflow.restate of Landlord's config.yaml; its worker_* keys are accepted."""
    config = load_config(YAML_FILE, env={})
    assert config.endpoint == "http://restate.file:8080"
    assert config.admin_endpoint == "http://restate-admin.file:9070"
    assert config.execution_mechanism is ExecutionMechanism.SELF_HOSTED
    assert config.service_name == "FromFile"
    assert config.timeout == timedelta(minutes=45)
    assert config.retry_attempts == 5
    assert config.deployment_url == "http://workers.file:9080"


def test_toml_file_with_the_same_keys() -> None:
    """The same keys in TOML; kubernetes address built from service, namespace, port."""
    config = load_config(FIXTURES / "landlord.toml", env={})
    assert config.timeout == timedelta(hours=1, minutes=30)
    assert config.registration() == {
        "uri": "http://landlord-workers.tenants.svc.cluster.local:9081",
        "use_http_11": True,
        "additional_headers": {"x-alb-route": "landlord"},
    }


def test_each_precedence_step_with_all_three_sources() -> None:
    """defaults < file < environment < flags, each proven with all sources present."""
    env = {
        "WORKFLOW_RESTATE_SERVICE_NAME": "FromEnv",
        "WORKFLOW_RESTATE_RETRY_ATTEMPTS": "7",
        "WORKFLOW_RESTATE_TIMEOUT": "10m",
    }
    argv = ["--workflow.restate.retry_attempts=9", "--workflow.restate.timeout", "2h"]
    config = load_config(YAML_FILE, env=env, argv=argv)
    assert config.request_timeout == timedelta(seconds=30)  # default: no source sets it
    assert config.endpoint == "http://restate.file:8080"  # file over default
    assert config.service_name == "FromEnv"  # env over file
    assert config.retry_attempts == 9  # flag over env over file
    assert config.timeout == timedelta(hours=2)  # flag (space form) over env over file


def test_file_discovery_follows_landlord(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit path, then $LANDLORD_CONFIG, then ./config.yaml."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="endpoint is required"):
        load_config(env={})
    shutil.copy(YAML_FILE, tmp_path / "config.yaml")
    assert load_config(env={}).endpoint == "http://restate.file:8080"
    other = tmp_path / "other.yaml"
    other.write_text("workflow:\n  restate:\n    endpoint: http://from-env-file:8080\n")
    assert load_config(env={"LANDLORD_CONFIG": str(other)}).endpoint == (
        "http://from-env-file:8080"
    )
    explicit = tmp_path / "explicit.toml"
    explicit.write_text('[workflow.restate]\nendpoint = "http://explicit:8080"\n')
    assert load_config(explicit, env={"LANDLORD_CONFIG": str(other)}).endpoint == (
        "http://explicit:8080"
    )


def test_landlord_environment_names() -> None:
    """Every key has its WORKFLOW_RESTATE_* name; worker_advertised_url is an alias."""
    env = {
        "WORKFLOW_RESTATE_ENDPOINT": "https://restate.example.com",
        "WORKFLOW_RESTATE_ADMIN_ENDPOINT": "https://admin.example.com",
        "WORKFLOW_RESTATE_EXECUTION_MECHANISM": "fargate",
        "WORKFLOW_RESTATE_AUTH_TYPE": "api_key",
        "WORKFLOW_RESTATE_API_KEY": "rk_secret",
        "WORKFLOW_RESTATE_WORKER_ADVERTISED_URL": "http://workers.internal:9080",
        "WORKFLOW_RESTATE_USE_HTTP_11": "true",
        "WORKFLOW_RESTATE_DEPLOYMENT_HEADERS": "x-a=1, x-b=2",
    }
    config = load_config(env=env)
    assert config.admin_endpoint == "https://admin.example.com"
    assert config.auth_type is AuthType.API_KEY
    assert config.auth_headers() == {"Authorization": "Bearer rk_secret"}
    assert config.registration() == {
        "uri": "http://workers.internal:9080",
        "use_http_11": True,
        "additional_headers": {"x-a": "1", "x-b": "2"},
    }


def test_admin_endpoint_defaults_to_endpoint_host_on_9070() -> None:
    """Default admin: the endpoint's scheme and host, port 9070."""
    assert RestateConfig(endpoint="https://r.example.com:8443/x").admin_endpoint == (
        "https://r.example.com:9070"
    )
    assert RestateConfig(endpoint="http://[::1]:8080").admin_endpoint == "http://[::1]:9070"


def test_flags_are_taken_out_of_argv() -> None:
    """split_flags leaves other arguments for the program that owns them."""
    flags, rest = split_flags(["status", "--workflow.restate.endpoint=http://x:1", "--json"])
    assert flags == {"endpoint": "http://x:1"}
    assert rest == ["status", "--json"]


LOCAL = {"endpoint": "http://127.0.0.1:8080"}


@pytest.mark.parametrize(
    ("settings", "key", "words"),
    [
        ({}, "endpoint", "endpoint is required"),
        ({"endpoint": "restate:8080"}, "endpoint", "'restate:8080' has no scheme"),
        ({"endpoint": "127.0.0.1:8080"}, "endpoint", "'127.0.0.1:8080' has no scheme"),
        ({"endpoint": "ftp://r:21"}, "endpoint", "only http and https"),
        ({"endpoint": "http://"}, "endpoint", "has no host"),
        (LOCAL | {"admin_endpoint": "admin"}, "admin_endpoint", "'admin' has no scheme"),
        (LOCAL | {"execution_mechanism": "docker"}, "execution_mechanism",
         "local, self-hosted, kubernetes, fargate, lambda"),
        (LOCAL | {"auth_type": "oauth"}, "auth_type", "none, api_key, iam"),
        (LOCAL | {"auth_type": "api_key"}, "api_key", "needs api_key"),
        (LOCAL | {"auth_type": "iam"}, "auth_type", "iam is for execution_mechanism lambda"),
        (LOCAL | {"execution_mechanism": "lambda"}, "lambda_arn", "needs lambda_arn"),
        (LOCAL | {"execution_mechanism": "lambda", "lambda_arn": "my-fn"}, "lambda_arn",
         "must be a qualified Lambda function ARN"),
        (LOCAL | {"execution_mechanism": "kubernetes"}, "kubernetes_service",
         "kubernetes_service and kubernetes_namespace"),
        (LOCAL | {"execution_mechanism": "kubernetes", "kubernetes_service": "w"},
         "kubernetes_namespace", "kubernetes_namespace"),
        (LOCAL | {"execution_mechanism": "kubernetes", "deployment_url": "http://127.0.0.1:9"},
         "deployment_url", "loopback"),
        (LOCAL | {"execution_mechanism": "fargate", "deployment_url": "http://localhost:9080"},
         "deployment_url", "loopback"),
        (LOCAL | {"execution_mechanism": "lambda", "lambda_arn": "arn:aws:lambda:x",
                  "deployment_url": "http://[::1]:9080"}, "deployment_url", "loopback"),
        (LOCAL | {"execution_mechanism": "self-hosted"}, "deployment_url", "needs deployment_url"),
        (LOCAL | {"execution_mechanism": "fargate"}, "deployment_url", "needs deployment_url"),
        (LOCAL | {"timeout": "0s"}, "timeout", "timeout must be positive"),
        (LOCAL | {"timeout": "-5m"}, "timeout", "timeout must be positive"),
        (LOCAL | {"retry_attempts": "-1"}, "retry_attempts", "zero or more"),
        (LOCAL | {"retry_attempts": "three"}, "retry_attempts", "must be an integer"),
        (LOCAL | {"timeout": "30"}, "timeout", "invalid duration"),
        (LOCAL | {"use_http_11": "maybe"}, "use_http_11", "true or false"),
        (LOCAL | {"deployment_headers": "novalue"}, "deployment_headers", "Name=value"),
    ],
)
def test_invalid_settings_are_config_errors(settings: dict[str, str], key: str, words: str) -> None:
    """Each bad setting: ConfigError naming the key, with words a person can act on."""
    env = {f"WORKFLOW_RESTATE_{k.upper()}": v for k, v in settings.items()}
    with pytest.raises(ConfigError) as caught:
        load_config(env=env)
    assert caught.value.key == key
    assert words in str(caught.value)


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    """A misspelt key in a file or flag is refused by name, with the known ones listed."""
    file = tmp_path / "c.yaml"
    file.write_text("workflow:\n  restate:\n    endpoint: http://x:1\n    endpont: typo\n")
    with pytest.raises(ConfigError, match=r"unknown key 'endpont'; known: .*endpoint"):
        load_config(file, env={})
    with pytest.raises(ConfigError, match=r"flag --workflow\.restate\.retries"):
        load_config(env=LOCAL_ENV, argv=["--workflow.restate.retries=2"])


def test_broken_files_are_config_errors(tmp_path: Path) -> None:
    """Missing file, bad YAML, wrong shape: ConfigError naming the file."""
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "absent.yaml", env={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("workflow: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid"):
        load_config(bad, env={})
    shape = tmp_path / "shape.yaml"
    shape.write_text("workflow:\n  restate: 3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(shape, env={})


LOCAL_ENV = {"WORKFLOW_RESTATE_ENDPOINT": "http://127.0.0.1:8080"}


def test_secrets_never_show(tmp_path: Path) -> None:
    """api_key stays out of repr, str and error messages."""
    config = load_config(env=LOCAL_ENV | {
        "WORKFLOW_RESTATE_AUTH_TYPE": "api_key", "WORKFLOW_RESTATE_API_KEY": "rk_topsecret",
    })
    assert "rk_topsecret" not in repr(config)
    assert "rk_topsecret" not in str(config)
    assert "api_key='***'" in repr(config)
    file = tmp_path / "c.yaml"
    file.write_text("workflow:\n  restate:\n    endpoint: http://x:1\n    api_key: [rk_listed]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(file, env={})
    assert "rk_listed" not in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "registration"),
    [
        ({}, {"uri": "http://127.0.0.1:9080"}),
        ({"execution_mechanism": "self-hosted", "deployment_url": "https://w.example.com"},
         {"uri": "https://w.example.com"}),
        ({"execution_mechanism": "kubernetes", "kubernetes_service": "workers",
          "kubernetes_namespace": "landlord"},
         {"uri": "http://workers.landlord.svc.cluster.local:9080"}),
        ({"execution_mechanism": "kubernetes", "kubernetes_service": "workers",
          "kubernetes_namespace": "landlord", "deployment_url": "http://override:1"},
         {"uri": "http://override:1"}),
        ({"execution_mechanism": "fargate", "deployment_url": "http://alb.internal:80",
          "use_http_11": True, "deployment_headers": {"x-route": "landlord"}},
         {"uri": "http://alb.internal:80", "use_http_11": True,
          "additional_headers": {"x-route": "landlord"}}),
        ({"execution_mechanism": "lambda", "auth_type": "iam",
          "lambda_arn": "arn:aws:lambda:eu-west-1:123456789012:function:landlord:3",
          "assume_role_arn": "arn:aws:iam::123456789012:role/restate"},
         {"arn": "arn:aws:lambda:eu-west-1:123456789012:function:landlord:3",
          "assume_role_arn": "arn:aws:iam::123456789012:role/restate"}),
    ],
)
def test_registration_per_mechanism(settings: dict[str, Any], registration: dict[str, Any]) -> None:
    """What create_workflow registers, per execution mechanism."""
    config = RestateConfig(endpoint="http://127.0.0.1:8080", **settings).check()
    assert config.registration() == registration


@pytest.mark.parametrize("name", ["local.yaml", "self-hosted-api-key.yaml", "kubernetes.toml",
                                  "lambda.yaml"])
def test_the_readme_example_configs_load(name: str) -> None:
    """Every example config in examples/ is valid (the API key comes from the environment)."""
    env = {"WORKFLOW_RESTATE_API_KEY": "rk_example"}
    config = load_config(Path(__file__).parent.parent / "examples" / name, env=env)
    assert config.registration()


# -- endpoints: several nodes, each validated ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("http://127.0.0.1:99999", "port 99999, outside 1-65535"),
        ("http://127.0.0.1:abc", "not a number"),
        ("http://127.0.0.1:0", "outside 1-65535"),
        ("http://127.0.0.1:", "empty port"),
        ("http://exa mple.com", "whitespace"),
        ("http://example.com\n", "whitespace"),
        ("http://example.com/?x=1", "query or fragment"),
        ("http://example.com/#top", "query or fragment"),
        ("http://example.com?", "query or fragment"),
        ("http://[::1", "not a valid URL"),
        ("http://[zz::1]:8080", "not a valid URL"),
        ("http://exa$mple.com", "invalid host"),
        ("restate:8080", "no scheme"),
        ("http://127.0.0.1:8080,", "entry 2 of 2 is empty"),
        (",http://127.0.0.1:8080", "entry 1 of 2 is empty"),
        ("http://a:1, ftp://b:2", "entry 2 of 2 'ftp://b:2' has scheme 'ftp'"),
    ],
)
@pytest.mark.parametrize("key", ["endpoint", "admin_endpoint"])
def test_malformed_endpoints_are_refused(key: str, value: str, words: str) -> None:
    """Each malformed URL, alone or in a list: ConfigError naming the key and the entry."""
    settings: dict[str, Any] = {"endpoint": "http://127.0.0.1:8080", key: value}
    with pytest.raises(ConfigError) as caught:
        RestateConfig(**settings).check()
    assert caught.value.key == key
    assert words in str(caught.value)
    assert key in str(caught.value)


@pytest.mark.parametrize("key", ["endpoint", "admin_endpoint", "deployment_url"])
def test_credentials_in_a_url_are_refused_without_repeating_them(key: str) -> None:
    """user:password@ in any URL: refused, pointing at api_key; the password is not shown."""
    settings: dict[str, Any] = {"endpoint": "http://127.0.0.1:8080"}
    settings[key] = "http://admin:hunter2@restate.example.com:8080"
    with pytest.raises(ConfigError) as caught:
        RestateConfig(**settings).check()
    assert caught.value.key == key
    assert "api_key" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "admin:" not in str(caught.value)
    assert "***@restate.example.com" in str(caught.value)


def test_an_endpoint_list_from_each_source(tmp_path: Path) -> None:
    """A comma-separated string (env, flags, Python) or a list (YAML, TOML) of nodes."""
    nodes = ("http://127.0.0.1:28080", "http://127.0.0.1:28081", "http://127.0.0.1:28082")
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("workflow:\n  restate:\n    endpoint:\n" +
                         "".join(f"      - {n}\n" for n in nodes))
    toml_file = tmp_path / "c.toml"
    toml_file.write_text("[workflow.restate]\nendpoint = [" +
                         ", ".join(f'"{n}"' for n in nodes) + "]\n")
    joined = ", ".join(nodes)
    for config in (
        load_config(yaml_file, env={}),
        load_config(toml_file, env={}),
        load_config(env={"WORKFLOW_RESTATE_ENDPOINT": joined}),
        load_config(env={}, argv=[f"--workflow.restate.endpoint={joined}"]),
        RestateConfig(endpoint=joined).check(),
        RestateConfig(endpoint=list(nodes)).check(),
    ):
        assert config.endpoints == nodes
        # the admin API of each node, derived from its ingress address
        assert config.admin_endpoints == tuple(
            n.rsplit(":", 1)[0] + ":9070" for n in nodes
        )


def test_an_empty_or_mixed_endpoint_list_in_a_file_is_refused(tmp_path: Path) -> None:
    """A YAML list with an empty entry, or a non-string, names the key."""
    for body, words in (
        ("endpoint:\n      - http://127.0.0.1:1\n      - ''\n", "entry 2 of 2 is empty"),
        ("endpoint:\n      - http://127.0.0.1:1\n      - 7\n", "list of URLs"),
        ("endpoint: []\n", "list of URLs"),
    ):
        file = tmp_path / "c.yaml"
        file.write_text("workflow:\n  restate:\n    " + body)
        with pytest.raises(ConfigError) as caught:
            load_config(file, env={})
        assert caught.value.key == "endpoint"
        assert words in str(caught.value)


def test_retry_window_is_a_duration() -> None:
    """retry_window reads like every duration and refuses negatives."""
    config = load_config(env=LOCAL_ENV | {"WORKFLOW_RESTATE_RETRY_WINDOW": "45s"})
    assert config.retry_window == timedelta(seconds=45)
    assert load_config(env=LOCAL_ENV).retry_window == timedelta(seconds=30)
    with pytest.raises(ConfigError) as caught:
        load_config(env=LOCAL_ENV | {"WORKFLOW_RESTATE_RETRY_WINDOW": "-1s"})
    assert caught.value.key == "retry_window"


# -- deployment headers and endpoint lists: refused early, named, secrets unshown ----------


@pytest.mark.parametrize(
    ("headers", "name", "words"),
    [
        ({"X-Token": "s3cret\r\nX-Evil: 1"}, "X-Token", "line break"),
        ({"X-Token": "s3cret\n"}, "X-Token", "line break"),
        ({"X-Token": "s3\x00cret"}, "X-Token", "control character"),
        ({"X Token": "s3cret"}, "X Token", "not a valid HTTP header name"),
        ({"X-Token:": "s3cret"}, "X-Token:", "not a valid HTTP header name"),
        ({"X-Tök": "s3cret"}, "X-Tök", "not a valid HTTP header name"),
        ({"": "s3cret"}, "", "not a valid HTTP header name"),
    ],
)
def test_deployment_headers_that_http_cannot_carry_are_refused(
    headers: dict[str, str], name: str, words: str
) -> None:
    """A header name that is not an RFC 7230 token, or a value with a line break or another
    control character: ConfigError naming `deployment_headers.<name>` at check time (not
    Restate's 422 at create_workflow), the value never shown."""
    for source in ("python", "env"):
        if source == "python":
            config = RestateConfig(endpoint="http://127.0.0.1:8080", deployment_headers=headers)
            with pytest.raises(ConfigError) as caught:
                config.check()
        else:
            if "\n" in "".join(headers.values()) or not name.strip():
                continue  # the Name=value form strips surrounding whitespace; empty is refused
            env = LOCAL_ENV | {"WORKFLOW_RESTATE_DEPLOYMENT_HEADERS": ",".join(
                f"{k}={v}" for k, v in headers.items())}
            with pytest.raises(ConfigError) as caught:
                load_config(env=env)
        assert caught.value.key == f"deployment_headers.{name}", source
        assert words in str(caught.value)
        assert "s3" not in str(caught.value)
        assert "cret" not in str(caught.value)
    valid = RestateConfig(endpoint="http://127.0.0.1:8080",
                          deployment_headers={"X-Route": "a b\tc", "x_ok!": "1"}).check()
    assert "a b" not in repr(valid)  # values are not in reprs either: they may be secrets


def test_an_endpoint_list_written_with_semicolons_says_so() -> None:
    """`http://a:8080;http://b:8080` is named as a list separated the wrong way, not as a
    strange port."""
    for key in ("endpoint", "admin_endpoint"):
        settings: dict[str, Any] = {"endpoint": "http://127.0.0.1:8080",
                                    key: "http://a:8080;http://b:8080"}
        with pytest.raises(ConfigError) as caught:
            RestateConfig(**settings).check()
        assert caught.value.key == key
        assert "separated by commas, not semicolons" in str(caught.value)
        assert "outside 1-65535" not in str(caught.value)


# -- one source per setting: RestateConfig's fields are the keys ----------------------------


def _sample(attribute: Attribute[Any], kind: Any) -> tuple[str, Any]:
    """A value of a field's type as a source writes it, and as it is read."""
    if attribute.metadata.get("urls"):
        return "http://a:1, http://b:2", "http://a:1, http://b:2"
    if isinstance(kind, UnionType):
        kind = next(arg for arg in get_args(kind) if arg is not NoneType)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        member = list(kind)[-1]
        return str(member.value), member
    samples: dict[Any, tuple[str, Any]] = {
        str: ("x", "x"),
        int: ("7", 7),
        bool: ("true", True),
        timedelta: ("1m30s", timedelta(seconds=90)),
        dict[str, str]: ("X-A=1,X-B=2", {"X-A": "1", "X-B": "2"}),
    }
    return samples[kind]


def test_every_field_is_a_key_in_every_source_and_nothing_else_is() -> None:
    """Each RestateConfig field is a key, read by its type from WORKFLOW_RESTATE_<KEY> and
    --workflow.restate.<key>; no key is anything but a field (or Landlord's alias of one).
    A new field is a new key with no other edit."""
    hints = get_type_hints(RestateConfig)
    names = {a.name for a in attrs.fields(RestateConfig)}
    assert set(KEYS) == names
    assert set(ALIASES.values()) <= names
    for attribute in attrs.fields(RestateConfig):
        text, value = _sample(attribute, hints[attribute.name])
        env = {f"WORKFLOW_RESTATE_{attribute.name.upper()}": text}
        assert env_name(attribute.name) in env
        assert load_settings(env=env, working_directory=False) == {attribute.name: value}
        flag = f"--workflow.restate.{attribute.name}={text}"
        assert load_settings(env={}, argv=[flag], working_directory=False) == {
            attribute.name: value
        }
    ignored = {"WORKFLOW_RESTATE_NOT_A_FIELD": "1"}
    assert load_settings(env=ignored, working_directory=False) == {}


def test_a_field_of_a_type_no_source_reads_fails_at_import() -> None:
    """A field whose type has no reader is named when the keys are derived, not at a
    user's first load."""

    @attrs.frozen(kw_only=True)
    class Odd:
        ratio: complex = 1j

    with pytest.raises(TypeError, match="setting ratio: no reader"):
        parsers(Odd)


def test_secret_keys_are_the_fields_marked_secret() -> None:
    """One list of secrets, from the fields' metadata: masked in reprs and the doctor's
    settings, never in messages."""
    assert {"api_key", "deployment_headers"} == SECRET_KEYS
    config = RestateConfig(endpoint="http://127.0.0.1:8080", auth_type="api_key",
                           api_key="rk_canary", deployment_headers={"X-Key": "hdr_canary"})
    assert "canary" not in repr(config)
    assert "canary" not in str(shown_settings(config))
    assert shown_settings(config)["deployment_headers"] == {"X-Key": "***"}
    for key, bad in (("api_key", "rk canary"), ("deployment_headers", "hdr_canary")):
        env = LOCAL_ENV | {"WORKFLOW_RESTATE_AUTH_TYPE": "api_key", env_name(key): bad}
        with pytest.raises(ConfigError) as caught:
            load_config(env={"WORKFLOW_RESTATE_API_KEY": "rk_ok"} | env)
        assert caught.value.key == key
        assert "canary" not in str(caught.value)
