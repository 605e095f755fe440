"""What create_workflow registers per execution mechanism (the real server for self-hosted
and Lambda, a stand-in admin API for the rest); the app on AWS Lambda."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from typing import Any

import pytest

from landlord_restate import (
    ExecutionInput,
    ExecutionState,
    RestateConfig,
    RestateProvider,
)
from landlord_restate.testing import LocalRestate
from tests.conftest import MECHANISMS, ROOT, spec_for, unique_id
from tests.fakes import FakeRestateAdmin, serve
from tests.waiting import wait_terminal


@pytest.mark.parametrize("mechanism", MECHANISMS, indirect=True)
async def test_each_mechanism_against_the_real_server(
    mechanism: str, mechanism_stack: LocalRestate
) -> None:
    """self-hosted: deployment_url registered as given; lambda: the function's ARN, through
    restate-server's own Lambda client (a local Lambda); executions run on both."""
    config = mechanism_stack.config(execution_mechanism=mechanism)
    async with RestateProvider(config) as provider:
        spec = spec_for("GoPair", unique_id(mechanism))
        created = await provider.create_workflow(spec)
        started = await provider.start_execution(spec.workflow_id, ExecutionInput(input={}))
        status = await wait_terminal(provider, started.execution_id)
    expected = (config.lambda_arn if mechanism == "lambda" else config.deployment_url)
    assert created.resource_ids["deployment"] == expected
    assert status.state is ExecutionState.SUCCEEDED


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (
            {"execution_mechanism": "kubernetes", "kubernetes_service": "landlord-workers",
             "kubernetes_namespace": "tenants"},
            {"uri": "http://landlord-workers.tenants.svc.cluster.local:9080", "force": False},
        ),
        (
            {"execution_mechanism": "fargate",
             "deployment_url": "http://internal-alb-123.eu-west-1.elb.amazonaws.com",
             "use_http_11": True, "deployment_headers": {"x-landlord-route": "workers"}},
            {"uri": "http://internal-alb-123.eu-west-1.elb.amazonaws.com", "use_http_11": True,
             "additional_headers": {"x-landlord-route": "workers"}, "force": False},
        ),
        (
            {"execution_mechanism": "lambda", "auth_type": "iam",
             "lambda_arn": "arn:aws:lambda:eu-west-1:123456789012:function:landlord:3",
             "assume_role_arn": "arn:aws:iam::123456789012:role/restate-invoker"},
            {"arn": "arn:aws:lambda:eu-west-1:123456789012:function:landlord:3",
             "assume_role_arn": "arn:aws:iam::123456789012:role/restate-invoker",
             "force": False},
        ),
    ],
)
async def test_cloud_mechanisms_send_the_exact_registration(
    settings: dict[str, Any], expected: dict[str, Any]
) -> None:
    """A stand-in admin API records what create_workflow sends for each cloud mechanism."""
    fake = FakeRestateAdmin("TenantProvisioning", ["TenantProvisioning"])
    async with serve(fake.app) as url:
        config = RestateConfig(endpoint=url, admin_endpoint=url, **settings).check()
        async with RestateProvider(config) as provider:
            result = await provider.create_workflow(spec_for("TenantProvisioning"))
            await provider.validate(spec_for("TenantProvisioning"))
    # create_workflow asks by dry run first (a refused spec must change nothing), then
    # registers once; validate asks by dry run only
    registered = [r for r in fake.registrations() if not r.get("dry_run")]
    asked = [r for r in fake.registrations() if r.get("dry_run")]
    assert registered == [expected]
    assert asked == [expected | {"force": True, "dry_run": True}] * 2
    assert result.resource_ids["deployment_id"] == "dp_fake"
    assert result.resource_ids["deployment"] == config.deployment_address


def test_the_app_answers_a_lambda_discovery_request() -> None:
    """services.app:app on Lambda: the same module answers Restate's discovery event."""
    probe = """
import base64, json
from services.app import app
event = {
    "httpMethod": "GET",
    "path": "/discover",
    "headers": {"accept": "application/vnd.restate.endpointmanifest.v3+json"},
    "body": "",
    "isBase64Encoded": True,
}
answer = app(event, None)
print(json.dumps(answer))
"""
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_NAME": "landlord", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
        check=False, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["statusCode"] == 200
    manifest = json.loads(base64.b64decode(answer["body"]))
    assert manifest["protocolMode"] == "REQUEST_RESPONSE"
    names = {service["name"] for service in manifest["services"]}
    assert {"TenantProvisioning", "LandlordCatalog"} <= names
