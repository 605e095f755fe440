"""Names and ids both sides agree on: service names, Go handler names, workflow keys.

Pure functions, shared by the provider and the handler deployment, so a name the provider
computes is the name the deployment serves.

Internal: not API (the public names are in the package's `__all__`).
"""

from __future__ import annotations

import re

from landlord_restate.workflow.errors import InvalidInputError, InvalidSpecError

#: Landlord's workflow id rule
WORKFLOW_ID = re.compile(r"^[a-z0-9-]{1,128}$")
#: Landlord's execution name rule
EXECUTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
#: what Restate accepts as a service name
SERVICE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: a Go exported identifier: what a definition's handler names
GO_EXPORTED = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
#: a Go import path, then '.', then the exported identifier
GO_QUALIFIED = re.compile(r"^[A-Za-z0-9_.~/-]+\.([A-Z][A-Za-z0-9_]*)$")
#: a Restate invocation id, as the ingress returns it ("inv_" + base62)
INVOCATION_ID = re.compile(r"^inv_[0-9A-Za-z]{20,64}$")
#: a qualified AWS Lambda function ARN: Restate refuses one without a version or alias (it
#: pins each execution to the code it started on)
LAMBDA_FUNCTION_ARN = re.compile(
    r"^arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64}):(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128})$"
)
#: an IAM role ARN: what restate-server may assume to invoke a Lambda function
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")

#: separates workflow id and execution name in a workflow key; in neither alphabet
KEY_SEPARATOR = "."
#: a workflow key: both rules above, joined by the separator
WORKFLOW_KEY = re.compile(
    WORKFLOW_ID.pattern.removesuffix("$") + re.escape(KEY_SEPARATOR)
    + EXECUTION_NAME.pattern.removeprefix("^")
)


def check_workflow_id(workflow_id: str) -> str:
    """Return `workflow_id` if it follows Landlord's rule, else `InvalidSpecError`."""
    if not isinstance(workflow_id, str) or not WORKFLOW_ID.fullmatch(workflow_id):
        raise InvalidSpecError(
            f"workflow_id {workflow_id!r} must match {WORKFLOW_ID.pattern}",
            field="workflow_id",
            workflow_id=workflow_id if isinstance(workflow_id, str) else None,
        )
    return workflow_id


def service_name_for(workflow_id: str) -> str:
    """Derive the Restate service name: 'tenant-provisioning' -> 'TenantProvisioning'."""
    check_workflow_id(workflow_id)
    name = "".join(part[:1].upper() + part[1:] for part in workflow_id.split("-"))
    if not SERVICE_NAME.fullmatch(name):
        raise InvalidSpecError(
            f"workflow_id {workflow_id!r} does not yield a valid Restate service name "
            f"({name!r} must start with a letter); set service_name in the config",
            field="workflow_id",
            workflow_id=workflow_id,
        )
    return name


def check_service_name(name: str) -> str:
    """Return `name` if Restate accepts it as a service name."""
    if not isinstance(name, str) or not SERVICE_NAME.fullmatch(name):
        raise InvalidSpecError(
            f"service name {name!r} must match {SERVICE_NAME.pattern}", field="service_name"
        )
    return name


def go_handler_name(reference: str) -> str:
    """The exported identifier of a handler reference, plain or Go-qualified.

    'TenantProvisioning' and 'github.com/acme/landlord/workflows.TenantProvisioning'
    both name 'TenantProvisioning'.
    """
    if not isinstance(reference, str):
        raise InvalidSpecError("definition.handler must be a string", field="definition.handler")
    if GO_EXPORTED.fullmatch(reference):
        return reference
    qualified = GO_QUALIFIED.fullmatch(reference)
    if qualified:
        return qualified.group(1)
    raise InvalidSpecError(
        f"definition.handler {reference!r} must be a Go exported identifier "
        "('TenantProvisioning') or a Go-qualified one ('example.com/pkg.TenantProvisioning')",
        field="definition.handler",
    )


def check_execution_name(name: str) -> str:
    """Return `name` if it follows Landlord's execution name rule."""
    if not isinstance(name, str) or not EXECUTION_NAME.fullmatch(name):
        raise InvalidInputError(
            f"execution_name {name!r} must match {EXECUTION_NAME.pattern}",
            field="execution_name",
        )
    return name


def check_execution_id(execution_id: str) -> str:
    """Return `execution_id` if it is a Restate invocation id; only then may it enter SQL."""
    if not isinstance(execution_id, str) or not INVOCATION_ID.fullmatch(execution_id):
        raise InvalidInputError(
            f"execution id {execution_id!r} is not a Restate invocation id (inv_...)",
            field="execution_id",
            execution_id=execution_id if isinstance(execution_id, str) else None,
        )
    return execution_id


def workflow_key(workflow_id: str, execution_name: str) -> str:
    """The Restate workflow key of one execution: unique per workflow and name."""
    return f"{workflow_id}{KEY_SEPARATOR}{execution_name}"


def split_workflow_key(key: str) -> tuple[str, str]:
    """(workflow id, execution name) of a workflow key made by `workflow_key`."""
    workflow_id, _, name = key.partition(KEY_SEPARATOR)
    return workflow_id, name
