"""How the local Lambda runs its function: the app's Lambda handler, one invocation per
worker thread, each on an event loop made for it and closed after it.

Lambda runs one invocation at a time per instance and freezes the instance between them,
so nothing an invocation leaves running survives it: what is left is cancelled, and
counted. The handler is imported once, before serving (Lambda's init phase).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

LambdaHandler = Callable[[dict[str, Any], Any], Any]


class _Context:
    """The `context` Lambda passes a handler: what the Restate SDK may read of it."""

    def __init__(self, arn: str, request_id: str, deadline: float) -> None:
        self.invoked_function_arn = arn
        self.function_name = arn.split(":")[6]
        self.function_version = arn.split(":")[7]
        self.aws_request_id = request_id
        self.memory_limit_in_mb = "1024"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda would end this invocation."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(target: str) -> LambdaHandler:
    """`module:attribute`, imported now (Lambda's init phase): an import error ends this
    process with its traceback, which the owner reads to name the module."""
    module, _, attribute = target.partition(":")
    handler = getattr(importlib.import_module(module), attribute or "app")
    if not callable(handler) or len(inspect.signature(handler).parameters) != 2 or (
        inspect.iscoroutinefunction(handler)
    ):
        raise TypeError(
            f"{target} is not a Lambda handler (event, context): an ASGI app? The Restate "
            "SDK builds its Lambda handler only when AWS_LAMBDA_FUNCTION_NAME is set at import"
        )
    return handler  # type: ignore[no-any-return]


class Runner:
    """The function's handler and the worker threads its invocations run in."""

    def __init__(self, config: dict[str, Any], handler: LambdaHandler) -> None:
        self.arn: str = config["arn"]
        self._handler = handler
        self._pool = ThreadPoolExecutor(max_workers=int(config.get("concurrency", 64)),
                                        thread_name_prefix="lambda-invocation")

    async def run(self, event: Any, request_id: str) -> tuple[bytes, str | None, int]:
        """One invocation of the handler with `event`, in a worker thread (more than the
        threads wait their turn): see `_run`."""
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self._run, event, request_id)

    def _run(self, event: Any, request_id: str) -> tuple[bytes, str | None, int]:
        """One invocation in this worker thread, on an event loop made for it and closed
        after (the SDK's handler runs on the thread's current loop): (the JSON answer, the
        function error if it raised, how many tasks it left running)."""
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        error: str | None = None
        try:
            answer = self._handler(event, _Context(self.arn, request_id, time.monotonic() + 900))
            payload = json.dumps(answer, separators=(",", ":")).encode()
        except BaseException as exc:  # Lambda reports any failure, even SystemExit
            error = "Unhandled"
            payload = json.dumps({
                "errorMessage": str(exc), "errorType": type(exc).__name__,
                "stackTrace": traceback.format_tb(exc.__traceback__)}).encode()
            traceback.print_exc()
        finally:
            leftover = _close(loop)
        return payload, error, leftover

    def shutdown(self) -> None:
        """Drop what is queued; invocations in flight end with the process."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def _close(loop: asyncio.AbstractEventLoop) -> int:
    """Cancel what the invocation left running (a frozen Lambda instance would never run
    it either), close the loop; answer how many tasks were left."""
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        return len(pending)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
