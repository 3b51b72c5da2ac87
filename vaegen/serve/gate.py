"""Model calls sharing one model fairly, behind a bounded queue with a timeout; a call given up is stopped.

A model holds one set of weights: running requests side by side would only share the cores and multiply the
memory, so one call has the model at a time. But one call after another, in arrival order, lets one user's
costly request (fifty ci in a long form by beam search: minutes on a CPU) hold every request behind it. So each
admitted call runs on a thread of its own, and the calls take turns on the model between decoding steps, where
`decoding.between_steps` calls the gate: processor sharing, in two lanes.

- A call starts in the quick lane, whose calls take turns of `QUANTUM` round-robin: ordinary requests share the
  model equally, and on average answer as soon as they would one after another.
- A call that has had the model for longer than ordinary requests take (`SLOW_FACTOR` times the 90th percentile
  of the last calls answered, and at least `SLOW_FLOOR`) moves to the slow lane, whose calls take turns
  round-robin too. While quick calls wait, the slow lane as a whole has the model for as long as one quick
  call does, and at most a `SLOW_SHARE`th of the time; counted in time, not turns, since one step of a costly
  call may outlast a quantum. While none waits, it has all of it.

However many costly calls there are, together they slow ordinary ones as one more ordinary request would (by a
`SLOW_SHARE`th at most), and they still progress, more slowly. Plain round-robin would give a user with k
costly requests k shares; serving first the call that has had the least would starve an ordinary but longer
request behind a stream of short ones.

At most `depth` calls are held at once. One beyond is refused at once (503), unless a slow-lane call can make
room: the one that has had the model longest is dropped for it, so costly calls can never fill the gate against
ordinary ones. A call not answered within `timeout` (its wait included), or whose client has gone, is given up
(503): its thread stops at its next step (`Cancelled`, raised at the pause and swallowed here), so abandoned
work never holds the model. The application opens its gate on startup and closes it on shutdown (`with
ModelGate() as gate:`); a closed gate refuses every call (503) and stops those it holds.
"""

from __future__ import annotations

import asyncio
import statistics
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Self, TypeVar, cast

from fastapi import HTTPException

from vaegen.generate.decoding import between_steps

T = TypeVar("T")

QUANTUM = 0.01  # seconds a call keeps the model before it hands it to a waiting one (at its next step)
SLOW_FACTOR = 3.0  # past this many times what ordinary calls take, a call moves to the slow lane
SLOW_FLOOR = 0.25  # seconds: never slower to move than this, whatever the last calls took
SLOW_SHARE = 8  # while quick calls wait, the slow lane has at most 1 / SLOW_SHARE of the model's time
RECENT = 128  # calls answered that tell what an ordinary call takes
POLL = 0.5  # seconds between two looks at whether a waiting request's client has gone


class Cancelled(Exception):
    """Raised in a call's thread at its next step once the gate has given the call up."""


class Call:
    """A call's place in the turns: the model time it has had, and the event that hands it the model."""

    def __init__(self) -> None:
        self.turn = threading.Event()
        self.used = 0.0  # seconds it has had the model, its current turn excluded
        self.since = 0.0  # when its current turn began
        self.dropped: str | None = None  # why the gate gave it up


class ModelGate:
    def __init__(self, depth: int = 64, timeout: float = 60.0) -> None:
        self.depth, self.timeout = depth, timeout
        self._worker = ThreadPoolExecutor(max_workers=depth, thread_name_prefix="vaegen-model")
        self._lock = threading.RLock()
        self._calls: set[Call] = set()  # held: admitted, neither answered nor given up
        self._holder: Call | None = None  # the call that has the model
        self._quick: deque[Call] = deque()  # waiting for a turn, in order
        self._slow: deque[Call] = deque()
        self._holder_slow = False  # whether the holder's turn is the slow lane's
        self._slow_credit = 0.0  # seconds the slow lane may still have while quick calls wait (below 0: owes)
        self._recent: deque[float] = deque(maxlen=RECENT)  # model time of the last calls answered
        self._slow_after = SLOW_FLOOR
        self.closed = False

    async def run(self, call: Callable[[], T], gone: Callable[[], Awaitable[bool]] | None = None) -> T:
        """The result of `call()`, run on the model in turns with the other calls; given up (503) past the timeout
        or once `gone()` says the client has left."""
        with self._lock:
            ticket = self._admit()
            future = self._worker.submit(self._serve, ticket, call)  # under the lock: close() cannot come between
        waiting = asyncio.wrap_future(future)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        try:
            while not waiting.done():
                left = deadline - loop.time()
                if left <= 0:
                    reason = f"the model did not answer within {self.timeout:g} s; retry with fewer sentences or steps"
                elif gone is not None and await gone():
                    reason = "the client has gone"
                else:
                    await asyncio.wait({waiting}, timeout=left if gone is None else min(left, POLL))
                    continue
                if self._drop(ticket, reason):
                    break
                await asyncio.wait({waiting})  # answered just as it was given up: the answer is on its way
        except asyncio.CancelledError:
            self._drop(ticket, "the request was cancelled")
            waiting.cancel()
            raise
        if ticket.dropped is None:
            return cast(T, waiting.result())
        if waiting.done() and not waiting.cancelled():
            waiting.exception()  # how a call given up ended is of no interest: marked as read
        waiting.cancel()  # one not started never starts
        raise HTTPException(503, ticket.dropped)

    def _admit(self) -> Call:
        """A new call held, or 503 when the gate is closed or full of calls that are not costly."""
        if self.closed:
            raise HTTPException(503, "the server is shutting down")
        if len(self._calls) >= self.depth and not self._make_room():
            raise HTTPException(503, f"the server is busy ({self.depth} requests held); retry in a moment")
        ticket = Call()
        self._calls.add(ticket)
        return ticket

    def _make_room(self) -> bool:
        costly = [held for held in self._calls if held.used > self._slow_after]
        if not costly:
            return False
        return self._drop(max(costly, key=lambda held: held.used),
                          "dropped for a newer request while the server was full; ask for fewer sentences or steps")

    def _drop(self, ticket: Call, reason: str) -> bool:
        """Give a call up, waking it if it waits for a turn; False for one already answered or given up."""
        with self._lock:
            if ticket not in self._calls:
                return False
            self._calls.discard(ticket)
            ticket.dropped = reason
            for lane in (self._quick, self._slow):
                if ticket in lane:
                    lane.remove(ticket)
                    ticket.turn.set()
            return True

    def _serve(self, ticket: Call, call: Callable[[], T]) -> T | None:
        """On the call's own thread: wait for a turn, run the call in turns, hand the model on."""
        try:
            self._take_turn(ticket)
            answered = False
            try:
                with between_steps(lambda: self._pause(ticket)):
                    result = call()
                answered = True
                return result
            finally:
                self._leave(ticket, answered)
        except Cancelled:
            return None  # the gate gave this call up: nobody waits for its answer

    def _take_turn(self, ticket: Call) -> None:
        with self._lock:
            if ticket.dropped is not None:
                raise Cancelled
            if self._holder is None:  # nobody waits while the model is free
                self._begin(ticket, slow=False)
                return
            self._enqueue(ticket)
        self._await_turn(ticket)

    def _pause(self, ticket: Call) -> None:
        """Before each decoding step: stop a call given up; after a quantum, let the next call due have the model."""
        with self._lock:
            if ticket.dropped is not None:
                raise Cancelled
            now = time.perf_counter()
            if now - ticket.since < QUANTUM or not (self._quick or self._slow):
                return
            self._end_turn(ticket)
            self._enqueue(ticket)
            self._hand_on()
            if self._holder is ticket:
                return
        self._await_turn(ticket)

    def _leave(self, ticket: Call, answered: bool) -> None:
        """A call ends (answered, failed or stopped): hand the model on, and learn from its model time if answered."""
        with self._lock:
            if self._holder is ticket:
                self._end_turn(ticket)
                self._hand_on()
            self._calls.discard(ticket)
            if answered:
                self._recent.append(ticket.used)
                typical = statistics.quantiles(self._recent, n=10)[-1] if len(self._recent) > 1 else 0.0
                self._slow_after = max(SLOW_FLOOR, SLOW_FACTOR * typical)

    def _enqueue(self, ticket: Call) -> None:
        ticket.turn.clear()
        (self._slow if ticket.used > self._slow_after else self._quick).append(ticket)

    def _end_turn(self, ticket: Call) -> None:
        """Count the holder's turn against it, and against its lane's share: a quick turn earns the slow lane its
        share of the time, a slow one taken while quick calls wait spends it (the credit is never more than a
        quantum, so that an idle slow lane saves none up)."""
        spent = time.perf_counter() - ticket.since
        ticket.used += spent
        if not self._holder_slow:
            share = spent / max(SLOW_SHARE - 1, len(self._quick) + 1)
            self._slow_credit = min(self._slow_credit + share, QUANTUM)
        elif self._quick:
            self._slow_credit -= spent

    def _hand_on(self) -> None:
        """Give the model to the next call due: the slow lane's first when it has credit or no quick call waits,
        else the quick lane's first."""
        self._holder = None
        if self._slow and (not self._quick or self._slow_credit >= 0):
            self._begin(self._slow.popleft(), slow=True)
        elif self._quick:
            self._begin(self._quick.popleft(), slow=False)

    def _begin(self, ticket: Call, slow: bool) -> None:
        self._holder, self._holder_slow, ticket.since = ticket, slow, time.perf_counter()
        ticket.turn.set()

    def _await_turn(self, ticket: Call) -> None:
        ticket.turn.wait()
        with self._lock:
            if self._holder is not ticket:  # woken because it was given up
                raise Cancelled

    def close(self) -> None:
        """Refuse new calls and stop those held: the waiting at once, the running at their next step."""
        with self._lock:
            self.closed = True
            for ticket in list(self._calls):
                self._drop(ticket, "the server is shutting down")
        self._worker.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


