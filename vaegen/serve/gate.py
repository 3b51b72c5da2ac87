"""Model calls one at a time, behind a bounded queue with a timeout.

A model holds one set of weights and decodes a batch at a time; running requests side by side would only
share the cores and multiply the memory. Calls go to one worker thread in order. At most `depth` wait; a
request beyond that is refused at once (503), and one that waits past `timeout` is dropped from the queue
(503), so a burst of requests costs a bounded queue, never unbounded memory or unbounded waiting. The
application opens its gate on startup and closes it on shutdown (`with ModelGate() as gate:`); a closed gate
refuses every call (503) and drops the calls still waiting.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Self, TypeVar

from fastapi import HTTPException

T = TypeVar("T")


class ModelGate:
    def __init__(self, depth: int = 64, timeout: float = 60.0) -> None:
        self.depth, self.timeout = depth, timeout
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaegen-model")
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not yet finished or dropped
        self.closed = False

    def _finished(self, _: Future[Any]) -> None:
        with self._lock:
            self._pending -= 1

    async def run(self, call: Callable[[], T]) -> T:
        """The result of `call()`, run on the model's worker after the calls before it."""
        with self._lock:
            if self.closed:
                raise HTTPException(503, "the server is shutting down")
            if self._pending >= self.depth:
                raise HTTPException(503, f"the server is busy ({self.depth} requests waiting); retry in a moment")
            self._pending += 1
            future = self._worker.submit(call)  # under the lock: close() cannot shut the worker down in between
        future.add_done_callback(self._finished)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
        except TimeoutError:
            future.cancel()
            raise HTTPException(503, f"the model did not answer within {self.timeout:g} s; "
                                     "retry with fewer sentences or steps") from None

    def close(self) -> None:
        """Refuse new calls and drop those waiting; a call already running finishes on its worker."""
        with self._lock:
            self.closed = True
        self._worker.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
