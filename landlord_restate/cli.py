"""`landlord-restate`: the operator CLI over the same configuration and provider as Landlord.

Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration error. Errors print one
line on stderr, never a traceback. `--json` prints machine-readable output.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from landlord_restate.rendering import status_view
from landlord_restate.restate.admin import AdminClient
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.ingress import IngressClient
from landlord_restate.restate.limits import MAX_REASON, check_text
from landlord_restate.restate.naming import (
    check_execution_id,
    check_execution_name,
    check_workflow_id,
)
from landlord_restate.restate.provider import RestateProvider
from landlord_restate.restate.settings import FLAG_PREFIX, load_config, split_flags
from landlord_restate.restate.validation import hosted_handlers
from landlord_restate.restate.waiting import poll_until_terminal
from landlord_restate.workflow.convert import format_rfc3339, from_json, to_json
from landlord_restate.workflow.errors import (
    ConfigError,
    InvalidSpecError,
    WorkflowError,
)
from landlord_restate.workflow.types import (
    ExecutionInput,
    ExecutionState,
    ExecutionStatus,
    WorkflowSpec,
)

OK, FAILED, USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad arguments or input files: exit 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes what it did not recognise: a misspelt settings flag
    (`--workflow_restate.api_key=...`) may carry a secret."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            count = len(message.split(":", 1)[1].split())
            message = (f"{count} unrecognized argument(s), not shown since they may hold "
                       f"secrets; settings are {FLAG_PREFIX}<key>=<value>")
        raise UsageError(_REDACT.sub(r"\1=***", message))


#: `--flag=value` in a message: the value is not shown
_REDACT = re.compile(r"(--[\w.-]+)=\S+")


def build_parser() -> argparse.ArgumentParser:
    """The command line, one subcommand per operation."""
    common = _Parser(add_help=False)
    common.add_argument("--config", help="config file (YAML or TOML; default: Landlord's)")
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = _Parser(
        prog="landlord-restate",
        description="Operate Landlord workflows on Restate. Any setting can be given as "
        f"{FLAG_PREFIX}<key>=<value>, e.g. {FLAG_PREFIX}endpoint=http://127.0.0.1:8080.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )
    commands.add_parser("doctor", parents=[common], help="check config, server and deployment")
    validate = commands.add_parser("validate", parents=[common], help="validate a spec")
    validate.add_argument("spec", help="spec JSON file, or - for stdin")
    create = commands.add_parser("create", parents=[common], help="create a workflow")
    create.add_argument("spec", help="spec JSON file, or - for stdin")
    delete = commands.add_parser("delete", parents=[common], help="delete a workflow")
    delete.add_argument("workflow_id")
    start = commands.add_parser("start", parents=[common], help="start an execution")
    start.add_argument("workflow_id")
    start.add_argument("--name", default="", help="execution name (idempotency key)")
    start.add_argument("--input", default="null", help="input JSON, or @file")
    start.add_argument("--wait", action="store_true", help="wait for a terminal state")
    status = commands.add_parser("status", parents=[common], help="show an execution")
    status.add_argument("execution_id")
    status.add_argument("--watch", action="store_true", help="redraw until it ends")
    stop = commands.add_parser("stop", parents=[common], help="stop an execution")
    stop.add_argument("execution_id")
    stop.add_argument("--reason", required=True)
    listing = commands.add_parser("list", parents=[common], help="recent executions")
    listing.add_argument("--workflow", dest="workflow_id")
    listing.add_argument("--state", choices=[s.value for s in ExecutionState])
    listing.add_argument("--limit", type=int, default=50)
    return parser


def _read_json(source: str, what: str) -> Any:
    """JSON from '-' (stdin), '@file', a file path (spec) or inline text (input)."""
    try:
        if source == "-":
            text = sys.stdin.read()
        elif source.startswith("@") or (what == "spec"):
            text = Path(source.removeprefix("@")).read_text()
        else:
            text = source
    except OSError as exc:
        raise UsageError(f"cannot read {what} {source!r}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {source!r} is not UTF-8 text ({exc.reason})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {str(exc)[:200]}") from None
    except RecursionError:
        raise UsageError(f"{what} is nested too deeply to read") from None


def _plain(value: Any) -> Any:
    """Contract values as JSON-ready data."""
    return to_json(value)


class Output:
    """Writes results as tables for people, or JSON for programs."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.console = Console(highlight=False, soft_wrap=True)

    def data(self, value: Any) -> None:
        """Print `value` as JSON."""
        print(json.dumps(value, indent=2, default=str))

    def line(self, text: str) -> None:
        """One line for people (nothing in --json mode)."""
        if not self.as_json:
            self.console.print(text, markup=False)


def _progress(status: ExecutionStatus, began: float) -> str:
    steps = [e for e in status.history if e.type in ("step_started", "timer_started",
                                                      "callback_waiting")]
    current = steps[-1].details if steps else {}
    doing = current.get("step") or current.get("timer") or current.get("promise") or "-"
    return (f"{status.state.value} for {time.monotonic() - began:.1f}s, "
            f"current step: {doing}")


async def cmd_doctor(config: RestateConfig, out: Output) -> int:
    """Effective settings, then one line per check: ok, or what to do."""
    settings = _plain_config(config)
    checks: list[tuple[str, bool, str]] = []
    async with RestateProvider(config) as provider:
        admins, ingresses = provider.node_clients()
        admin = provider.admin

        async def check(name: str, probe: Callable[[], Awaitable[str]], fix: str) -> bool:
            try:
                checks.append((name, True, await probe()))
            except (WorkflowError, aiohttp.ClientError, TimeoutError) as exc:
                checks.append((name, False, f"{exc} -> {fix}"))
                return False
            return True

        def admin_health(node: AdminClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                await node.health()
                return f"admin API answers at {node.endpoint}"
            return probe

        def version(node: AdminClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                return f"restate-server {await node.version()} at {node.endpoint}"
            return probe

        def ingress_health(node: IngressClient) -> Callable[[], Awaitable[str]]:
            async def probe() -> str:
                await node.health()
                return f"ingress answers at {node.endpoint}"
            return probe

        async def deployment() -> str:
            address = config.deployment_address.rstrip("/")
            for found in await admin.deployments():
                target = str(found.get("uri") or found.get("arn") or "").rstrip("/")
                if target == address:
                    hosted: list[str] = []
                    for service in found.get("services", []):
                        described = await admin.get_service(str(service.get("name")))
                        hosted += sorted(hosted_handlers(described or {}))
                    return (f"{address} registered as {found.get('id')}, hosting "
                            f"{', '.join(hosted) or 'no Landlord handlers'}")
            # not registered yet is a healthy state: `create` registers it. Ask the
            # deployment itself (a dry run registers nothing) whether it answers.
            discovered = await admin.discover(config.registration())
            hosted = sorted({h for s in discovered for h in hosted_handlers(s)})
            if not hosted:
                raise WorkflowError(f"{address} answers but hosts no Landlord handlers")
            return (f"{address} answers, hosting {', '.join(hosted)}; not registered yet: "
                    "`landlord-restate create SPEC.json` registers it")

        # every node on its own, tried once: a cluster with a node down says which
        answering = 0
        for node in admins:
            if await check("admin health", admin_health(node),
                           "start restate-server or fix admin_endpoint"):
                answering += 1
                await check("server version", version(node), "check admin_endpoint")
        for entry in ingresses:
            await check("ingress", ingress_health(entry), "check endpoint")
        if answering:
            await check("deployment", deployment,
                        "run `landlord-restate create SPEC.json` to register it")
        else:
            checks.append(("deployment", False, "not checked: no admin node answers"))
    healthy = all(ok for _, ok, _ in checks)
    if out.as_json:
        out.data({"settings": settings, "checks": [
            {"check": n, "ok": ok, "detail": d} for n, ok, d in checks], "ok": healthy})
        return OK if healthy else FAILED
    table = Table(title="effective settings", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    for key, value in settings.items():
        table.add_row(key, str(value))
    out.console.print(table)
    for name, ok, detail in checks:
        out.console.print(Text.assemble(("ok   " if ok else "FAIL ", "green" if ok else "red"),
                                        f"{name}: {detail}"))
    return OK if healthy else FAILED


def _plain_config(config: RestateConfig) -> dict[str, Any]:
    """Settings for display: api_key masked, durations as Go strings."""
    from landlord_restate.workflow.convert import format_go_duration

    shown: dict[str, Any] = {}
    for name in config.__attrs_attrs__:
        value = getattr(config, name.name)
        if name.name == "api_key":
            value = "***" if value else None
        elif hasattr(value, "total_seconds"):
            value = format_go_duration(value)
        elif hasattr(value, "value"):
            value = value.value
        shown[name.name] = value
    return shown


def check_arguments(args: argparse.Namespace) -> None:
    """Ids, names, reasons and limits given on the command line: UsageError (exit 2) when
    malformed, as argparse's own errors are, before anything is sent."""
    try:
        if getattr(args, "workflow_id", None) is not None:
            check_workflow_id(args.workflow_id)
        if getattr(args, "execution_id", None) is not None:
            check_execution_id(args.execution_id)
        if getattr(args, "name", ""):
            check_execution_name(args.name)
        if getattr(args, "reason", None) is not None:
            check_text(args.reason, "--reason", MAX_REASON)
    except WorkflowError as exc:
        raise UsageError(exc.message) from None
    limit = getattr(args, "limit", None)
    if limit is not None and not 0 < limit <= 10_000:
        raise UsageError("--limit must be between 1 and 10000")


async def run(args: argparse.Namespace, config: RestateConfig, out: Output) -> int:
    """Dispatch one command; answers its exit code."""
    check_arguments(args)
    if args.command == "doctor":
        return await cmd_doctor(config, out)
    async with RestateProvider(config) as provider:
        if args.command in ("validate", "create"):
            spec = from_json(WorkflowSpec, _read_json(args.spec, "spec"))
            if args.command == "validate":
                await provider.validate(spec)
                out.data({"valid": True}) if out.as_json else out.line(
                    f"{spec.workflow_id}: valid")
                return OK
            result = await provider.create_workflow(spec)
            out.data(_plain(result)) if out.as_json else out.line(
                f"{result.workflow_id}: {result.message} "
                f"(service {result.resource_ids['service_name']}, "
                f"deployment {result.resource_ids['deployment_id']})")
            return OK
        if args.command == "delete":
            await provider.delete_workflow(args.workflow_id)
            out.data({"deleted": args.workflow_id}) if out.as_json else out.line(
                f"{args.workflow_id}: deleted")
            return OK
        if args.command == "start":
            execution = ExecutionInput(
                execution_name=args.name, input=_read_json(args.input, "input"),
                trigger_source="cli",
            )
            started = await provider.start_execution(args.workflow_id, execution)
            if not args.wait:
                out.data(_plain(started)) if out.as_json else out.line(
                    f"{started.execution_id}: {started.message}")
                return OK
            status = await provider.wait_execution(started.execution_id)
            return _show(out, status)
        if args.command == "status":
            if args.watch:
                return await _watch(provider, args.execution_id, out)
            return _show(out, await provider.get_execution_status(args.execution_id), ok=True)
        if args.command == "stop":
            await provider.stop_execution(args.execution_id, args.reason)
            status = await provider.get_execution_status(args.execution_id)
            out.data(_plain(status)) if out.as_json else out.line(
                f"{args.execution_id}: stop requested, now {status.state.value}")
            return OK
        if args.command == "list":
            found = await provider.list_executions(args.workflow_id, args.state, args.limit)
            if out.as_json:
                out.data([_plain(s) for s in found])
                return OK
            table = Table()
            for column in ("execution", "workflow", "name", "state", "started", "stopped"):
                table.add_column(column)
            for s in found:
                table.add_row(s.execution_id, s.workflow_id, s.execution_name,
                              f"{s.state.value} ({s.sub_state})", format_rfc3339(s.start_time),
                              format_rfc3339(s.stop_time) if s.stop_time else "-")
            out.console.print(table)
            return OK
    raise UsageError(f"unknown command {args.command!r}")  # pragma: no cover


def _show(out: Output, status: ExecutionStatus, *, ok: bool = False) -> int:
    """Print a status; a failed wait exits 1 (plain `status` of a failure is still ok)."""
    if out.as_json:
        out.data(_plain(status))
    else:
        out.console.print(status_view(status))
    succeeded = status.state is ExecutionState.SUCCEEDED
    return OK if ok or succeeded else FAILED


async def _watch(provider: RestateProvider, execution_id: str, out: Output) -> int:
    """Redraw the status until it ends, with a live progress line."""
    began = time.monotonic()
    status = await provider.get_execution_status(execution_id)
    if out.as_json:
        status = await poll_until_terminal(provider, execution_id, interval=0.2)
        return _show(out, status, ok=True)
    with Live(status_view(status, _progress(status, began)), console=out.console,
              refresh_per_second=8) as live:
        while not status.state.is_terminal:
            await asyncio.sleep(0.2)
            status = await provider.get_execution_status(execution_id)
            live.update(status_view(status, _progress(status, began)))
        live.update(status_view(status, f"{status.state.value} after "
                                        f"{time.monotonic() - began:.1f}s"))
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `landlord-restate` console script."""
    raw = list(sys.argv[1:] if argv is None else argv)
    try:
        flags, rest = split_flags(raw)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    parser = build_parser()
    try:
        args = parser.parse_args(rest)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except SystemExit as exit_:  # --help
        return USAGE if exit_.code else OK
    out = Output(args.json)
    flag_argv = [f"{FLAG_PREFIX}{k}={v}" for k, v in flags.items()]
    try:
        config = load_config(args.config, argv=flag_argv)
        return asyncio.run(run(args, config, out))
    except (ConfigError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USAGE
    except WorkflowError as exc:
        _fail(out, exc)
        return FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return FAILED
    except Exception as exc:
        shown = _REDACT.sub(r"\1=***", str(exc))[:300]
        print(f"error: unexpected {type(exc).__name__}: {shown}", file=sys.stderr)
        return FAILED


def _fail(out: Output, exc: WorkflowError) -> None:
    """One clear line (JSON on stdout too when asked); each problem of a spec its own line."""
    field = getattr(exc, "field", None)
    if out.as_json:
        out.data({"error": type(exc).__name__, "message": exc.message, "field": field})
    problems = exc.message.split("; ") if isinstance(exc, InvalidSpecError) else [exc.message]
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
