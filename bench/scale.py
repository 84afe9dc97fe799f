"""`make bench-scale`: do the costs stay flat as the clinic group grows?

Seeds two clinics side by side: the `make bench` clinic (50 doctors, 120 days ahead) and a
large group (500 doctors, the same 120 days ahead, and two years of history: about a million
appointments). Each is measured the way `make bench` measures (wrk, 32 connections, the
service as configured by default) for one doctor's availability over 1 and 30 days, the
cross-doctor search (five matching doctors, as in the small clinic) and booking, each phase
between two runs of the baseline on the same database, and each read phase after a few
seconds of its own requests (the steady state). Each phase's ratio to the baselines around
it is compared.
The search is also measured as the number of matching doctors grows (5, 10, 50, 200), and the
plans of the hot statements on the large database are kept. Writes
`bench/results-scale.json` and the scale section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg

from app.launcher import migrate
from app.services.doctor_filters import DoctorFilters
from app.services.scheduling import queries
from bench.run import (
    API_KEY,
    ROOT,
    Phase,
    RssSampler,
    availability_reads,
    machine,
    remembered_share,
    request_lines,
    server,
    uvicorn_command,
    wrk,
)
from bench.seed import SPECIALIZATIONS, Seeded, seed
from tests.db import throwaway_database
from tests.servers import free_port

PHASES = ("availability_1d", "availability_30d", "search", "booking")
CURVE = {10: "Neurology", 50: "Cardiology", 200: "Family medicine"}
TOLERANCE = 0.15


def large_specialization(n: int) -> str:
    """200 family doctors, 50 cardiologists, 10 neurologists, and the rest in groups of five
    (as every specialization of the small clinic)."""
    if n < 200:
        return "Family medicine"
    if n < 250:
        return "Cardiology"
    if n < 260:
        return "Neurology"
    return f"Specialty {(n - 260) // 5:02d}"


def search_lines(specializations: list[str], today: dt.date, rng: random.Random) -> list[str]:
    return [
        "GET\t/api/v1/appointments/availability?specialization="
        f"{quote(rng.choice(specializations))}"
        f"&start_date={(today + dt.timedelta(days=rng.randrange(1, 45))).isoformat()}&limit=10"
        for _ in range(5000)
    ]


@dataclass
class Measured:
    """A clinic's phases, each with the baseline measured right before and after it."""

    phases: dict[str, Phase]
    baselines: dict[str, tuple[Phase, Phase]]
    peak_worker_mb: float

    def ratio(self, phase: str) -> float:
        before, after = self.baselines[phase]
        return round(self.phases[phase].rps / ((before.rps + after.rps) / 2), 3)


def measure(
    url: str,
    seeded: Seeded,
    today: dt.date,
    seconds: int,
    workers: int,
    search_specs: list[str],
    curve: dict[int, str],
    per_doctor: int,
    warm: int,
) -> Measured:
    """Each phase against the service, between two runs of the baseline (both servers stay
    up, the idle one costing nothing): the machine's speed drifts by tens of percent over
    minutes, and a baseline taken right around a phase follows it."""
    rng = random.Random(7)
    lines = request_lines(seeded, today, rng)
    lines["search"] = search_lines(search_specs, today, rng)
    for doctors, specialization in curve.items():
        lines[f"search_{doctors}"] = search_lines([specialization], today, rng)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SERVICE_API_KEY": f"bench:{API_KEY}",
        "LOG_LEVEL": "WARNING",
        "WORKERS": str(workers),
        # `--cache-days` per doctor (0: the default for both): a run with 80 per doctor
        # (40,000 days for 500) is discussed in BENCHMARKS.md.
        "AVAILABILITY_CACHE_DAYS": str(cache_days(len(seeded.doctor_ids), per_doctor)),
    }
    phases: dict[str, Phase] = {}
    baselines: dict[str, tuple[Phase, Phase]] = {}
    base_port, port = free_port(), free_port()
    baseline_url, base = f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{port}"
    with (
        server(
            uvicorn_command("bench.baseline:app", base_port, workers),
            env,
            f"{baseline_url}/doctor/{seeded.doctor_ids[0]}",
        ),
        server(
            [sys.executable, "-m", "app", "serve"], {**env, "PORT": str(port)}, f"{base}/ready"
        ) as proc,
    ):
        sampler = RssSampler(proc.pid)
        wrk("warmup", baseline_url, lines["baseline"], 2)
        wrk("warmup", base, lines["availability_1d"], 2)
        baseline = wrk("baseline", baseline_url, lines["baseline"], seconds)
        for name in [*PHASES, *(f"search_{doctors}" for doctors in curve)]:
            # Each read phase is measured once its own requests have run for `warm` seconds:
            # the steady state of a running service, whose day cache holds the days asked for.
            if warm and name != "booking":
                wrk("warmup", base, lines[name], warm)
            before = availability_reads(base)
            phases[name] = wrk(name, base, lines[name], seconds)
            phases[name].remembered_share = remembered_share(before, availability_reads(base))
            after = wrk("baseline", baseline_url, lines["baseline"], seconds)
            baselines[name] = (baseline, after)
            baseline = after
        sampler.stop()
    for name, phase in phases.items():
        # A phase that answered errors fast would measure nothing; bookings may be 409s.
        failed = phase.statuses["other"] + phase.statuses["socket_errors"]
        if failed:
            raise RuntimeError(f"{name}: {failed} requests failed: {phase.statuses}")
    return Measured(phases, baselines, sampler.peak_worker)


def cache_days(doctors: int, per_doctor: int) -> int:
    return max(10_000, doctors * per_doctor)


async def plans(dsn: str, seeded: Seeded, today: dt.date) -> dict[str, str]:
    """EXPLAIN ANALYZE of the statements behind each phase, on the large database."""
    doctor = seeded.doctor_ids[300]
    day = today + dt.timedelta(days=10)
    later = day + dt.timedelta(days=29)
    where, params = DoctorFilters(specialization="specialty 08", is_active=True).where("d")
    statements = {
        "availability: the doctor and its days' versions": (
            queries._DOCTOR_VERSIONS,
            {"doctor_id": doctor, "first": day, "last": day},
        ),
        "availability: 30 days of one doctor": (
            queries._DOCTOR_CALENDAR,
            {"doctor_id": doctor, "first": day, "last": later, "exclude_hold": None},
        ),
        "search: matching doctors with their first day's versions": (
            queries._matching_doctors(where),
            {**params, "first": day, "last": day},
        ),
        "search: a day of five doctors": (
            queries._FACTS_AND_VERSIONS,
            {
                "doctor_ids": seeded.doctor_ids[300:305],
                "first": day,
                "last": day,
                "exclude": None,
                "exclude_hold": None,
            },
        ),
    }
    conn = await asyncpg.connect(dsn)
    try:
        found = {}
        for name, (sql, values) in statements.items():
            rows = await conn.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql.text}", *sql.args(**values)
            )
            found[name] = "\n".join(r[0] for r in rows)
        return found
    finally:
        await conn.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    today = dt.date.today()
    small_specs = SPECIALIZATIONS
    large_specs = [f"Specialty {i:02d}" for i in range(48)]
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make bench-scale",
        "machine": machine(),
        "seconds_per_phase": args.seconds,
        "warm_seconds": args.warm_seconds,
        "tolerance": TOLERANCE,
    }
    measured: dict[str, Measured] = {}
    seeded_counts: dict[str, dict[str, int]] = {}
    with throwaway_database() as small_url, throwaway_database() as large_url:
        for label, url in (("small", small_url), ("large", large_url)):
            migrate(url)
            dsn = url.replace("postgresql+asyncpg", "postgresql")
            if label == "small":
                seeded = asyncio.run(seed(dsn, today, doctors=50))
                specs, curve = small_specs, {5: SPECIALIZATIONS[0]}
            else:
                seeded = asyncio.run(
                    seed(
                        dsn,
                        today,
                        doctors=500,
                        specialization_of=large_specialization,
                        history_days=730,
                        history_share=0.15,
                    )
                )
                specs, curve = large_specs, CURVE
                report["plans"] = asyncio.run(plans(dsn, seeded, today))
            seeded_counts[label] = {
                "doctors": len(seeded.doctor_ids),
                "appointments": seeded.appointments,
            }
            print(f"{label}: seeded {seeded_counts[label]}", flush=True)
            measured[label] = measure(
                url,
                seeded,
                today,
                args.seconds,
                args.workers,
                specs,
                curve,
                args.cache_days,
                args.warm_seconds,
            )

    def ratio(label: str, phase: str) -> float:
        return measured[label].ratio(phase)

    report["seeded"] = seeded_counts
    report["phases"] = {
        phase: {"small": ratio("small", phase), "large": ratio("large", phase)} for phase in PHASES
    }
    report["within_tolerance"] = {
        phase: abs(v["large"] / v["small"] - 1) <= TOLERANCE
        for phase, v in report["phases"].items()
    }
    report["search_by_matching_doctors"] = {
        "5": ratio("small", "search_5"),
        **{str(n): ratio("large", f"search_{n}") for n in CURVE},
    }
    report["p99_ms"] = {
        label: {phase: round(runs.phases[phase].p99_ms, 1) for phase in PHASES}
        for label, runs in measured.items()
    }
    report["remembered_share"] = {
        label: {phase: runs.phases[phase].remembered_share for phase in PHASES[:2]}
        for label, runs in measured.items()
    }
    report["peak_worker_rss_mb"] = {
        label: round(runs.peak_worker_mb, 1) for label, runs in measured.items()
    }
    report["cache_days"] = {
        label: cache_days(counts["doctors"], args.cache_days)
        for label, counts in seeded_counts.items()
    }
    # Each phase's own baselines (the mean of the runs before and after it), to show the drift.
    report["baseline_rps"] = {
        label: {
            phase: round((before.rps + after.rps) / 2, 1)
            for phase, (before, after) in runs.baselines.items()
        }
        for label, runs in measured.items()
    }
    return report


def render_markdown(report: dict[str, Any], path: Path) -> None:
    rows = [
        "| phase | 50 doctors | 500 doctors, 2 years | large / small | within 15% |",
        "|---|---:|---:|---:|---|",
    ]
    for phase, values in report["phases"].items():
        change = values["large"] / values["small"]
        ok = "yes" if report["within_tolerance"][phase] else "**no**"
        rows.append(
            f"| {phase} | {values['small']:.3f} | {values['large']:.3f} | {change:.2f} | {ok} |"
        )
    curve = ", ".join(
        f"{n} doctors {r:.3f}" for n, r in report["search_by_matching_doctors"].items()
    )
    m = report["machine"]
    plans = "\n\n".join(f"{name}:\n\n```\n{plan}\n```" for name, plan in report["plans"].items())
    generated = "\n".join(
        [
            "<!-- scale:start (written by `make bench-scale`; edit outside these markers) -->",
            f"Run {report['date']} with `make bench-scale` on {m['cpus']} x {m['cpu_model']}. "
            f"Seeded: small {report['seeded']['small']}, large {report['seeded']['large']}. "
            "Each phase's ratio is to the baseline measured right before and after it (req/s "
            f"by phase: {report['baseline_rps']}); {report['seconds_per_phase']} s per phase, "
            f"each read phase after {report['warm_seconds']} s of its own requests.",
            "",
            *rows,
            "",
            f"- The search by matching doctors (ratio to baseline): {curve}.",
            f"- p99 ms: {report['p99_ms']}.",
            "- Share of availability reads answered from remembered days: "
            f"{report['remembered_share']}.",
            f"- `AVAILABILITY_CACHE_DAYS`: {report['cache_days']}; peak resident memory of the "
            f"largest worker: {report['peak_worker_rss_mb']} MB.",
            "",
            "<details><summary>Plans on the large database (EXPLAIN ANALYZE)</summary>",
            "",
            plans,
            "",
            "</details>",
            "<!-- scale:end -->",
        ]
    )
    text = path.read_text()
    if "<!-- scale:start" not in text:
        text += "\n## Scale\n\n<!-- scale:start -->\n<!-- scale:end -->\n"
    start = text.index("<!-- scale:start")
    end = text.index("<!-- scale:end -->") + len("<!-- scale:end -->")
    path.write_text(text[:start] + generated + text[end:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument(
        "--warm-seconds", type=int, default=5, help="each read phase's own requests first (0: none)"
    )
    parser.add_argument(
        "--cache-days", type=int, default=0, help="AVAILABILITY_CACHE_DAYS per doctor (0: default)"
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", 2)))
    args = parser.parse_args()
    report = run(args)
    text = json.dumps(report, indent=2)
    (ROOT / "bench" / "results-scale.json").write_text(text + "\n")
    render_markdown(report, ROOT / "BENCHMARKS.md")
    print(json.dumps({k: report[k] for k in ("phases", "search_by_matching_doctors")}, indent=2))


if __name__ == "__main__":
    main()
