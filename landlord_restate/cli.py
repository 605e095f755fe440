"""`landlord-restate`: the operator CLI over the same configuration and provider as Landlord.

Exit codes: 0 ok, 1 the operation failed, 2 usage or configuration error. Errors print one
line on stderr, never a traceback. `--json` (before or after the command) prints exactly
one JSON document on stdout, errors included: `{"error", "message", "field"}`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import re
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from landlord_restate.doctor import run_checks, shown_settings
from landlord_restate.rendering import cell, printable, status_view
from landlord_restate.restate.config import RestateConfig
from landlord_restate.restate.deployments import check_deployment_id
from landlord_restate.restate.limits import MAX_REASON, check_text
from landlord_restate.restate.naming import (
    check_execution_id,
    check_execution_name,
    check_workflow_id,
)
from landlord_restate.restate.provider import RestateProvider
from landlord_restate.restate.search import MAX_PAGE_SIZE
from landlord_restate.restate.settings import FLAG_PREFIX, load_config, split_flags
from landlord_restate.workflow.convert import (
    format_rfc3339,
    from_json,
    parse_go_duration,
    parse_rfc3339,
    to_json,
)
from landlord_restate.workflow.errors import (
    ConfigError,
    InvalidInputError,
    InvalidSpecError,
    WorkflowError,
)
from landlord_restate.workflow.types import (
    ExecutionInput,
    ExecutionResult,
    ExecutionState,
    ExecutionStatus,
    WorkflowSpec,
)

OK, FAILED, USAGE = 0, 1, 2
T = TypeVar("T")


class UsageError(Exception):
    """Bad arguments or input files: exit 2. `field` names the argument when known."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


#: `--flag=value` in a message: the value is not shown
_REDACT = re.compile(r"(--[\w.-]+)=\S+")
#: argparse's "argument --limit: invalid int value" names the argument first
_ARGUMENT = re.compile(r"argument ([\w./-]+)")
_REQUIRED = re.compile(r"the following arguments are required: ([\w./-]+)")


class _Parser(argparse.ArgumentParser):
    """argparse that never echoes what it did not recognise (a misspelt settings flag,
    `--workflow_restate.api_key=...`, may carry a secret) and raises instead of exiting."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments"):
            count = len(message.split(":", 1)[1].split())
            message = (f"{count} unrecognized argument(s), not shown since they may hold "
                       f"secrets; settings are {FLAG_PREFIX}<key>=<value>")
        named = _ARGUMENT.match(message) or _REQUIRED.match(message)
        field = None
        if named:
            field = named.group(1).split("/")[0].lstrip("-").replace("-", "_").lower()
        raise UsageError(_REDACT.sub(r"\1=***", message), field=field)


#: what each command runs: parsed arguments, configuration, output -> exit code
Command = Callable[[argparse.Namespace, RestateConfig, "Output"], Coroutine[Any, Any, int]]
#: a command that works through an open provider
ProviderCommand = Callable[
    [argparse.Namespace, RestateProvider, "Output"], Coroutine[Any, Any, int]
]


def _provided(command: ProviderCommand) -> Command:
    """Run `command` with a provider opened from the configuration (closed after)."""

    async def run(args: argparse.Namespace, config: RestateConfig, out: Output) -> int:
        async with RestateProvider(config) as provider:
            return await command(args, provider, out)

    run.__doc__ = command.__doc__
    return run


def build_parser() -> argparse.ArgumentParser:
    """The command line, one subcommand per operation; each sets `func` to what it runs."""
    # --config and --json are accepted before the command and after it; after it they
    # default to SUPPRESS, so a subcommand does not reset what was given before it
    common = _Parser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="config file (YAML or TOML; default: Landlord's)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="machine-readable output (one JSON document, errors included)")
    parser = _Parser(
        prog="landlord-restate",
        description="Operate Landlord workflows on Restate. Any setting can be given as "
        f"{FLAG_PREFIX}<key>=<value>, e.g. {FLAG_PREFIX}endpoint=http://127.0.0.1:8080.",
    )
    parser.add_argument("--config", help="config file (YAML or TOML; default: Landlord's)")
    parser.add_argument("--json", action="store_true",
                        help="machine-readable output (one JSON document, errors included)")
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    def command(name: str, func: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=summary)
        sub.set_defaults(func=func)
        return sub

    command("doctor", cmd_doctor, "check config, server and deployment")
    command("validate", cmd_validate, "validate a spec").add_argument(
        "spec", help="spec JSON file, or - for stdin")
    command("create", cmd_create, "create a workflow").add_argument(
        "spec", help="spec JSON file, or - for stdin")
    command("delete", cmd_delete, "delete a workflow").add_argument("workflow_id")
    start = command("start", cmd_start, "start an execution")
    start.add_argument("workflow_id")
    start.add_argument("--name", default="", help="execution name (idempotency key)")
    start.add_argument("--input", default="null", help="input JSON, or @file")
    start.add_argument("--wait", action="store_true", help="wait for a terminal state")
    status = command("status", cmd_status, "show an execution")
    status.add_argument("execution_id")
    status.add_argument("--watch", action="store_true", help="redraw until it ends")
    stop = command("stop", cmd_stop, "stop an execution (it runs its cancellation)")
    stop.add_argument("execution_id")
    stop.add_argument("--reason", required=True)
    kill = command("kill", cmd_kill, "end an execution now, without its cancellation")
    kill.add_argument("execution_id")
    kill.add_argument("--reason", required=True)
    command("pause", cmd_pause, "pause an execution").add_argument("execution_id")
    command("resume", cmd_resume, "resume a paused execution").add_argument("execution_id")
    command("purge", cmd_purge, "forget a finished execution").add_argument("execution_id")
    redrive = command("redrive", cmd_redrive,
                      "run a failed, stopped or timed-out execution again from where it failed")
    redrive.add_argument("execution_id")
    redrive.add_argument("--wait", action="store_true", help="wait for a terminal state")
    listing = command("list", cmd_list, "executions, newest first, a page at a time")
    _search_filters(listing)
    listing.add_argument("--page-size", type=int, default=50, help="executions per page "
                         f"(1-{MAX_PAGE_SIZE}, default 50)")
    listing.add_argument("--limit", type=int, help="the same as --page-size")
    listing.add_argument("--page-token", help="the next page: the token the last page printed")
    _search_filters(command("count", cmd_count, "how many executions match, by state"))
    deployments = command("deployments", cmd_deployments,
                          "registered deployments; `deployments remove ID` removes one")
    actions = deployments.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    remove = actions.add_parser("remove", parents=[common], help="remove a drained deployment")
    remove.add_argument("deployment_id")
    remove.add_argument("--force", action="store_true",
                        help="remove it even while executions run on it (strands them)")
    remove.set_defaults(func=cmd_remove_deployment)
    return parser


def _search_filters(sub: argparse.ArgumentParser) -> None:
    """The filters `list` and `count` share."""
    sub.add_argument("--workflow", dest="workflow_id")
    sub.add_argument("--state", action="append", choices=[s.value for s in ExecutionState],
                     help="in this state (repeat for several)")
    sub.add_argument("--tag", action="append", metavar="KEY=VALUE",
                     help="carrying this tag exactly (repeat: every one)")
    sub.add_argument("--name-prefix", help="only executions whose name starts so")
    sub.add_argument("--since", help="started at or after: a duration ago (1h, 30m) or an "
                     "RFC 3339 time")
    sub.add_argument("--until", help="started before: a duration ago or an RFC 3339 time")


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
        raise UsageError(f"cannot read {what} {source!r}: {exc.strerror}", field=what) from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{what} {source!r} is not UTF-8 text ({exc.reason})",
                         field=what) from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{what} is not valid JSON: {str(exc)[:200]}", field=what) from None
    except RecursionError:
        raise UsageError(f"{what} is nested too deeply to read", field=what) from None


#: the width of tables written to a pipe or a file
_PIPE_WIDTH = 200


class Output:
    """Writes results as tables for people, or JSON for programs."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # a pipe or a file has no width: tables there are read by scripts and logs, which
        # need every id whole, so they get room instead of rich's 80 columns
        wide = None if sys.stdout.isatty() else _PIPE_WIDTH
        self.console = Console(highlight=False, soft_wrap=True, width=wide)

    def data(self, value: Any) -> None:
        """Print `value` as JSON."""
        print(json.dumps(value, indent=2, default=str))

    def line(self, text: str) -> None:
        """One line for people (nothing in --json mode), shown, never obeyed, by the
        terminal (see `rendering.printable`)."""
        if not self.as_json:
            self.console.print(printable(text), markup=False)

    def note(self, text: str) -> None:
        """What the command is doing, on stderr (in --json mode too: stdout stays the one
        JSON document)."""
        print(printable(text), file=sys.stderr, flush=True)

    def result(self, value: Any, text: str) -> None:
        """`value` as JSON, or `text` as a line for people."""
        if self.as_json:
            self.data(value)
        else:
            self.line(text)


def _progress(status: ExecutionStatus, began: float) -> str:
    steps = [e for e in status.history if e.type in ("step_started", "timer_started",
                                                      "callback_waiting")]
    current = steps[-1].details if steps else {}
    doing = current.get("step") or current.get("timer") or current.get("promise") or "-"
    return (f"{status.state.value} for {time.monotonic() - began:.1f}s, "
            f"current step: {doing}")


# -- commands ---------------------------------------------------------------------------


async def cmd_doctor(args: argparse.Namespace, config: RestateConfig, out: Output) -> int:
    """Effective settings, then one line per check: ok, or what to do."""
    settings = shown_settings(config)
    checks = await run_checks(config)
    healthy = all(c.ok for c in checks)
    if out.as_json:
        out.data({"settings": settings, "checks": [
            {"check": c.name, "ok": c.ok, "detail": c.detail} for c in checks], "ok": healthy})
        return OK if healthy else FAILED
    table = Table(title="effective settings", title_justify="left")
    table.add_column("key")
    table.add_column("value")
    for key, value in settings.items():
        table.add_row(key, cell(value))
    out.console.print(table)
    for c in checks:
        out.console.print(Text.assemble(("ok   " if c.ok else "FAIL ",
                                         "green" if c.ok else "red"), f"{c.name}: {c.detail}"))
    return OK if healthy else FAILED


@_provided
async def cmd_validate(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Check a spec offline and against the deployment."""
    spec = from_json(WorkflowSpec, _read_json(args.spec, "spec"))
    await provider.validate(spec)
    out.result({"valid": True}, f"{spec.workflow_id}: valid")
    return OK


@_provided
async def cmd_create(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Register the deployment and store the spec."""
    spec = from_json(WorkflowSpec, _read_json(args.spec, "spec"))
    result = await provider.create_workflow(spec)
    out.result(to_json(result), f"{result.workflow_id}: {result.message} "
                                f"(service {result.resource_ids['service_name']}, "
                                f"deployment {result.resource_ids['deployment_id']})")
    return OK


@_provided
async def cmd_delete(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """The workflow can no longer start."""
    await provider.delete_workflow(args.workflow_id)
    out.result({"deleted": args.workflow_id}, f"{args.workflow_id}: deleted")
    return OK


@_provided
async def cmd_start(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Start an execution; with --wait, show its terminal status."""
    execution = ExecutionInput(
        execution_name=args.name, input=_read_json(args.input, "input"), trigger_source="cli",
    )
    started = await provider.start_execution(args.workflow_id, execution)
    return await _started(provider, out, started, wait=args.wait)


async def _started(
    provider: RestateProvider, out: Output, started: ExecutionResult, *, wait: bool
) -> int:
    """Print a new execution; with `wait`, its terminal status (exit 1 unless it succeeded)."""
    if not wait:
        out.result(to_json(started), f"{started.execution_id}: {started.message}")
        return OK
    return _show(out, await provider.wait_execution(started.execution_id))


@_provided
async def cmd_status(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Show an execution; with --watch, until it ends."""
    if args.watch:
        return await _watch(provider, args.execution_id, out)
    return _show(out, await provider.get_execution_status(args.execution_id), ok=True)


async def _acted(provider: RestateProvider, out: Output, execution_id: str, done: str) -> int:
    """After an action: the status as JSON, or `<id>: <done>, now <state>`."""
    status = await provider.get_execution_status(execution_id)
    out.result(to_json(status), f"{execution_id}: {done}, now {status.state.value}")
    return OK


@_provided
async def cmd_stop(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Stop an execution: it runs its cancellation and ends stopped with the reason; one
    that has not ended stop_grace later is killed. The command waits for that end (it
    says so), so the promised kill never depends on a process that has exited."""
    await provider.stop_execution(args.execution_id, args.reason)
    grace = provider.config.stop_grace.total_seconds()
    out.note(f"{args.execution_id}: stop requested; waiting up to {grace:g}s (stop_grace) for "
             "its cancellation to end it, then it is killed")
    try:
        status = await provider.wait_execution(args.execution_id, timeout=grace + _KILL_SLACK)
    except TimeoutError:
        status = await provider.get_execution_status(args.execution_id)
    how = status.metadata.get("stopped_by")
    out.result(to_json(status), f"{args.execution_id}: stop requested, now "
                                f"{status.state.value}" + (f" ({how})" if how else ""))
    return OK


#: how long `stop` waits past stop_grace for the kill to land before it answers anyway
_KILL_SLACK = 30.0


@_provided
async def cmd_kill(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """End an execution now, stopped with the reason, without its cancellation."""
    await provider.kill_execution(args.execution_id, args.reason)
    return await _acted(provider, out, args.execution_id, "killed")


@_provided
async def cmd_pause(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Pause an execution: no step runs until it is resumed."""
    await provider.pause_execution(args.execution_id)
    return await _acted(provider, out, args.execution_id, "pause requested")


@_provided
async def cmd_resume(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Let a paused execution go on."""
    await provider.resume_execution(args.execution_id)
    return await _acted(provider, out, args.execution_id, "resume requested")


@_provided
async def cmd_purge(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """Forget a finished execution: its status and history are gone after."""
    await provider.purge_execution(args.execution_id)
    out.result({"purged": args.execution_id}, f"{args.execution_id}: purged")
    return OK


@_provided
async def cmd_redrive(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """A new execution of a failed, stopped or timed-out one, printed as `start` prints."""
    started = await provider.redrive_execution(args.execution_id)
    return await _started(provider, out, started, wait=args.wait)


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    """The search filters given to `list` or `count`, as the provider takes them. A page
    token keeps the time window of its first page: `--since 1h` on a later page (another
    hour by now) is left to it; an absolute time is passed, and checked against it."""
    paging = getattr(args, "page_token", None) is not None
    return {
        "state": args.state, "tags": args.tags, "name_prefix": args.name_prefix,
        "since": None if paging and args.since_ago else args.since_time,
        "until": None if paging and args.until_ago else args.until_time,
    }


@_provided
async def cmd_list(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """One page of executions, newest first, and the token of the next page."""
    page = await _searched(provider.list_executions_page(
        args.workflow_id, **_filters(args), page_size=args.limit or args.page_size,
        page_token=args.page_token,
    ))
    if out.as_json:
        out.data(to_json(page))
        return OK
    table = Table()
    table.add_column("execution", **_WHOLE)  # an operator copies ids from here
    for column in ("workflow", "name", "state", "started", "stopped", "tags"):
        table.add_column(column)
    for s in page.executions:
        table.add_row(s.execution_id, s.workflow_id, s.execution_name,
                      f"{s.state.value} ({s.sub_state})", format_rfc3339(s.start_time),
                      format_rfc3339(s.stop_time) if s.stop_time else "-",
                      cell(", ".join(f"{k}={v}" for k, v in sorted(s.tags.items())) or "-"))
    out.console.print(table)
    if page.next_page_token is not None:
        out.line(f"next page: --page-token {page.next_page_token}")
    return OK


@_provided
async def cmd_count(args: argparse.Namespace, provider: RestateProvider, out: Output) -> int:
    """How many executions match, in all and by state."""
    counted = await _searched(provider.count_executions(args.workflow_id, **_filters(args)))
    if out.as_json:
        out.data(to_json(counted))
        return OK
    table = Table()
    table.add_column("state")
    table.add_column("executions", justify="right")
    for state, n in counted.by_state.items():
        table.add_row(state.value, str(n))
    table.add_row("total", str(counted.total), style="bold")
    out.console.print(table)
    return OK


async def _searched(search: Coroutine[Any, Any, T]) -> T:
    """A search's answer; a filter or page token the provider refuses is a usage error
    (exit 2), as a malformed flag is."""
    try:
        return await search
    except InvalidInputError as exc:
        raise UsageError(exc.message, field=exc.field) from None


#: a column never cut or wrapped: the ids an operator copies into the next command
_WHOLE: dict[str, Any] = {"no_wrap": True, "overflow": "ignore"}


@_provided
async def cmd_deployments(
    args: argparse.Namespace, provider: RestateProvider, out: Output
) -> int:
    """Every registered deployment, with the executions still running on it."""
    found = await provider.list_deployments()
    if out.as_json:
        out.data([{
            "deployment_id": d.deployment_id, "address": d.address,
            "created_at": format_rfc3339(d.created_at) if d.created_at else None,
            "services": list(d.services), "in_flight": d.in_flight, "latest": d.latest,
        } for d in found])
        return OK
    table = Table()
    table.add_column("id", **_WHOLE)
    for column in ("address", "services", "in flight", "latest"):
        table.add_column(column)
    for d in found:
        table.add_row(d.deployment_id, cell(d.address), ", ".join(d.services) or "-",
                      str(d.in_flight), "yes" if d.latest else "no")
    out.console.print(table)
    return OK


@_provided
async def cmd_remove_deployment(
    args: argparse.Namespace, provider: RestateProvider, out: Output
) -> int:
    """Remove a drained deployment (with --force, also one executions still run on)."""
    await provider.remove_deployment(args.deployment_id, force=args.force)
    out.result({"removed": args.deployment_id}, f"{args.deployment_id}: removed")
    return OK


def _show(out: Output, status: ExecutionStatus, *, ok: bool = False) -> int:
    """Print a status; a failed wait exits 1 (plain `status` of a failure is still ok)."""
    if out.as_json:
        out.data(to_json(status))
    else:
        out.console.print(status_view(status))
    succeeded = status.state is ExecutionState.SUCCEEDED
    return OK if ok or succeeded else FAILED


async def _watch(provider: RestateProvider, execution_id: str, out: Output) -> int:
    """Show the status until it ends: the end comes from `wait_execution` (attached, at
    once); while it runs, the history is redrawn as it grows (about once a second)."""
    if out.as_json:  # one document: the terminal status
        return _show(out, await provider.wait_execution(execution_id), ok=True)
    began = time.monotonic()
    status = await provider.get_execution_status(execution_id)
    ended = asyncio.ensure_future(provider.wait_execution(execution_id))
    try:
        with Live(status_view(status, _progress(status, began)), console=out.console,
                  refresh_per_second=4) as live:
            while not ended.done():
                await asyncio.wait({ended}, timeout=_REDRAW_SECONDS)
                if not ended.done():
                    status = await provider.get_execution_status(execution_id)
                    live.update(status_view(status, _progress(status, began)))
            status = ended.result()
            live.update(status_view(status, f"{status.state.value} after "
                                            f"{time.monotonic() - began:.1f}s"))
    finally:
        ended.cancel()
    return OK


#: how often `status --watch` redraws a running execution's history
_REDRAW_SECONDS = 1.0


# -- arguments, errors, entry point -------------------------------------------------------

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
            check_text(args.reason, "reason", MAX_REASON)
    except WorkflowError as exc:
        raise UsageError(exc.message, field=getattr(exc, "field", None)) from None
    prefix = getattr(args, "name_prefix", None)
    if prefix is not None:
        try:
            check_execution_name(prefix)
        except WorkflowError:
            raise UsageError(
                f"--name-prefix {prefix!r} must be the start of an execution name: 1-128 "
                "letters, digits, '_' or '-'", field="name_prefix",
            ) from None
    for flag in ("limit", "page_size"):
        size = getattr(args, flag, None)
        if size is not None and not 0 < size <= MAX_PAGE_SIZE:
            raise UsageError(f"--{flag.replace('_', '-')} must be between 1 and "
                             f"{MAX_PAGE_SIZE}", field=flag)
    if hasattr(args, "tag"):
        args.tags = _tags(args.tag)
        args.since_time, args.since_ago = _time(args.since, "since")
        args.until_time, args.until_ago = _time(args.until, "until")
    deployment_id = getattr(args, "deployment_id", None)
    if deployment_id is not None:
        try:
            check_deployment_id(deployment_id)  # the provider's own rule
        except WorkflowError as exc:
            raise UsageError(exc.message, field="deployment_id") from None


def _tags(given: list[str] | None) -> dict[str, str] | None:
    """`--tag key=value` flags as a dict (a key given twice: the last value)."""
    if not given:
        return None
    tags = {}
    for flag in given:
        key, equals, value = flag.partition("=")
        if not equals or not key:
            raise UsageError(f"--tag {flag!r} must be KEY=VALUE with a non-empty key",
                             field="tag")
        tags[key] = value
    return tags


def _time(given: str | None, flag: str) -> tuple[datetime | None, bool]:
    """`--since`/`--until`: a Go duration ago ("1h", "90m") or an RFC 3339 time; and
    whether it was a duration."""
    if given is None:
        return None, False
    try:
        ago = parse_go_duration(given)
    except ValueError:
        pass
    else:
        if ago < timedelta(0):
            raise UsageError(f"--{flag} {given!r}: a duration ago must not be negative",
                             field=flag)
        try:
            return datetime.now(UTC) - ago, True
        except OverflowError:  # further back than datetime can say: no lower bound
            return datetime.min.replace(tzinfo=UTC), True
    try:
        return parse_rfc3339(given), False
    except ValueError:
        raise UsageError(f"--{flag} {given!r} must be a duration ago (1h, 30m) or an RFC 3339 "
                         "time (2026-12-01T00:00:00Z)", field=flag) from None


def _wants_json(argv: Sequence[str]) -> bool:
    """Whether `--json` was given (before a `--`), known before parsing can fail."""
    for arg in argv:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


def _parse(argv: list[str], out: Output) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code of `--help` (as JSON in --json mode)."""
    parser = build_parser()
    if not out.as_json:
        try:
            return parser.parse_args(argv)
        except SystemExit as exit_:  # --help
            return USAGE if exit_.code else OK
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            return parser.parse_args(argv)
    except SystemExit as exit_:
        out.data({"help": printed.getvalue()})
        return USAGE if exit_.code else OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `landlord-restate` console script."""
    raw = list(sys.argv[1:] if argv is None else argv)
    out = Output(_wants_json(raw))
    try:
        flags, rest = split_flags(raw)
        parsed = _parse(rest, out)
        if isinstance(parsed, int):
            return parsed
        args = parsed
        out.as_json = out.as_json or args.json  # an abbreviation (--js) argparse accepted
        check_arguments(args)
        flag_argv = [f"{FLAG_PREFIX}{k}={v}" for k, v in flags.items()]
        config = load_config(args.config, argv=flag_argv)
        func: Command = args.func
        return asyncio.run(func(args, config, out))
    except (ConfigError, UsageError) as exc:
        _fail(out, exc)
        return USAGE
    except WorkflowError as exc:
        _fail(out, exc)
        return FAILED
    except KeyboardInterrupt:
        _fail(out, None, "Interrupted", "interrupted")
        return FAILED
    except Exception as exc:
        shown = _REDACT.sub(r"\1=***", str(exc))[:300]
        _fail(out, None, type(exc).__name__, f"unexpected {type(exc).__name__}: {shown}")
        return FAILED


#: attributes of an error worth a program's attention, beside its message and field
_ERROR_CONTEXT = ("workflow_id", "execution_id", "state", "deployment_id", "in_flight")


def _fail(
    out: Output,
    exc: WorkflowError | UsageError | None,
    kind: str = "",
    message: str = "",
) -> None:
    """One clear line on stderr (each problem of a spec its own line), and in --json mode
    one `{"error", "message", "field"}` object on stdout, plus the ids it is about."""
    field: str | None = None
    if exc is not None:
        kind, message = type(exc).__name__, exc.message
        field = exc.key if isinstance(exc, ConfigError) else getattr(exc, "field", None)
    if out.as_json:
        shown: dict[str, Any] = {"error": kind, "message": message, "field": field}
        for name in _ERROR_CONTEXT:
            value = getattr(exc, name, None)
            if value is not None:
                shown[name] = value
        out.data(shown)
    problems = message.split("; ") if isinstance(exc, InvalidSpecError) else [message]
    for problem in problems:
        print(f"error: {printable(problem)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
