"""A local AWS Lambda for restate-server's own Lambda client: the function host as a child
process, serving Lambda's Invoke API and STS `AssumeRole` on a socket this object holds.

restate-server reaches AWS through the standard AWS SDK settings, so pointing
`AWS_ENDPOINT_URL_LAMBDA` and `AWS_ENDPOINT_URL_STS` at this process (`server_env()`) makes
the real server register an ARN (`{"arn": ...}`) and run invocations through Lambda's
request/response path: a SigV4-signed `Invoke` per attempt, every await of an unfinished
step ending the attempt, the next one replaying the journal. The function is
`services.app:app` imported with `AWS_LAMBDA_FUNCTION_NAME` set (the Restate SDK's Lambda
handler), one fresh event loop per invocation. What it answers and checks is described in
`landlord_restate.testing._lambda_host`; what it saw, request by request, is `calls()`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import string
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from attrs import frozen

from landlord_restate.testing._deployment import DeploymentProcess
from landlord_restate.testing._lambda_host import HEALTH_PATH, STS_PREFIX
from landlord_restate.testing._processes import _wait_healthy, startup_failure

#: the function a local Lambda serves unless told otherwise (AWS's documentation account)
DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:landlord-restate:1"
#: a role restate-server may assume to invoke it (`LocalRestate(assume_role_arn=...)`)
DEFAULT_ROLE_ARN = "arn:aws:iam::123456789012:role/landlord-restate-invoker"
#: a qualified Lambda function ARN (Restate refuses one without a version or alias)
FUNCTION_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[A-Za-z0-9_-]{1,64}):(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128})"
)
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


def check_arns(function_arn: str, assume_role_arn: str | None) -> re.Match[str]:
    """The parts of `function_arn` (region, account, name, qualifier); ValueError naming
    the setting when it, or `assume_role_arn`, is not of the shape AWS and Restate take."""
    arn = FUNCTION_ARN.fullmatch(function_arn)
    if arn is None:
        raise ValueError(
            f"function_arn {function_arn!r} is not a qualified Lambda function ARN "
            "(arn:aws:lambda:REGION:ACCOUNT:function:NAME:VERSION-OR-ALIAS)")
    if assume_role_arn is not None and not ROLE_ARN.fullmatch(assume_role_arn):
        raise ValueError(f"assume_role_arn {assume_role_arn!r} is not an IAM role ARN "
                         "(arn:aws:iam::ACCOUNT:role/NAME)")
    return arn


def _key(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(string.ascii_uppercase + string.digits)
                            for _ in range(length))


@frozen(kw_only=True)
class LambdaCall:
    """One request the local Lambda answered, as it saw it."""

    #: "invoke" (Lambda's Invoke API) or "assume_role" (STS)
    kind: str
    #: the function ARN invoked, or the role ARN asked for
    target: str
    #: the access key id the request was signed with ("" when it was not signed)
    access_key_id: str
    #: whether it carried a session token (`X-Amz-Security-Token`: assumed-role keys do)
    session_token: bool
    #: the HTTP status answered
    status: int
    #: the AWS error type answered ("" for none; a function error for a handler that raised)
    error: str
    #: the event's path: "/discover", "/invoke/<service>/<handler>"
    path: str
    request_bytes: int
    response_bytes: int
    #: tasks the invocation left running on its event loop (cancelled when it returned)
    leftover_tasks: int
    #: for an AssumeRole answered: the access key id issued
    issued_key: str
    #: wall-clock time it was answered (seconds since the epoch)
    at: float

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> LambdaCall:
        """A line of the calls file."""
        return cls(
            kind=str(record.get("kind", "")), target=str(record.get("target", "")),
            access_key_id=str(record.get("access_key_id", "")),
            session_token=bool(record.get("session_token", False)),
            status=int(record.get("status", 0)), error=str(record.get("error", "")),
            path=str(record.get("path", "")),
            request_bytes=int(record.get("request_bytes", 0)),
            response_bytes=int(record.get("response_bytes", 0)),
            leftover_tasks=int(record.get("leftover_tasks", 0)),
            issued_key=str(record.get("issued_key", "")), at=float(record.get("at", 0.0)),
        )


class LambdaProcess(DeploymentProcess):
    """A local AWS Lambda serving one function version (`function_arn`) on 127.0.0.1: the
    handler deployment as Lambda runs it.

    `start()` imports `app` in a child process with `AWS_LAMBDA_FUNCTION_NAME` set and serves
    Lambda's Invoke API and STS `AssumeRole` on a socket this object holds, so `kill()` and
    `start()` again (a crashed and restarted function host) keep the address; while it is
    down, an invoke waits in the socket's backlog until it is back, as an invoke waits for
    a new Lambda instance. Give restate-server `server_env()`; register `function_arn`
    (`provider_settings()` are the provider's keys for it; `url` is the Invoke API's
    address, not one to register). Requests must be SigV4-signed with the test keys of
    `server_env()`, or, with `assume_role_arn`, with keys this STS issued for that role:
    then only that role may invoke.
    """

    #: the host stops on SIGTERM alone (hypercorn needs a SIGINT after it)
    _stop_signals: tuple[signal.Signals, ...] = (signal.SIGTERM,)

    def __init__(
        self,
        log_file: Path,
        *,
        port: int = 0,
        env: Mapping[str, str] | None = None,
        app: str = "services.app:app",
        function_arn: str = DEFAULT_FUNCTION_ARN,
        assume_role_arn: str | None = None,
        concurrency: int = 64,
        startup_timeout: float = 30.0,
    ) -> None:
        """`env`: added to the caller's environment for the function (its handler modules,
        service name, settings). `concurrency`: invocations run at once (each in a thread
        of its own); more wait their turn."""
        arn = check_arns(function_arn, assume_role_arn)
        super().__init__(log_file, port=port, env=env, app=app, startup_timeout=startup_timeout)
        self.calls_file = log_file.with_name(f"{log_file.stem}.calls.jsonl")
        self.function_arn = function_arn
        self.function_name = arn["name"]
        self.region = arn["region"]
        self.assume_role_arn = assume_role_arn
        self.concurrency = concurrency
        #: the test credentials restate-server signs with (never real AWS keys)
        self.access_key_id = _key("AKIA", 16)
        self._secret_access_key = _key("", 40)
        self._seed = secrets.token_hex(32)

    def server_env(self) -> dict[str, str]:
        """What restate-server's environment needs to reach this Lambda and nothing else:
        both endpoints, the test keys, the region, and no instance metadata or profile
        lookups (`ServerProcess` leaves the caller's other AWS settings out)."""
        nowhere = str(self.log_file.with_name("no-aws-config"))
        return {
            "AWS_ENDPOINT_URL_LAMBDA": self.url,
            "AWS_ENDPOINT_URL_STS": f"{self.url}{STS_PREFIX}",
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self._secret_access_key,
            "AWS_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": nowhere,
            "AWS_SHARED_CREDENTIALS_FILE": nowhere,
        }

    def provider_settings(self) -> dict[str, Any]:
        """The provider's settings that register this function: mechanism, auth and ARNs
        (`RestateConfig(**settings, endpoint=...)`)."""
        settings = {"execution_mechanism": "lambda", "auth_type": "iam",
                    "lambda_arn": self.function_arn}
        if self.assume_role_arn is not None:
            settings["assume_role_arn"] = self.assume_role_arn
        return settings

    def calls(self) -> list[LambdaCall]:
        """Every request answered so far, in order (across restarts)."""
        try:
            text = self.calls_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        # a line is complete once its newline is written: the one after the last newline
        # may be half written right now
        complete = text[:text.rfind("\n") + 1].splitlines()
        return [LambdaCall.from_record(json.loads(line)) for line in complete if line.strip()]

    def invocations(self, arn: str | None = None) -> list[LambdaCall]:
        """The Invoke calls answered so far (of `arn` only, when given)."""
        return [call for call in self.calls()
                if call.kind == "invoke" and (arn is None or call.target == arn)]

    async def start(self) -> None:
        """Start (or restart) the function host on the held socket; wait until it serves."""
        if self.pid is not None:
            return
        config = self.log_file.with_name(f"{self.log_file.stem}.config.json")
        config.parent.mkdir(parents=True, exist_ok=True)
        config.touch(mode=0o600)  # it holds the test keys
        config.write_text(json.dumps({
            "app": self.app, "arn": self.function_arn, "assume_role_arn": self.assume_role_arn,
            "access_key_id": self.access_key_id, "secret_access_key": self._secret_access_key,
            "seed": self._seed, "calls_file": str(self.calls_file),
            "concurrency": self.concurrency,
        }))
        fd = self._socket.fileno()
        argv = [sys.executable, "-m", "landlord_restate.testing._lambda_host", str(config),
                str(fd)]
        self._spawn(argv, self._function_env(), self.log_file, pass_fds=(fd,))
        assert self._process is not None
        await _wait_healthy(
            [("GET", f"{self.url}{HEALTH_PATH}", None)], self._process, self.startup_timeout,
            "the local Lambda", self.log_file, exited=self._exited,
        )

    def _function_env(self) -> dict[str, str]:
        """The caller's environment, `env`, and what Lambda sets for a function; no AWS
        credentials (a function reaches AWS through its role, not the caller's keys)."""
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        return {
            **inherited, **self.env, "PYTHONUNBUFFERED": "1",
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": self.function_arn.rsplit(":", 1)[-1],
            "AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region,
        }

    def _exited(self, returncode: int) -> str:
        return startup_failure("the local Lambda", self.app, self.log_file, self._log_offset,
                               self._function_env(), returncode)
