"""The wire contract between the provider and the handler deployment.

Both sides import these names and types, so a handler the provider calls is the handler
the shim defines, and what the shim records is what status reads. Pure (attrs and the one
converter): the deployment imports it without an HTTP client, which matters on Lambda,
where every import is cold-start time.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import json
from typing import Any

from attrs import field, frozen

from landlord_restate.workflow.convert import converter, from_json
from landlord_restate.workflow.types import JSONValue, RetryPolicy, WorkflowSpec

#: the provider's name, and `provider_type` of every spec and result
PROVIDER_TYPE = "restate"

#: the Virtual Object storing specs, keyed by workflow id, its handlers and state key. The
#: provider writes through `put` (first write wins) and reads and deletes with the admin API
#: and SQL alone; a run reads its workflow's record through `get` before its first step.
CATALOG_SERVICE = "LandlordCatalog"
CATALOG_PUT, CATALOG_GET = "put", "get"
CATALOG_RECORD = "record"
#: a Service whose `record` handler answers the record it was given, sent once per create
#: with an idempotency key, so Restate keeps it completed: the record as a completed
#: invocation, which a run attaches to (answered by the server alone, no call through the
#: deployment) and which a delete purges (an attach then answers 404)
CATALOG_RECORD_SERVICE = "LandlordCatalogRecord"
CATALOG_RECORD_HANDLER = "record"
#: service metadata marking the provider's own services (Restate's UI shows metadata)
INTERNAL_METADATA = {"landlord.internal": "true"}
#: the Virtual Object keyed by execution (invocation) id where the provider keeps what it
#: must say of an execution without the deployment: why it was stopped, what redrove it.
#: Written with the admin state API; its `deliver_callback` relays a compute callback to
#: the run (a private service still takes calls from other services).
CONTROL_SERVICE = "LandlordControl"
DELIVER_CALLBACK_HANDLER = "deliver_callback"
STOP_RECORD_HANDLER = "stop_record"
STOP_STATE = "stop"
#: service metadata key listing the Go handler names a service hosts (comma-separated)
HANDLERS_METADATA = "landlord.handlers"

#: the status metadata keys the provider writes: facts about the execution, which an
#: execution's own metadata may not carry (a start that names one is refused)
PROVIDER_METADATA_KEYS = frozenset({
    "restate_status", "workflow_sub_state", "retry_count", "service_name", "workflow_key",
    "stopped_by", "deployment_id", "trace_id", "last_failure", "last_failure_step",
    "redriven_from",
})

def callback_delivery(service: str, key: str, payload_json: bytes) -> bytes:
    """The body of `DELIVER_CALLBACK_HANDLER`: where the run is, and the compute callback's
    payload, already checked and encoded by the caller, spliced in rather than encoded
    again."""
    head = json.dumps({"service": service, "key": key}, separators=(",", ":"))
    return f'{head[:-1]},"payload":{payload_json.decode()}}}'.encode()


#: a shim's handlers: the execution, and the shared handler beside it
RUN_HANDLER = "run"
COMPUTE_CALLBACK_HANDLER = "compute_callback"
#: the name of a run's durable deadline timer (a sleep the handler's waits race): internal,
#: neither a step of the history nor a sleep a redrive reuses
DEADLINE_TIMER = "landlord.deadline"

#: workflow state keys the shim writes and status reads (from the journal's SetState)
ENVELOPE_STATE = "envelope"
OUTCOME_STATE = "outcome"
#: the steps a redrive answered from its original's journal, without running them
REUSED_STATE = "reused"
#: the durable promise of Landlord's compute callback
COMPUTE_CALLBACK_PROMISE = "compute_callback"


#: the step a redriven run journals for a compute callback its original received, so a
#: redrive of the redrive reuses it as a callback again
REDRIVEN_CALLBACK_STEP = "landlord.compute_callback"


@frozen(kw_only=True)
class Reuse:
    """One thing an original execution completed, which its redrive does not do again."""

    #: "step" (its journaled result), "sleep" (not slept again), "callback" (its payload)
    kind: str
    name: str = ""
    value: JSONValue = None


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
    #: a redrive's plan: what the original completed, in order
    redrive: list[Reuse] = field(factory=list)
    #: the execution a redrive started from (status reports it as `redriven_from`)
    redriven_from: str = ""
    #: the invocation id of the workflow's catalog entry, which the run attaches to before
    #: its first step (without it, the run calls the catalog)
    catalog_entry: str = ""

    def to_json(self) -> dict[str, Any]:
        """Go-shaped JSON data (durations in nanoseconds)."""
        data: dict[str, Any] = converter.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> ExecutionEnvelope:
        """Read an envelope back; raises on anything the provider would not have sent."""
        return converter.structure(data, cls)

    def start_body(self, input_json: str) -> bytes:
        """The start request's body: this envelope, with input already encoded as JSON
        (checked and encoded once, by the caller) spliced in rather than encoded again."""
        # built by hand, not by the converter: this is every start's hot path, and the
        # generated unstructuring cost more than the rest of a start's own work
        head: dict[str, Any] = {
            "workflow_id": self.workflow_id, "handler": self.handler,
            "execution_name": self.execution_name, "tags": self.tags,
            "metadata": self.metadata, "trigger_source": self.trigger_source,
            "timeout": self.timeout,
            "retry_policy": None if self.retry_policy is None
            else converter.unstructure(self.retry_policy),
        }
        # the common case stays as small as it was
        if self.redrive:
            head["redrive"] = converter.unstructure(self.redrive, list[Reuse])
        if self.redriven_from:
            head["redriven_from"] = self.redriven_from
        if self.catalog_entry:
            head["catalog_entry"] = self.catalog_entry
        encoded = json.dumps(head, separators=(",", ":"))
        return f'{encoded[:-1]},"input":{input_json}}}'.encode()


@frozen(kw_only=True)
class OutcomeError:
    """Why an execution did not succeed, as the shim recorded it."""

    code: str
    message: str
    cause: str = ""


@frozen(kw_only=True)
class Outcome:
    """How an execution ended, written by the shim to workflow state, read back by status."""

    #: succeeded, failed, stopped or timeout
    state: str
    output: JSONValue = None
    error: OutcomeError | None = None
    #: why it was stopped
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON data for workflow state."""
        data: dict[str, Any] = converter.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Outcome:
        """Read a recorded outcome; raises on anything the shim would not have written."""
        return converter.structure(data, cls)


@frozen(kw_only=True)
class CatalogRecord:
    """A created workflow as the catalog holds it: the spec, and where its runs go.

    `service` and `handler` are the spec resolved by the provider that created it, so a run
    can check it belongs to its service and dispatch without the provider's config.
    """

    spec: dict[str, Any]
    created_at: str
    service: str = ""
    handler: str = ""
    #: the invocation id of the record's `CATALOG_RECORD_SERVICE` invocation
    entry: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON data for the catalog's state."""
        data: dict[str, Any] = converter.unstructure(self)
        return data

    @classmethod
    def from_json(cls, data: Any) -> CatalogRecord:
        """Read a record back; raises on anything the provider would not have written."""
        return converter.structure(data, cls)

    def workflow_spec(self) -> WorkflowSpec:
        """The stored spec; raises on a spec the provider would not have stored."""
        return from_json(WorkflowSpec, self.spec)
