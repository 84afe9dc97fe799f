"""Bookings that arrive together are written by one statement (and their days read by one).

A booking's write is one statement that commits by itself (`booking.sql`). Most of what
PostgreSQL spends on it is per statement, not per row: starting the plan's many nodes, the
commit and its WAL flush. Under load a worker has many bookings in flight, so bookings whose
write comes while a batch is being written wait for it to end and then go as the next batch:
one statement, one commit, one round trip. At low load a booking is written at once, as
before: nothing waits for a batch to fill.

What keeps a batch the same as writing each booking alone:
- Each row is claimed on its own versions: a stale row is refused as it would be alone, and
  the others are written.
- A batch holds one booking per doctor-day (a statement claims a day once). Another one for
  the same day waits for the next batch, where its claim finds the day moved, as it would
  have alone.
- A batch runs on the connection of one of the requests it writes for, so it never waits
  for the pool while those requests hold their connections.
- A batch whose statement fails committed nothing; each of its bookings is then written
  alone, so an error is its own request's. (If the connection drops after the commit but
  before the answer, the bookings are written and each written alone finds its day moved and
  its slot taken, as a retry of a single booking would after a lost answer.)
- A batch is written to its end even if the request that runs it is cancelled: the other
  rows are other requests' bookings.

The days a booking decides on are read the same way (`decide`): reads that come while one is
under way go together, one range each, in one statement.
"""

from __future__ import annotations

import asyncio
import enum
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app import metrics
from app.sql import VALUES_SIZES

Row = Mapping[str, object]
In = TypeVar("In")
Out = TypeVar("Out")
# Runs rows with one statement on a request's connection, answering one result per row.
Run = Callable[[Sequence[In]], Awaitable[list[Out]]]

# Rows per statement (the largest VALUES list): past this the statement's fixed cost is already
# spread thin.
MOST_ROWS = VALUES_SIZES[-1]
# Batches written at once per worker. One: the bookings that come while it is written make
# the next batch bigger, and PostgreSQL's CPU per booking falls with a batch's size (BENCHMARKS:
# about 1 ms alone, 0.19 ms in a batch of 16); two in flight left half the batches at one row.
# The cost: a batch waiting for a day another transaction holds (a reschedule, a booking
# deciding again; milliseconds, and never longer than the lock timeout) holds up the worker's
# other bookings that long. Nothing that holds a day waits for a batch, so it always ends.
WRITERS = 1


class _Turn(enum.Enum):
    LEAD = "run the next batch"
    ALONE = "the batch failed: run this row alone"


@dataclass(eq=False, slots=True)
class _Waiting(Generic[In, Out]):
    row: In
    key: Hashable
    run: Run[In, Out]
    answer: asyncio.Future[Out | _Turn]


class Batcher(Generic[In, Out]):
    """Rows of one event loop, run in batches of up to `most_rows`, `writers` at once."""

    def __init__(
        self,
        most_rows: int = MOST_ROWS,
        writers: int = WRITERS,
        observe: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self._observe = observe
        self._most_rows = most_rows
        self._writers = writers
        self._writing = 0
        self._waiting: deque[_Waiting[In, Out]] = deque()

    async def run(self, row: In, key: Hashable, run: Run[In, Out]) -> Out:
        """Run `row` with the next batch, which holds one row per `key` (a booking's
        doctor-day); `run` runs rows on this request's connection, should this request be
        the one to run a batch."""
        if self._writing < self._writers:
            self._writing += 1
            return await self._lead(_Waiting(row, key, run, _settled()))
        answer: asyncio.Future[Out | _Turn] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(row, key, run, answer)
        self._waiting.append(waiting)
        try:
            outcome = await waiting.answer
        except asyncio.CancelledError:
            if waiting in self._waiting:
                self._waiting.remove(waiting)
            elif _handed(waiting, _Turn.LEAD):
                self._hand_on()
            raise
        if outcome is _Turn.LEAD:
            return await self._lead(waiting)
        if outcome is _Turn.ALONE:
            return (await run([row]))[0]
        return outcome

    async def _lead(self, own: _Waiting[In, Out]) -> Out:
        try:
            batch = [own, *self._take(own.key)]
            self._observe(len(batch))
            written = asyncio.ensure_future(own.run([w.row for w in batch]))
            cancelled = await _finish(written)
        finally:
            self._hand_on()
        error = written.exception()
        for waiting, index in zip(batch[1:], range(1, len(batch)), strict=True):
            if not waiting.answer.done():
                waiting.answer.set_result(_Turn.ALONE if error else written.result()[index])
        if cancelled:
            raise asyncio.CancelledError
        if error is None:
            return written.result()[0]
        if len(batch) == 1:
            raise error
        return (await own.run([own.row]))[0]

    def _take(self, key: Hashable) -> list[_Waiting[In, Out]]:
        """Waiting rows for the batch, oldest first, one per key."""
        taken: list[_Waiting[In, Out]] = []
        keys = {key}
        kept: deque[_Waiting[In, Out]] = deque()
        while self._waiting and len(taken) < self._most_rows - 1:
            waiting = self._waiting.popleft()
            if waiting.key in keys:
                kept.append(waiting)
            else:
                keys.add(waiting.key)
                taken.append(waiting)
        kept.extend(self._waiting)
        self._waiting = kept
        return taken

    def _hand_on(self) -> None:
        """A batch has run: the oldest waiting row's request runs the next one."""
        while self._waiting:
            waiting = self._waiting.popleft()
            if not waiting.answer.done():
                waiting.answer.set_result(_Turn.LEAD)
                return
        self._writing -= 1


async def _finish(written: asyncio.Future[list[Out]]) -> bool:
    """Wait for the batch to be written, even through a cancellation; whether one came."""
    cancelled = False
    while not written.done():
        try:
            await asyncio.shield(written)
        except asyncio.CancelledError:
            cancelled = True
        except Exception:  # read from the future by the caller
            break
    return cancelled


def _settled() -> asyncio.Future[Out | _Turn]:
    future: asyncio.Future[Out | _Turn] = asyncio.get_running_loop().create_future()
    future.set_result(_Turn.LEAD)
    return future


def _handed(waiting: _Waiting[In, Out], turn: _Turn) -> bool:
    answer = waiting.answer
    return answer.done() and not answer.cancelled() and answer.result() is turn


_BATCHERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Batcher[Any, Any]]] = (
    weakref.WeakKeyDictionary()
)


def batcher(kind: str) -> Batcher[Any, Any]:
    """The running event loop's batcher of `kind` ("read", "write"; a worker has one loop,
    tests start several)."""
    loop = asyncio.get_running_loop()
    kinds = _BATCHERS.setdefault(loop, {})
    found = kinds.get(kind)
    if found is None:
        found = kinds[kind] = Batcher(observe=metrics.BOOKING_BATCH_ROWS.labels(kind).observe)
    return found
