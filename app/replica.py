"""The read replica (`DATABASE_READ_URL`): whether reads may go there now, checked every
`READ_REPLICA_CHECK_SECONDS`.

Only reads that decide nothing use it (`database.read_session`: availability, the search,
GETs); every unit of work, so every booking, hold, reschedule and its 409's alternatives, runs
on the primary. Reads leave it while it is unreachable or lags more than
`READ_REPLICA_MAX_LAG_SECONDS`, and come back once a check finds it well. A read that fails on
it is answered again by the primary (`ReplicaFallbackMiddleware`), so losing the replica
mid-read costs no request; so is one that found nothing (a 404: what was just created may not
have been replayed there yet), so a client always reads what it has just written.

Lag is measured, not read off the replica's clock: each check notes the primary's WAL
position and when it was seen; the lag is the age of the oldest noted position the replica
has not replayed yet (0 when it has replayed all of them, however long the primary has been
idle; `now() - pg_last_xact_replay_timestamp()` would grow then).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from enum import StrEnum
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import metrics
from app.database import Sessions, close_request_session, create_read_sessionmaker

logger = logging.getLogger("app.replica")

_PRIMARY_POSITION = text("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
# Not in recovery: a server that is not (or no longer) a standby has nothing to replay.
_REPLAYED = text(
    "SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() - '0/0'::pg_lsn END"
)


class ReplicaState(StrEnum):
    OK = "ok"
    LAGGING = "lagging"
    UNREACHABLE = "unreachable"


class Replica:
    def __init__(
        self,
        engine: AsyncEngine,
        primary: AsyncEngine,
        max_lag_seconds: float,
        check_seconds: float,
    ) -> None:
        self.engine = engine
        self.sessions: Sessions = create_read_sessionmaker(engine)
        self._primary = primary
        self._max_lag = max_lag_seconds
        self._interval = check_seconds
        self._unreplayed: deque[tuple[float, int]] = deque()
        self.state = ReplicaState.UNREACHABLE
        self.lag_seconds: float | None = None
        # Read on every request: a plain attribute, set by the checks.
        self.usable = False
        self._publish()

    def describe(self) -> dict[str, Any]:
        """What `/ready` says of it."""
        lag = None if self.lag_seconds is None else round(self.lag_seconds, 3)
        return {"state": self.state.value, "lag_seconds": lag}

    async def run_forever(self) -> None:
        while True:
            await self.check()
            await asyncio.sleep(self._interval)

    async def check(self) -> None:
        """One look at both servers; a failure to reach the primary leaves the state as it was
        (the primary's own failure is `/ready`'s business, not the replica's)."""
        timeout = max(2.0, 2 * self._interval)
        try:
            async with asyncio.timeout(timeout), self._primary.connect() as connection:
                position = (await connection.execute(_PRIMARY_POSITION)).scalar_one()
        except Exception:
            return
        now = time.monotonic()
        if not self._unreplayed or self._unreplayed[-1][1] < position:
            self._unreplayed.append((now, int(position)))
        try:
            async with asyncio.timeout(timeout), self.engine.connect() as connection:
                replayed = (await connection.execute(_REPLAYED)).scalar_one_or_none()
        except Exception as exc:
            self._set(ReplicaState.UNREACHABLE, None, type(exc).__name__)
            return
        if replayed is None:
            self._unreplayed.clear()
        else:
            while self._unreplayed and self._unreplayed[0][1] <= replayed:
                self._unreplayed.popleft()
        lag = now - self._unreplayed[0][0] if self._unreplayed else 0.0
        if self.state is ReplicaState.UNREACHABLE:
            # Connections pooled before it went away are dead: start afresh.
            await self.engine.dispose()
        self._set(ReplicaState.LAGGING if lag > self._max_lag else ReplicaState.OK, lag)

    def failed(self, error: BaseException) -> None:
        """A read failed there: the primary answers reads until a check finds it well."""
        self._set(ReplicaState.UNREACHABLE, self.lag_seconds, type(error).__name__)

    def _set(self, state: ReplicaState, lag: float | None, error: str | None = None) -> None:
        if state is not self.state:
            logger.warning(
                "read replica %s", state.value, extra={"lag_seconds": lag, "error": error}
            )
        self.state, self.lag_seconds = state, lag
        self.usable = state is ReplicaState.OK
        self._publish()

    def _publish(self) -> None:
        metrics.REPLICA_USABLE.set(1 if self.usable else 0)
        if self.lag_seconds is not None:
            metrics.REPLICA_LAG.set(self.lag_seconds)


class ReplicaReadFailed(Exception):
    """A read on the replica failed; raised past the error handlers so the request can be
    answered again from the primary."""


class ReplicaMiss(ReplicaReadFailed):
    """Something was not found on the replica: it may not have replayed it yet."""


class ReplicaFallbackMiddleware:
    """Answers a read again from the primary when it failed on the replica, before anything
    of the answer was sent. Reads change nothing, so running one twice is safe."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        replica: Replica | None = scope["app"].state.replica if "app" in scope else None
        if replica is None or scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ReplicaReadFailed as failure:
            if started:
                raise
            if not isinstance(failure, ReplicaMiss):
                replica.failed(failure.__cause__ or failure)
            with contextlib.suppress(Exception):
                await close_request_session(scope)
            state = scope.setdefault("state", {})
            state.pop("read_on_replica", None)
            state["primary_only"] = True
            await self.app(scope, receive, send)
