"""How an execution's status looks to a person: one renderer for the CLI and the demo.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from landlord_restate.workflow.convert import format_rfc3339
from landlord_restate.workflow.types import ExecutionStatus

#: what a terminal would act on instead of showing: C0 controls but tab and newline (ESC
#: among them), DEL, C1 controls, and the bidirectional overrides that reorder a line
_UNSHOWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """`text` safe to write to a terminal: every control character a terminal would obey
    (an escape sequence in a stop reason clearing the screen) shown as its escape, `\x1b`.
    JSON output keeps the exact text; this is for people."""
    return _UNSHOWABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def cell(text: object) -> Text:
    """A table cell showing `text` as it is: printable, and never read as rich markup."""
    return Text(printable(str(text)))


def status_view(status: ExecutionStatus, progress: str | None = None) -> Group:
    """The status as a summary table and a history table; whatever an execution carries
    (input, output, a stop reason, step names) is shown, never obeyed by the terminal."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    rows = [
        ("execution", status.execution_id),
        ("workflow", status.workflow_id),
        ("state", f"{status.state.value} ({status.metadata.get('workflow_sub_state')})"),
        ("trace", status.metadata.get("trace_id") or "- (restate-server exports no traces)"),
        ("started", format_rfc3339(status.start_time)),
        ("stopped", format_rfc3339(status.stop_time) if status.stop_time else "-"),
        ("input", json.dumps(status.input, ensure_ascii=False)),
        ("output", json.dumps(status.output, ensure_ascii=False)),
    ]
    if status.error is not None:
        rows.append(("error", f"{status.error.code}: {status.error.message}"))
    for name, value in rows:
        summary.add_row(name, cell(value))
    history = Table(title="history", title_justify="left")
    history.add_column("time")
    history.add_column("event")
    history.add_column("details")
    for event in status.history:
        details = " ".join(f"{k}={v}" for k, v in event.details.items())
        history.add_row(event.timestamp.strftime("%H:%M:%S.%f")[:-3], cell(event.type),
                        cell(details))
    parts: list[Any] = [summary, history]
    if progress:
        parts.append(cell(progress))
    return Group(*parts)
