"""The benchmark's few-second smoke run, so `make bench` keeps working. No figure is asserted;
what is checked is that a run writes only where it is told (bench/ by default), never the
tracked BENCHMARKS.md."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (CI installs it)")
def test_bench_smoke_runs_end_to_end(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    page = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
    page_before = (page.read_bytes(), page.stat().st_mtime_ns)
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (page.read_bytes(), page.stat().st_mtime_ns) == page_before, "BENCHMARKS.md changed"
    # The table for BENCHMARKS.md lies beside the figures, for `make bench-report` to copy in.
    table = output.with_suffix(".md").read_text()
    assert table.startswith("<!-- results:start") and table.rstrip().endswith(
        "<!-- results:end -->"
    )
    assert "| booking |" in table
    report = json.loads(output.read_text())
    for key in (
        "baseline_rps",
        "availability_1d_rps",
        "availability_30d_rps",
        "search_rps",
        "booking_rps",
        "agent_flow_rps",
        "agent_flow_rest_rps",
        "availability_1d_p99_ms",
        "contended_resolve_s",
        "contended_winners",
        "rss_mb",
    ):
        assert isinstance(report[key], int | float), key
    assert report["contended_winners"] == 1
    assert report["phases"]["booking"]["statuses"]["other"] == 0
    assert report["phases"]["booking_webhooks"]["statuses"]["other"] == 0
    # Series booked in one call, beside single bookings on doctors of their own.
    assert report["phases"]["series_12"]["statuses"]["created"] > 0
    assert report["phases"]["series_12"]["statuses"]["other"] == 0
    assert isinstance(report["series_vs_booking"], int | float)
    assert report["webhooks"]["pings_received"] == report["webhooks"]["endpoints"] == 3
    # Flows ran over both interfaces and booked through holds.
    for via in ("mcp", "rest"):
        assert report["agent_flows"][via]["outcomes"].get("booked", 0) > 0, report["agent_flows"]
