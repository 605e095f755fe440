"""What the provider sends a shim's `run` handler: the execution and how to run it."""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from landlord_restate.workflow.convert import converter
from landlord_restate.workflow.types import JSONValue, RetryPolicy


@frozen(kw_only=True)
class ExecutionEnvelope:
    """The body of `POST /{Service}/{key}/run/send`, recorded by the shim in workflow state."""

    workflow_id: str
    #: Go exported identifier of the handler to run
    handler: str
    execution_name: str
    input: JSONValue = None
    tags: dict[str, str] = field(factory=dict)
    metadata: dict[str, str] = field(factory=dict)
    trigger_source: str = ""
    #: nanoseconds; zero: no timeout
    timeout: int = 0
    retry_policy: RetryPolicy | None = None

    def to_json(self) -> dict[str, Any]:
        """Go-shaped JSON data (durations in nanoseconds)."""
        data: dict[str, Any] = converter.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> ExecutionEnvelope:
        """Read an envelope back; raises on anything the provider would not have sent."""
        return converter.structure(data, cls)
