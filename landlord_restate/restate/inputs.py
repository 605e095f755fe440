"""What callers hand the provider, checked and encoded before anything is sent.

Each function answers the value Restate will get, or raises a typed error naming the
field; the bounds come from `landlord_restate.restate.limits`.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import attrs

from landlord_restate.restate.limits import (
    CALLBACK_DELAY_CAP,
    MAX_CALLBACK_DELAY,
    MAX_CALLBACK_RETRIES,
    MAX_INPUT_BYTES,
    MAX_LAMBDA_INPUT_BYTES,
    MAX_MAP_VALUE,
    MAX_MESSAGE,
    MAX_TRIGGER_SOURCE,
    check_json,
    check_string_map,
    check_text,
    encode_json,
)
from landlord_restate.restate.naming import check_execution_name, check_workflow_id
from landlord_restate.restate.transience import Backoff
from landlord_restate.restate.wire import PROVIDER_METADATA_KEYS
from landlord_restate.workflow.config_hash import config_hash
from landlord_restate.workflow.convert import to_json
from landlord_restate.workflow.errors import InvalidInputError
from landlord_restate.workflow.types import (
    BackoffType,
    CallbackOptions,
    ComputeCallbackPayload,
    ExecutionInput,
    ProvisionRequest,
)

_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")


def invoke_name_base(workflow_id: str, request: ProvisionRequest) -> str:
    """The execution name of `invoke`'s identity, before its run number.

    Readable (tenant and operation, made name-safe) and exact (a digest of tenant,
    workflow, operation and configuration, since the readable part may be cut or folded).
    """
    tenant = request.tenant_uuid or request.tenant_id
    operation = request.operation or "provision"
    configuration = request.metadata.get("config_hash") or config_hash(request.desired_config)
    digest = hashlib.sha256(
        json.dumps([tenant, workflow_id, operation, configuration]).encode()
    ).hexdigest()[:16]
    readable = _NAME_UNSAFE.sub("-", f"{tenant}-{operation}")[:80]
    return f"{readable}-{digest}"


def check_provision_request(request: Any, workflow_id: str) -> None:
    """A ProvisionRequest with a tenant, string fields, string metadata and a desired
    configuration Go reads back as it was, or a typed error naming the field.

    What `invoke` makes of it is checked here too: the tenant ids and the operation become
    the run's tags (1,024 characters at most), and the configuration's hash its identity.
    """
    if not isinstance(request, ProvisionRequest):
        raise InvalidInputError(
            f"expected a ProvisionRequest, got {type(request).__name__}",
            field="request", workflow_id=workflow_id,
        )
    for name in ("tenant_id", "tenant_uuid", "operation", "compute_provider", "api_base_url"):
        value = getattr(request, name)
        if not isinstance(value, str):
            raise InvalidInputError(
                f"request.{name} must be a string, got {type(value).__name__}",
                field=name, workflow_id=workflow_id,
            )
        check_text(value, f"request.{name}",
                   MAX_MAP_VALUE if name in _TAGGED else MAX_INPUT_BYTES, workflow_id=workflow_id)
    if not (request.tenant_uuid or request.tenant_id):
        raise InvalidInputError(
            "request.tenant_id (or tenant_uuid) is required", field="tenant_id",
            workflow_id=workflow_id,
        )
    if not isinstance(request.desired_config, Mapping):
        raise InvalidInputError(
            "request.desired_config must be a JSON object", field="desired_config",
            workflow_id=workflow_id,
        )
    check_string_map(request.metadata, "metadata", workflow_id=workflow_id)
    # what passes here, config_hash encodes as Go does: numbers within float64's range,
    # Unicode strings, string keys, any Mapping as an object
    check_json(request.desired_config, "request.desired_config", workflow_id=workflow_id)


#: the request's fields `invoke` puts in the run's tags (as Landlord's workflow client does)
_TAGGED = frozenset({"tenant_id", "tenant_uuid", "operation"})


#: what a compute callback's status may say (Landlord's compute statuses)
_CALLBACK_STATUSES = frozenset({"pending", "running", "succeeded", "failed"})


def callback_body(payload: ComputeCallbackPayload, execution_id: str) -> bytes:
    """The payload as the shim receives it, each field checked (types, sizes, JSON)."""
    for name, limit in (("execution_id", MAX_MAP_VALUE), ("tenant_id", MAX_MAP_VALUE),
                        ("error_code", MAX_MAP_VALUE), ("error_message", MAX_MESSAGE)):
        check_text(getattr(payload, name), f"payload.{name}", limit, execution_id=execution_id)
    if not isinstance(payload.status, str) or payload.status not in _CALLBACK_STATUSES:
        raise InvalidInputError(
            f"payload.status must be one of {', '.join(sorted(_CALLBACK_STATUSES))}, got "
            f"{payload.status!r}", field="payload.status", execution_id=execution_id,
        )
    if not isinstance(payload.is_retriable, bool):
        raise InvalidInputError("payload.is_retriable must be true or false",
                                field="payload.is_retriable", execution_id=execution_id)
    resource_ids = {} if payload.resource_ids is None else payload.resource_ids  # Go's null
    if not isinstance(resource_ids, Mapping):
        raise InvalidInputError(
            "payload.resource_ids must be a JSON object (resource type -> id), got "
            f"{type(resource_ids).__name__}", field="payload.resource_ids",
            execution_id=execution_id,
        )
    check_json(resource_ids, "payload.resource_ids", execution_id=execution_id)
    payload = attrs.evolve(payload, resource_ids=dict(resource_ids))
    return encode_json(to_json(payload), "payload", limit=MAX_INPUT_BYTES,
                       execution_id=execution_id).encode()


def callback_backoff(options: Any, execution_id: str) -> Backoff | None:
    """The retry of a callback delivery that Landlord's CallbackOptions ask for."""
    if options is None:
        return None
    if not isinstance(options, CallbackOptions):
        raise InvalidInputError(
            f"expected CallbackOptions, got {type(options).__name__}",
            field="options", execution_id=execution_id,
        )
    retries = options.max_retries
    if not isinstance(retries, int) or isinstance(retries, bool) or not (
        0 <= retries <= MAX_CALLBACK_RETRIES
    ):
        raise InvalidInputError(
            f"options.max_retries must be a whole number from 0 to {MAX_CALLBACK_RETRIES}, "
            f"got {retries!r}", field="options.max_retries", execution_id=execution_id,
        )
    delay = options.retry_delay
    if not isinstance(delay, timedelta) or not timedelta(0) <= delay <= MAX_CALLBACK_DELAY:
        raise InvalidInputError(
            f"options.retry_delay must be a duration from 0s to 1h, got {delay!r}",
            field="options.retry_delay", execution_id=execution_id,
        )
    if not isinstance(options.backoff_type, str) or options.backoff_type not in set(BackoffType):
        raise InvalidInputError(
            f"options.backoff_type must be exponential or linear, got {options.backoff_type!r}",
            field="options.backoff_type", execution_id=execution_id,
        )
    first = delay.total_seconds()
    return Backoff(
        window=0.0, min_retries=retries, max_retries=retries, first_delay=first,
        max_delay=max(first, CALLBACK_DELAY_CAP.total_seconds()),
        growth=str(BackoffType(options.backoff_type)),
    )


def check_execution_input(
    workflow_id: str, execution: Any, *, on_lambda: bool = False
) -> tuple[str, str]:
    """The execution's name (generated when empty) and its input encoded as JSON, every
    bound checked before any I/O; `on_lambda`: the deployment runs on AWS Lambda, whose
    invocations carry the input base64 in a 6 MB payload."""
    check_workflow_id(workflow_id)
    if not isinstance(execution, ExecutionInput):
        raise InvalidInputError(
            f"expected an ExecutionInput, got {type(execution).__name__}",
            field="execution", workflow_id=workflow_id,
        )
    name = execution.execution_name or f"exec-{uuid.uuid4().hex}"
    check_execution_name(name)
    check_string_map(execution.tags, "tags", workflow_id=workflow_id)
    check_string_map(execution.metadata, "metadata", workflow_id=workflow_id)
    check_text(execution.trigger_source, "trigger_source", MAX_TRIGGER_SOURCE,
               workflow_id=workflow_id)
    encoded = encode_json(execution.input, "input", limit=MAX_INPUT_BYTES,
                          workflow_id=workflow_id)
    if on_lambda and len(encoded) > MAX_LAMBDA_INPUT_BYTES:
        raise InvalidInputError(
            f"input is {len(encoded)} bytes; a run on AWS Lambda takes at most "
            f"{MAX_LAMBDA_INPUT_BYTES} (each invocation carries it, base64, in Lambda's 6 MB "
            "request): store large data elsewhere and pass a reference",
            field="input", workflow_id=workflow_id,
        )
    return name, encoded


def check_wait_timeout(timeout: Any, execution_id: str) -> float | None:
    """None (wait as long as it takes) or a positive, finite number of seconds."""
    if timeout is None:
        return None
    seconds = None
    if isinstance(timeout, int | float) and not isinstance(timeout, bool):
        try:
            seconds = float(timeout)
        except OverflowError:  # an int beyond float's range
            seconds = None
    if seconds is None or not 0 < seconds < float("inf"):
        shown = (f"an integer of {timeout.bit_length()} bits"
                 if isinstance(timeout, int) and timeout.bit_length() > 64 else repr(timeout))
        raise InvalidInputError(
            f"timeout must be a positive number of seconds or None, got {shown}",
            field="timeout", execution_id=execution_id,
        )
    return seconds



def caller_metadata(metadata: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """An execution's own metadata without the keys only the provider states (status
    metadata such as `deployment_id`, `stopped_by`, `redriven_from`: operators act on
    them as facts), and the keys dropped."""
    dropped = sorted(key for key in metadata if key in PROVIDER_METADATA_KEYS)
    return {k: v for k, v in metadata.items() if k not in PROVIDER_METADATA_KEYS}, dropped
