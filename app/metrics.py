"""Prometheus metrics. With several uvicorn workers they are added up across processes
(prometheus-client's multiprocess mode, enabled by `PROMETHEUS_MULTIPROC_DIR`)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client import REGISTRY as DEFAULT_REGISTRY

_PROCESS = [os.getpid()]
os.register_at_fork(after_in_child=lambda: _PROCESS.__setitem__(0, os.getpid()))
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Each change to a value checks the process id, to notice a fork. Asked of the kernel every
    # time (a system call), that was 2.5% of a booking's worker time; it is kept here instead,
    # and renewed in a forked child. Set before any metric below is made.
    values.ValueClass = values.MultiProcessValue(process_identifier=lambda: _PROCESS[0])  # type: ignore[no-untyped-call]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by route template and status class.",
    ["method", "route", "status_class"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
APPOINTMENT_CHANGES = Counter(
    "appointment_changes_total",
    "Committed appointment changes, by action (booked, rescheduled, cancelled).",
    ["action"],
)
AVAILABILITY_READS = Counter(
    "availability_reads_total",
    "Single-doctor availability reads: the whole answer remembered (answer), every day "
    "remembered at its current version (remembered), or the days read (read).",
    ["source"],
)
BOOKINGS_DECIDED_AGAIN = Counter(
    "bookings_decided_again_total",
    "Bookings whose doctor's day changed between their read and their write, so they were "
    "decided again under the doctor's row lock.",
)
BOOKING_BATCH_ROWS = Histogram(
    "booking_batch_rows",
    "Bookings (and holds) served by one statement, by kind (read: the days they decide on; "
    "write: the bookings written): those that came while one was under way go together "
    "(app/services/booking/batch.py).",
    ["kind"],
    buckets=(1, 2, 4, 8, 16),
)
CONFLICTS = Counter(
    "conflicts_total",
    "409 answers, by error code (slot_unavailable, invalid_state, ...).",
    ["code"],
)
DELIVERIES = Counter(
    "outbox_deliveries_total",
    "Mirror deliveries, by target (calendar, rag) and outcome (delivered, retry, failed).",
    ["target", "outcome"],
)
WEBHOOK_DELIVERIES = Counter(
    "webhook_deliveries_total",
    "Webhook delivery attempts, by event type and outcome (delivered, retry, failed, "
    "disabled: the receiver answered 410 and its endpoint was disabled).",
    ["event", "outcome"],
)
OUTBOX_DEPTH = Gauge(
    "outbox_jobs",
    "Outbox jobs by target and state, read from the database at scrape time.",
    ["target", "state"],
    multiprocess_mode="mostrecent",
)
OUTBOX_OLDEST = Gauge(
    "outbox_oldest_pending_age_seconds",
    "Age of the oldest job still owed to a mirror (0 when none).",
    ["target"],
    multiprocess_mode="mostrecent",
)
DB_POOL = Gauge(
    "db_pool_connections",
    "Database connections of this process's pool, by state (in_use, idle, waiting).",
    ["state"],
    multiprocess_mode="livesum",
)


def count_refusal(status: int, code: str) -> None:
    """A `ServiceError` answered, by a REST route or an MCP tool: a 409 counts in `CONFLICTS`."""
    if status == 409:
        CONFLICTS.labels(code).inc()


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def render() -> tuple[bytes, str]:
    """The exposition text, summed over every worker when running multi-process."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(DEFAULT_REGISTRY), CONTENT_TYPE_LATEST


def sample_pool(pool: Any, waiting: int) -> None:
    """Read at scrape time: SQLAlchemy's pool counts what it holds; `waiting` is the count of
    requests inside a checkout (`database.checkouts_waiting`), which the pool does not keep."""
    DB_POOL.labels("in_use").set(pool.checkedout())
    DB_POOL.labels("idle").set(pool.checkedin())
    DB_POOL.labels("waiting").set(waiting)


REPLICA_LAG = Gauge(
    "db_replica_lag_seconds",
    "How far the read replica's replay trails what the primary has written (0: caught up).",
    multiprocess_mode="livemax",
)
REPLICA_USABLE = Gauge(
    "db_replica_usable",
    "1 while reads go to the read replica, 0 while they go to the primary.",
    multiprocess_mode="livemin",
)
