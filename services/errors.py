"""How a handler fails, Go-style: a code and a message, terminal, never retried."""

from __future__ import annotations


class HandlerError(Exception):
    """Fail the execution for good with `code` and `message` (Go's returned `error`)."""

    def __init__(self, code: str, message: str, cause: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.cause = cause
