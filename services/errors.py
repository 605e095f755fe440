"""How a handler fails, Go-style: a code and a message, terminal, never retried."""

from __future__ import annotations

from typing import Any

import restate

from landlord_restate.restate.limits import MAX_MAP_VALUE, MAX_MESSAGE


class HandlerError(Exception):
    """Fail the execution for good with `code` and `message` (Go's returned `error`)."""

    def __init__(self, code: str, message: str, cause: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.cause = cause


def readable(exc: BaseException) -> str | None:
    """`Type: message` of an exception, or None when its str() or repr() itself raises."""
    try:
        text = str(exc)
        repr(exc)
    except Exception:
        return None
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def checked(error: HandlerError) -> HandlerError:
    """`error` with string fields of bounded size, or an `invalid_handler_error` saying why.

    A HandlerError is recorded in Restate state and read back by the provider; fields that
    are not strings would fail that write on every retry, and a 40 MiB message would be
    refused. Long messages are cut, with a note saying how long they were.
    """
    fields: dict[str, Any] = {"code": error.code, "message": error.message,
                              "cause": error.cause}
    wrong = [name for name, value in fields.items() if not isinstance(value, str)]
    if wrong or not error.code:
        return HandlerError(
            "invalid_handler_error",
            f"the handler raised a HandlerError whose {', '.join(wrong) or 'code'} "
            f"{'is not a string' if wrong else 'is empty'}",
        )
    return HandlerError(
        _cut(error.code, MAX_MAP_VALUE), _cut(error.message, MAX_MESSAGE),
        _cut(error.cause, MAX_MESSAGE),
    )


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... (cut: {len(text)} characters in all)"


def terminal_failure(exc: BaseException, where: str) -> HandlerError | None:
    """What a handler's (or a step's) exception means: a HandlerError to end the execution
    with now, or None for a failure Restate should retry.

    The one classification of handler failures: a HandlerError ends it with its code
    (checked); an Exception whose message cannot be read fails the same way on every retry,
    so it ends it (`invalid_handler_error`); any other Exception is a real failure and is
    retried; a BaseException that is not cancellation (SystemExit, KeyboardInterrupt, ...)
    would take the deployment process down with every execution on it, so it ends this
    one (`handler_crashed`). `where` names the handler or the step, for the message.
    """
    if isinstance(exc, HandlerError):
        return checked(exc)
    described = readable(exc)
    if described is None:
        return HandlerError("invalid_handler_error",
                            f"{where} raised {type(exc).__name__}, whose message cannot be read")
    if isinstance(exc, Exception):
        return None
    return HandlerError("handler_crashed",
                        f"{where} raised {described}; the execution ends here, the deployment "
                        "stays up")


#: Restate's cancellation: a stop, as a handler sees it at its next await
CANCELLED = 409
#: what a run that ran past its timeout ends with (HTTP's Request Timeout)
TIMED_OUT = 408


class ExecutionTimedOut(restate.TerminalError):
    """The execution ran past its timeout: raised at the handler's next step, sleep or
    callback wait once the run's durable deadline timer has fired, and again at every one
    after (a handler that catches it cannot run on)."""

    def __init__(self, timeout: str) -> None:
        super().__init__(f"timeout: the execution exceeded its timeout of {timeout}", TIMED_OUT)


def status_code_for(code: str) -> int:
    """The HTTP-like status a run's terminal failure carries, by Landlord's code, so
    Restate's UI tells a caller's mistake (4xx) from a failure of the work (500)."""
    if code.startswith("invalid_"):
        return 400
    return _STATUS_BY_CODE.get(code, 500)


_STATUS_BY_CODE = {"workflow_not_found": 404, "handler_not_found": 404,
                   "unknown_operation": 400, "timeout": TIMED_OUT, "stopped": CANCELLED}
