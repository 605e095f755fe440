"""Offline checks of a WorkflowSpec for Restate, and where it will run.

Every failure is an InvalidSpecError naming the field and saying why, raised before
anything reaches the server.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from attrs import frozen

from landlord_restate.restate.limits import (
    MAX_BACKOFF_RATE,
    MAX_DESCRIPTION,
    MAX_NAME,
    MAX_RETRY_ATTEMPTS,
    check_duration,
    check_string_map,
    check_text,
)
from landlord_restate.restate.naming import (
    check_service_name,
    check_workflow_id,
    go_handler_name,
    service_name_for,
)
from landlord_restate.restate.wire import HANDLERS_METADATA, PROVIDER_TYPE
from landlord_restate.workflow.errors import InvalidSpecError
from landlord_restate.workflow.types import RetryPolicy, WorkflowSpec

DEFINITION_KEYS = frozenset({"handler"})
#: provider_config keys and the type each value must have
PROVIDER_CONFIG_KEYS: Mapping[str, type] = {"service_name": str}


@frozen
class ResolvedSpec:
    """A checked spec's Restate coordinates."""

    workflow_id: str
    service: str
    handler: str


def check_spec(spec: WorkflowSpec, default_service: str | None = None) -> ResolvedSpec:
    """Check `spec`; answer the service and Go handler its executions run on.

    The service is provider_config.service_name, else `default_service` (the config's),
    else derived from the workflow id.
    """
    if not isinstance(spec, WorkflowSpec):
        raise InvalidSpecError(f"expected a WorkflowSpec, got {type(spec).__name__}")
    workflow_id = check_workflow_id(spec.workflow_id)

    def fail(field: str, why: str) -> InvalidSpecError:
        return InvalidSpecError(f"{field}: {why}", field=field, workflow_id=workflow_id)

    if spec.provider_type not in ("", PROVIDER_TYPE):
        raise fail("provider_type", f"must be {PROVIDER_TYPE!r}, got {spec.provider_type!r}")
    if not isinstance(spec.name, str) or len(spec.name) > MAX_NAME:
        raise fail("name", f"must be a string of at most {MAX_NAME} characters")
    check_text(spec.description, "description", MAX_DESCRIPTION, error=InvalidSpecError,
               workflow_id=workflow_id)
    if not isinstance(spec.timeout, timedelta) or spec.timeout < timedelta(0):
        raise fail("timeout", f"must be a duration of zero or more, got {spec.timeout!r}")
    check_duration(spec.timeout, "timeout", error=InvalidSpecError, workflow_id=workflow_id)
    check_string_map(spec.tags, "tags", error=InvalidSpecError, workflow_id=workflow_id)
    if spec.retry_policy is not None:
        _check_retry_policy(spec.retry_policy, fail)
    handler = _check_definition(spec.definition, fail)
    service = _check_provider_config(spec.provider_config, fail) or default_service
    service = check_service_name(service) if service else service_name_for(workflow_id)
    return ResolvedSpec(workflow_id=workflow_id, service=service, handler=handler)


def _check_retry_policy(policy: RetryPolicy, fail: Any) -> None:
    if not isinstance(policy, RetryPolicy):
        raise fail("retry_policy", "must be a RetryPolicy")
    attempts = policy.max_attempts
    if not isinstance(attempts, int) or isinstance(attempts, bool) or not (
        0 <= attempts <= MAX_RETRY_ATTEMPTS
    ):
        raise fail("retry_policy.max_attempts",
                   f"must be zero (default) up to {MAX_RETRY_ATTEMPTS}, got {attempts!r}")
    rate = policy.backoff_rate
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not (
        rate == 0 or 1 <= rate <= MAX_BACKOFF_RATE
    ):
        raise fail("retry_policy.backoff_rate",
                   f"must be zero (default) or from 1.0 to {MAX_BACKOFF_RATE}, got {rate!r}")
    for name in ("initial_interval", "max_interval"):
        value = getattr(policy, name)
        if not isinstance(value, timedelta) or value < timedelta(0):
            raise fail(f"retry_policy.{name}", "must be a duration of zero or more")
        check_duration(value, f"retry_policy.{name}", error=InvalidSpecError)
    if policy.initial_interval and policy.max_interval and (
        policy.max_interval < policy.initial_interval
    ):
        raise fail("retry_policy.max_interval", "must not be shorter than initial_interval")


def _check_definition(definition: Any, fail: Any) -> str:
    if not isinstance(definition, Mapping):
        raise fail(
            "definition", 'must be a JSON object such as {"handler": "TenantProvisioning"}'
        )
    unknown = sorted(set(definition) - DEFINITION_KEYS)
    if unknown:
        raise fail("definition", f"unknown keys {unknown}; known: {sorted(DEFINITION_KEYS)}")
    reference = definition.get("handler")
    if not isinstance(reference, str) or not reference:
        raise fail("definition.handler", "is required: the Go handler to run")
    try:
        return go_handler_name(reference)
    except InvalidSpecError as exc:
        raise fail("definition.handler", exc.message) from None


def _check_provider_config(config: Any, fail: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise fail("provider_config", "must be a JSON object or null")
    unknown = sorted(set(config) - set(PROVIDER_CONFIG_KEYS))
    if unknown:
        raise fail(
            "provider_config", f"unknown keys {unknown}; known: {sorted(PROVIDER_CONFIG_KEYS)}"
        )
    for key, kind in PROVIDER_CONFIG_KEYS.items():
        if key in config and not isinstance(config[key], kind):
            raise fail(f"provider_config.{key}", f"must be a {kind.__name__}")
    service = config.get("service_name")
    if service is not None:
        try:
            check_service_name(service)
        except InvalidSpecError as exc:
            raise fail("provider_config.service_name", exc.message) from None
    return service


def hosted_handlers(service: Mapping[str, Any]) -> set[str]:
    """The Go handler names a Restate service says (in its metadata) that it hosts."""
    listed = str((service.get("metadata") or {}).get(HANDLERS_METADATA, ""))
    return {name for name in listed.split(",") if name}
