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
`bench/results-scale.json` and the scale section for BENCHMARKS.md beside it
(`bench/results-scale.md`, copied in by `make bench-report`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import asyncpg

from app.config import Settings
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
SMALL_CURVE = {5: SPECIALIZATIONS[0]}
# The large group's search asks about five matching doctors, as the small clinic's does.
LARGE_SEARCH = [f"Specialty {i:02d}" for i in range(48)]
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
class Clinic:
    """One of the two seeded clinics, with its request lines and its service's settings."""

    label: str
    url: str
    seeded: Seeded
    lines: dict[str, list[str]]
    env: dict[str, str]
    base: str = ""


@dataclass
class Measured:
    """A clinic's phases: each round of a phase with its ratio to the baseline runs right
    before and after it."""

    rounds: dict[str, list[tuple[Phase, float]]] = field(default_factory=dict)
    peak_worker_mb: float = 0.0

    def ratio(self, phase: str) -> float:
        return round(statistics.median(ratio for _, ratio in self.rounds[phase]), 3)

    def p99_ms(self, phase: str) -> float:
        return round(statistics.median(p.p99_ms for p, _ in self.rounds[phase]), 1)

    def remembered(self, phase: str) -> float | None:
        shares = [p.remembered_share for p, _ in self.rounds[phase]]
        return None if None in shares else round(min(s for s in shares if s is not None), 3)


def clinic(
    label: str, url: str, seeded: Seeded, today: dt.date, args: argparse.Namespace
) -> Clinic:
    rng = random.Random(7)
    lines = request_lines(seeded, today, rng)
    specs = SPECIALIZATIONS if label == "small" else LARGE_SEARCH
    lines["search"] = search_lines(specs, today, rng)
    for doctors, specialization in (CURVE if label == "large" else SMALL_CURVE).items():
        lines[f"search_{doctors}"] = search_lines([specialization], today, rng)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SERVICE_API_KEY": f"bench:{API_KEY}",
        "LOG_LEVEL": "WARNING",
        "WORKERS": str(args.workers),
        # Its own metrics files: two services on one data directory would share them.
        "DATA_DIR": tempfile.mkdtemp(prefix=f"bench-scale-{label}-"),
    }
    if args.cache_days:  # per doctor; else the service's default for both
        env["AVAILABILITY_CACHE_DAYS"] = str(cache_days(len(seeded.doctor_ids), args.cache_days))
    return Clinic(label, url, seeded, lines, env)


def measure(clinics: list[Clinic], args: argparse.Namespace) -> dict[str, Measured]:
    """Both clinics' services stay up side by side (the idle one costs nothing), with the
    baseline's server. Each phase runs `args.rounds` times for each clinic in turn, each run
    between two runs of the baseline, and the median ratio counts: the machine's speed drifts
    by tens of percent over minutes, so a phase's ratio is to the baseline taken right around
    it, and the two clinics are measured within seconds of each other. Read phases first run
    their own requests for `args.warm_seconds` (the steady state of a running service)."""
    seconds, rounds = args.seconds, args.rounds
    small = clinics[0]
    measured = {c.label: Measured() for c in clinics}
    base_port = free_port()
    baseline_url = f"http://127.0.0.1:{base_port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            server(
                uvicorn_command("bench.baseline:app", base_port, args.workers),
                small.env,
                f"{baseline_url}/doctor/{small.seeded.doctor_ids[0]}",
            )
        )
        samplers = {}
        for c in clinics:
            port = free_port()
            c.base = f"http://127.0.0.1:{port}"
            proc = stack.enter_context(
                server(
                    [sys.executable, "-m", "app", "serve"],
                    {**c.env, "PORT": str(port)},
                    f"{c.base}/ready",
                )
            )
            samplers[c.label] = RssSampler(proc.pid)
        wrk("warmup", baseline_url, small.lines["baseline"], 2)
        baseline = wrk("baseline", baseline_url, small.lines["baseline"], seconds)
        phases = [*PHASES, *(f"search_{n}" for n in SMALL_CURVE), *(f"search_{n}" for n in CURVE)]
        for name in phases:
            taking = [c for c in clinics if name in c.lines]
            if name != "booking" and args.warm_seconds:
                for c in taking:
                    wrk("warmup", c.base, c.lines[name], args.warm_seconds)
            for r in range(rounds):
                for c in taking:
                    # Booking rounds take disjoint slots: each run of wrk starts at the top.
                    lines = c.lines[name][r::rounds] if name == "booking" else c.lines[name]
                    before = availability_reads(c.base)
                    phase = wrk(name, c.base, lines, seconds)
                    phase.remembered_share = remembered_share(before, availability_reads(c.base))
                    after = wrk("baseline", baseline_url, small.lines["baseline"], seconds)
                    ratio = phase.rps / ((baseline.rps + after.rps) / 2)
                    measured[c.label].rounds.setdefault(name, []).append((phase, ratio))
                    baseline = after
                    failed = phase.statuses["other"] + phase.statuses["socket_errors"]
                    if failed:  # errors answered fast would measure nothing; 409s may be
                        raise RuntimeError(f"{name}: {failed} requests failed: {phase.statuses}")
        for c in clinics:
            samplers[c.label].stop()
            measured[c.label].peak_worker_mb = samplers[c.label].peak_worker
    return measured


def cache_days(doctors: int, per_doctor: int) -> int | None:
    """The cache size a run sets (None: the service's default)."""
    return doctors * per_doctor if per_doctor else None


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
        "search: matching doctors with their first five days' versions": (
            queries._matching_doctors(where),
            {**params, "first": day, "last": day + dt.timedelta(days=4)},
        ),
        "search: a day of five doctors (when not remembered)": (
            queries._DAYS,
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
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "make bench-scale",
        "machine": machine(),
        "seconds_per_phase": args.seconds,
        "rounds": args.rounds,
        "warm_seconds": args.warm_seconds,
        "tolerance": TOLERANCE,
    }
    clinics: list[Clinic] = []
    with throwaway_database() as small_url, throwaway_database() as large_url:
        for label, url in (("small", small_url), ("large", large_url)):
            migrate(url)
            dsn = url.replace("postgresql+asyncpg", "postgresql")
            if label == "small":
                seeded = asyncio.run(seed(dsn, today, doctors=50))
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
                report["plans"] = asyncio.run(plans(dsn, seeded, today))
            print(f"{label}: seeded {len(seeded.doctor_ids)} doctors", flush=True)
            clinics.append(clinic(label, url, seeded, today, args))
        measured = measure(clinics, args)

    small, large = measured["small"], measured["large"]
    report["seeded"] = {
        c.label: {"doctors": len(c.seeded.doctor_ids), "appointments": c.seeded.appointments}
        for c in clinics
    }
    report["phases"] = {
        phase: {"small": small.ratio(phase), "large": large.ratio(phase)} for phase in PHASES
    }
    report["within_tolerance"] = {
        phase: abs(v["large"] / v["small"] - 1) <= TOLERANCE
        for phase, v in report["phases"].items()
    }
    report["rounds_by_phase"] = {
        phase: {
            label: [round(ratio, 3) for _, ratio in runs.rounds[phase]]
            for label, runs in measured.items()
        }
        for phase in PHASES
    }
    report["search_by_matching_doctors"] = {
        **{str(n): small.ratio(f"search_{n}") for n in SMALL_CURVE},
        **{str(n): large.ratio(f"search_{n}") for n in CURVE},
    }
    report["p99_ms"] = {
        label: {phase: runs.p99_ms(phase) for phase in PHASES} for label, runs in measured.items()
    }
    report["remembered_share"] = {
        label: {phase: runs.remembered(phase) for phase in PHASES[:2]}
        for label, runs in measured.items()
    }
    report["peak_worker_rss_mb"] = {
        label: round(runs.peak_worker_mb, 1) for label, runs in measured.items()
    }
    default_days = Settings.model_fields["availability_cache_days"].default
    report["cache_days"] = {
        c.label: cache_days(len(c.seeded.doctor_ids), args.cache_days) or default_days
        for c in clinics
    }
    return report


def scale_block(report: dict[str, Any]) -> str:
    """The scale section of BENCHMARKS.md, between its markers (bench/report.py copies it in)."""
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
    return "\n".join(
        [
            "<!-- scale:start (bench/results-scale.md, copied by `make bench-report`) -->",
            f"Run {report['date']} with `make bench-scale` on {m['cpus']} x {m['cpu_model']}. "
            f"Seeded: small {report['seeded']['small']}, large {report['seeded']['large']}. "
            "Both services run side by side; each phase runs "
            f"{report['rounds']} times per clinic, in turn, each run "
            f"{report['seconds_per_phase']} s between two runs of the baseline, and the median "
            "ratio to the baseline around it counts; each read phase first runs "
            f"{report['warm_seconds']} s of its own requests. Every round's ratio: "
            f"{report['rounds_by_phase']}.",
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
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
    (ROOT / "bench" / "results-scale.md").write_text(scale_block(report) + "\n")
    print(json.dumps({k: report[k] for k in ("phases", "search_by_matching_doctors")}, indent=2))


if __name__ == "__main__":
    main()
