"""How an execution's status looks to a person: one renderer for the CLI and the demo.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from landlord_restate.workflow.convert import format_rfc3339
from landlord_restate.workflow.types import ExecutionStatus


def status_view(status: ExecutionStatus, progress: str | None = None) -> Group:
    """The status as a summary table and a history table."""
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("execution", status.execution_id)
    summary.add_row("workflow", status.workflow_id)
    summary.add_row("state", f"{status.state.value} ({status.metadata.get('workflow_sub_state')})")
    trace_id = status.metadata.get("trace_id") or "- (restate-server exports no traces)"
    summary.add_row("trace", trace_id)
    summary.add_row("started", format_rfc3339(status.start_time))
    summary.add_row("stopped", format_rfc3339(status.stop_time) if status.stop_time else "-")
    summary.add_row("input", json.dumps(status.input))
    summary.add_row("output", json.dumps(status.output))
    if status.error is not None:
        summary.add_row("error", f"{status.error.code}: {status.error.message}")
    history = Table(title="history", title_justify="left")
    history.add_column("time")
    history.add_column("event")
    history.add_column("details")
    for event in status.history:
        details = " ".join(f"{k}={v}" for k, v in event.details.items())
        history.add_row(event.timestamp.strftime("%H:%M:%S.%f")[:-3], event.type, details)
    parts: list[Any] = [summary, history]
    if progress:
        parts.append(Text(progress))
    return Group(*parts)
