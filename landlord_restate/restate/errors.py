"""Errors of the Restate transport: reaching the server, its refusals, and answers of the
wrong shape. Re-exported from `landlord_restate`; the contract's errors stay in
`landlord_restate.workflow.errors`.
"""

from __future__ import annotations

import json
from typing import Any

from landlord_restate.workflow.errors import WorkflowError


class RestateConnectionError(WorkflowError):
    """Restate could not be reached at `endpoint` (refused, reset, timed out)."""

    def __init__(
        self,
        endpoint: str,
        reason: str,
        *,
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(
            f"cannot reach Restate at {endpoint}: {reason}",
            workflow_id=workflow_id,
            execution_id=execution_id,
        )
        self.endpoint = endpoint
        self.reason = reason


class RestateUnavailableError(RestateConnectionError):
    """Restate kept answering "not ready" (or not at all) for the whole retry window.

    Raised for idempotent calls only, after retries across every configured node: the
    server is restarting, electing partition leaders, or down. `reason` is Restate's last
    answer; `nodes` the endpoints that were tried.
    """

    def __init__(
        self,
        endpoint: str,
        reason: str,
        *,
        nodes: tuple[str, ...] = (),
        waited: float = 0.0,
        status: int | None = None,
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        others = [node for node in nodes if node != endpoint]
        tried = f" (also tried {', '.join(others)})" if others else ""
        super().__init__(
            endpoint,
            f"unavailable for {waited:.1f}s{tried}: {reason}",
            workflow_id=workflow_id,
            execution_id=execution_id,
        )
        self.reason = reason
        self.nodes = nodes or (endpoint,)
        self.waited = waited
        self.status = status


class RestateServerError(WorkflowError):
    """Restate answered with an error; carries its status and (an excerpt of) its body.

    `restate_code` and `source` are read from the whole answer (`answer`, when the caller
    has it), not the excerpt: Restate puts them after the message, which can be long (its
    answer about a Lambda function carries the AWS SDK's whole error).
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        status: int,
        body: str,
        workflow_id: str | None = None,
        execution_id: str | None = None,
        hint: str = "",
        answer: str | None = None,
    ) -> None:
        super().__init__(
            f"Restate answered {status} to {method} {url}: {body}" + (f" ({hint})" if hint
                                                                        else ""),
            workflow_id=workflow_id,
            execution_id=execution_id,
        )
        self.method = method
        self.url = url
        self.status = status
        #: the server's answer (an excerpt), as it sent it
        self.body = body
        #: what the provider suggests, kept apart from what the server said
        self.hint = hint
        whole = body if answer is None else answer
        code, source = _answer_field(whole, "restate_code"), _answer_field(whole, "source")
        #: Restate's error code (`META0003`, `RT0007`, ...) when its answer gives one
        self.restate_code: str | None = code if isinstance(code, str) else None
        #: who the ingress says failed: `ingress` (Restate refused the call) or `invocation`
        #: (the handler's own failure, in its own words)
        self.source: str | None = source if isinstance(source, str) else None


def _answer_field(body: str, name: str) -> Any:
    """A field of Restate's JSON error answer, or None."""
    try:
        decoded = json.loads(body)
    except ValueError:
        return None
    return decoded.get(name) if isinstance(decoded, dict) else None


class RestateProtocolError(RestateServerError):
    """Restate answered, successfully, with something of the wrong shape.

    Says what was expected and shows an excerpt of what came; a `RestateServerError`, so
    handlers of server errors keep catching it. Data from the server that fails a check is
    the server's fault, never the caller's `InvalidInputError`.
    """

    def __init__(
        self,
        *,
        method: str,
        url: str,
        expected: str,
        got: str,
        status: int = 200,
        workflow_id: str | None = None,
        execution_id: str | None = None,
    ) -> None:
        super().__init__(
            method=method, url=url, status=status, body=f"expected {expected}, got: {got[:400]}",
            workflow_id=workflow_id, execution_id=execution_id,
        )
        self.expected = expected


class DeploymentError(WorkflowError):
    """The handler deployment failed, not Restate: Restate's answer about it, unchanged.

    Raised when Restate could not discover or reach the deployment at `deployment` (a URL or
    Lambda ARN), or refused what it serves; `restate_code` is Restate's code (`META0003`,
    ...) where it gave one, `status` and `body` its answer.
    """

    def __init__(
        self,
        message: str,
        *,
        deployment: str,
        status: int | None = None,
        restate_code: str | None = None,
        body: str = "",
        workflow_id: str | None = None,
    ) -> None:
        super().__init__(message, workflow_id=workflow_id)
        self.deployment = deployment
        self.status = status
        self.restate_code = restate_code
        self.body = body


class DeploymentInUseError(WorkflowError):
    """A deployment still runs executions (or is the only one serving a workflow's service),
    so removing or re-registering it would strand them; nothing was changed."""

    def __init__(self, message: str, *, deployment_id: str, in_flight: int) -> None:
        super().__init__(message)
        self.deployment_id = deployment_id
        self.in_flight = in_flight


class InvokeContentionError(WorkflowError):
    """`invoke` found every run it tried already ended (invokes racing runs that end at
    once); a logic condition of the provider, not an answer of Restate's."""
