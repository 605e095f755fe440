"""Build a RestateConfig from Landlord's sources: defaults < file < environment < flags.

- File: Landlord's `config.yaml` layout (`workflow: restate: {...}`) or the same keys in
  TOML (`[workflow.restate]`). Found as Landlord finds it: the explicit path, then
  `$LANDLORD_CONFIG`, then `./config.yaml`.
- Environment: Landlord's names, `WORKFLOW_RESTATE_<KEY>` (e.g. `WORKFLOW_RESTATE_ENDPOINT`).
- Flags: `--workflow.restate.<key>=<value>` (or `--workflow.restate.<key> <value>`).

`env` and `argv` are parameters so tests (and the CLI) can inject them.

The keys are RestateConfig's fields, each read by the reader of its type (or, for a URL
list, of its metadata): a new field is a new key in every source, with nothing to add here.
Landlord's worker keys (`worker_*`, `WorkerConfig`'s fields) are read the same way by
`load_worker_config`, for the handler deployment; the provider accepts them from every
source and ignores those that are not its own. `read_compute_config` reads the file's
top-level `compute:` section (Landlord's compute providers), for the deployment too.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import enum
import os
import reprlib
import tomllib
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from types import NoneType, UnionType
from typing import Any

import yaml
from attrs import Attribute, fields

from landlord_restate.restate.config import (
    SECRET_KEYS,
    RestateConfig,
    WorkerConfig,
    parse_member,
)
from landlord_restate.workflow.convert import GO_DURATION_MAX_NANOS, parse_go_duration
from landlord_restate.workflow.errors import ConfigError

CONFIG_ENV = "LANDLORD_CONFIG"
DEFAULT_CONFIG_FILE = "config.yaml"
ENV_PREFIX = "WORKFLOW_RESTATE_"
FLAG_PREFIX = "--workflow.restate."
#: Landlord's name for a key, and ours
ALIASES = {"worker_advertised_url": "deployment_url"}


#: reads one value of a key from a file, the environment or a flag; TypeError says what
#: is wrong with it
Parser = Callable[[Any, str], Any]


def _text(value: Any, _: str) -> str:
    if not isinstance(value, str):
        raise TypeError("must be a string")
    return value


def _urls(value: Any, _: str) -> str:
    """One URL, a comma-separated list (environment, flags), or a list (file)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        if any("," in v for v in value):
            raise TypeError("list entries must be single URLs (no commas)")
        return ",".join(value)
    raise TypeError("must be a URL, a comma-separated list of URLs, or a list of URLs")


def _integer(value: Any, _: str) -> int:
    if isinstance(value, bool):
        raise TypeError("must be an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise TypeError("must be an integer") from None
    raise TypeError("must be an integer")


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _boolean(value: Any, _: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise TypeError("must be true or false")


def _duration(value: Any, _: str) -> timedelta:
    """Go's rules: a string needs units ("30m"); a number from a file is nanoseconds."""
    if isinstance(value, bool):
        raise TypeError("must be a duration such as '30m'")
    if isinstance(value, int):
        if abs(value) > GO_DURATION_MAX_NANOS:
            raise TypeError("is out of Go's duration range (int64 nanoseconds)")
        return timedelta(microseconds=value / 1000)
    if isinstance(value, str):
        try:
            return parse_go_duration(value)
        except ValueError as exc:
            raise TypeError(str(exc)) from None
    raise TypeError("must be a duration such as '30m'")


def _headers(value: Any, _: str) -> dict[str, str]:
    """A mapping (file), or 'Name=value,Other=value' (environment, flags)."""
    if isinstance(value, str):
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        if any(len(pair) != 2 or not pair[0].strip() for pair in pairs):
            raise TypeError("must be Name=value pairs separated by commas")
        return {name.strip(): text.strip() for name, text in pairs}
    if isinstance(value, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        return dict(value)
    raise TypeError("must map header names to string values")


def _choice(kind: type[enum.Enum]) -> Parser:
    def parse(value: Any, _: str) -> Any:
        try:
            return parse_member(kind, value)
        except ValueError as exc:
            raise TypeError(str(exc)) from None

    return parse


#: how a value of each field type is read; an enum field takes its members' spellings
_BY_TYPE: dict[Any, Parser] = {
    str: _text,
    int: _integer,
    bool: _boolean,
    timedelta: _duration,
    dict[str, str]: _headers,
}


def parsers(cls: type) -> dict[str, Parser]:
    """Every key of the attrs class `cls` (a field each), with how to read its value: from
    the field's metadata (a URL list) or its type (`X | None` reads as `X`)."""
    hints = typing.get_type_hints(cls)
    return {a.name: _parser(a, hints[a.name]) for a in fields(cls)}


def _parser(attribute: Attribute[Any], kind: Any) -> Parser:
    if attribute.metadata.get("urls"):
        return _urls
    if isinstance(kind, UnionType):  # `str | None`: unset is the default, not a value
        kind = next(arg for arg in typing.get_args(kind) if arg is not NoneType)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return _choice(kind)
    try:
        return _BY_TYPE[kind]
    except KeyError:
        raise TypeError(
            f"setting {attribute.name}: no reader for type {kind!r}; add one to _BY_TYPE"
        ) from None


#: every key, with how to read its value: RestateConfig's fields
KEYS: dict[str, Parser] = parsers(RestateConfig)
#: Landlord's worker keys, with how to read them: WorkerConfig's fields
WORKER_KEYS: dict[str, Parser] = parsers(WorkerConfig)
#: Landlord's worker settings the provider accepts from every source and does not use
LANDLORD_ONLY_KEYS = frozenset(WORKER_KEYS) - set(KEYS) - set(ALIASES)


def env_name(key: str) -> str:
    """Landlord's environment variable for `key`."""
    return ENV_PREFIX + key.upper()


def find_config_file(
    path: str | os.PathLike[str] | None,
    env: Mapping[str, str],
    *,
    working_directory: bool = True,
) -> Path | None:
    """The explicit path, else $LANDLORD_CONFIG, else (with `working_directory`, as
    Landlord's own tools do) ./config.yaml if it exists."""
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path(DEFAULT_CONFIG_FILE)
    return default if working_directory and default.is_file() else None


#: a config file holds a few dozen values; more (YAML aliases can multiply them without
#: bound: a "billion laughs") or deeper is refused before anything walks or prints it
_MAX_FILE_VALUES = 10_000
_MAX_FILE_DEPTH = 32
_MAX_FILE_BYTES = 1024 * 1024
#: how much of a value a message may show
_SHOWN = reprlib.Repr()
_SHOWN.maxstring = _SHOWN.maxother = 80
_SHOWN.maxlist = _SHOWN.maxdict = 6
_SHOWN.maxlevel = 2


def read_file(path: Path) -> dict[str, Any]:
    """The `workflow.restate` section of a YAML or TOML config file."""
    section = read_document(path)
    if section is None:  # an empty file
        return {}
    for name in ("workflow", "restate"):
        if not isinstance(section, Mapping):
            raise ConfigError(f"config file {path}: expected a mapping above '{name}'")
        section = section.get(name) or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"config file {path}: workflow.restate must be a mapping")
    return dict(section)


def read_compute_section(path: Path) -> dict[str, Any]:
    """The top-level `compute:` section of a YAML or TOML config file (Landlord's compute
    providers, by name, and `default_provider`); empty when there is none."""
    document = read_document(path)
    if not isinstance(document, Mapping):
        return {}
    section = document.get("compute")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"config file {path}: compute must be a mapping of compute "
                          f"providers, got {type(section).__name__}", key="compute")
    return dict(section)


def read_compute_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    working_directory: bool = True,
) -> dict[str, Any]:
    """The `compute:` section of the config file found as `load_config` finds it."""
    env = os.environ if env is None else env
    file = find_config_file(path, env, working_directory=working_directory)
    return {} if file is None else read_compute_section(file)


def read_document(path: Path) -> Any:
    """A YAML or TOML config file, parsed and checked for size (None when empty)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError(f"config file {path} is {len(raw)} bytes; at most "
                          f"{_MAX_FILE_BYTES} are read")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text (byte {exc.start}: {exc.reason})"
        ) from None
    try:
        document = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, RecursionError) as exc:
        raise ConfigError(
            f"config file {path} is not valid: {_SHOWN.repr(str(exc))[1:-1]}"
        ) from None
    _check_size(document, path)
    return document


def _check_size(document: Any, path: Path) -> None:
    """Refuse a document with more values or nesting than a config file ever needs."""
    budget = _MAX_FILE_VALUES
    stack: list[tuple[Any, int]] = [(document, 0)]
    while stack:
        value, depth = stack.pop()
        budget -= 1
        if budget < 0 or depth > _MAX_FILE_DEPTH:
            raise ConfigError(
                f"config file {path} holds more than {_MAX_FILE_VALUES} values or nests deeper "
                f"than {_MAX_FILE_DEPTH} levels (YAML aliases expand?); a config file is small"
            )
        if isinstance(value, Mapping):
            stack.extend((v, depth + 1) for v in value.values())
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def split_flags(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Take the `--workflow.restate.<key>` flags out of `argv`; answer them and the rest."""
    flags: dict[str, str] = {}
    rest: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if not arg.startswith(FLAG_PREFIX):
            rest.append(arg)
            continue
        key, sep, value = arg[len(FLAG_PREFIX):].partition("=")
        if not sep:
            if not args:
                raise ConfigError(f"flag {arg} needs a value", key=key)
            value = args.pop(0)
        flags[key] = value
    return flags, rest


def _normalize(raw: Mapping[str, Any], source: str) -> dict[str, Any]:
    """The provider's keys of `raw`, read; Landlord's worker keys it does not use are
    skipped, any other key is refused naming the known ones."""
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if name in LANDLORD_ONLY_KEYS:
            continue
        key = ALIASES.get(name, name)
        parse = KEYS.get(key) if isinstance(key, str) else None
        if parse is None:
            known = ", ".join(sorted([*KEYS, *ALIASES, *LANDLORD_ONLY_KEYS]))
            shown = _SHOWN.repr(name)
            raise ConfigError(f"{source}: unknown key {shown}; known: {known}",
                              key=str(name)[:80])
        _read_into(values, key, name, value, parse, source)
    return values


def _read_into(
    values: dict[str, Any], key: str, name: Any, value: Any, parse: Parser, source: str
) -> None:
    """`values[key]` = `value` read by `parse`; ConfigError naming the source and key (a
    secret's value never shown). Unset (None, "") is the default, not a value."""
    if value is None or value == "":
        return
    try:
        values[key] = parse(value, key)
    except TypeError as exc:
        shown = "" if key in SECRET_KEYS else f" {_SHOWN.repr(value)}"
        raise ConfigError(f"{source}: {name}{shown} {exc}", key=key) from None


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    *,
    working_directory: bool = True,
) -> dict[str, Any]:
    """The merged settings (file < env < flags), keyed like RestateConfig's fields.

    `working_directory=False` reads no ./config.yaml unless $LANDLORD_CONFIG names it: for
    a process (the handler deployment) whose working directory is not a choice of config.
    """
    env = os.environ if env is None else env
    merged: dict[str, Any] = {}
    file = find_config_file(path, env, working_directory=working_directory)
    if file is not None:
        merged.update(_normalize(read_file(file), f"config file {file}"))
    from_env = {
        name: env[env_name(name)] for name in [*KEYS, *ALIASES] if env.get(env_name(name))
    }
    for name, value in from_env.items():
        merged.update(_normalize({name: value}, f"environment {env_name(name)}"))
    flags, _ = split_flags(argv or [])
    for name, value in flags.items():
        merged.update(_normalize({name: value}, f"flag {FLAG_PREFIX}{name}"))
    return merged


def load_worker_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
    *,
    working_directory: bool = True,
) -> WorkerConfig:
    """Landlord's worker keys (file < `WORKFLOW_RESTATE_WORKER_*` < flags), checked.

    Only the `worker_*` keys are read here; the rest of each source is the provider's
    (`load_settings` reads and checks it).
    """
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    file = find_config_file(path, env, working_directory=working_directory)
    sources: list[tuple[Mapping[str, Any], str]] = []  # (values, which source)
    if file is not None:
        sources.append((read_file(file), "file"))
    sources.append((
        {name: env[env_name(name)] for name in WORKER_KEYS if env.get(env_name(name))}, "env",
    ))
    flags, _ = split_flags(argv or [])
    sources.append((flags, "flag"))
    for raw, kind in sources:
        for name, value in raw.items():
            parse = WORKER_KEYS.get(name) if isinstance(name, str) else None
            if parse is None:
                continue  # the provider's key (load_settings reads it), not the worker's
            where = {"file": f"config file {file}", "env": f"environment {env_name(name)}",
                     "flag": f"flag {FLAG_PREFIX}{name}"}[kind]
            _read_into(values, name, name, value, parse, where)
    return WorkerConfig(**values).check()


def load_config(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    argv: Sequence[str] | None = None,
) -> RestateConfig:
    """Build and check the provider's configuration from every source."""
    settings = load_settings(path, env, argv)
    if "endpoint" not in settings:
        raise ConfigError(
            f"endpoint is required: set workflow.restate.endpoint in the config file, "
            f"{env_name('endpoint')}, or {FLAG_PREFIX}endpoint",
            key="endpoint",
        )
    return RestateConfig(**settings).check()
