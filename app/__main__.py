"""Commands: `python -m app serve | migrate | worker | resync-calendar | resync-rag | openapi`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import signal
import sys
from pathlib import Path

from app import launcher
from app.config import Settings, SettingsError, load_settings
from app.database import create_engine, create_sessionmaker, unit_of_work
from app.logging_setup import configure_logging


async def _worker(settings: Settings, url: str) -> int:
    from app.adapters import clinic_of
    from app.services.context import Clinic
    from app.services.sync_service import build_dispatcher
    from app.services.waitlist.matcher import sweep_forever

    engine = create_engine(settings, url)
    sessions = create_sessionmaker(engine)

    # Webhooks always have a mirror, so a worker always has work to wait for.
    def clinic() -> Clinic:
        return clinic_of(settings)

    dispatcher = build_dispatcher(settings, sessions, url, clinic)
    sweeps = asyncio.create_task(sweep_forever(sessions, settings, clinic))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, dispatcher.stop)
    try:
        await dispatcher.run()
    finally:
        sweeps.cancel()
        await engine.dispose()
    return 0


async def _resync(settings: Settings, url: str, what: str, from_date: dt.date | None = None) -> int:
    from app.services import google_calendar_service, rag_sync_service

    engine = create_engine(settings, url)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            if what == "calendar":
                if not settings.calendar_enabled:
                    print("the Google Calendar mirror is off; nothing queued", file=sys.stderr)
                    return 2
                today = dt.datetime.now(settings.timezone).date()
                count = await google_calendar_service.remirror_upcoming(session, from_date or today)
            else:
                if not settings.rag_enabled:
                    print("RAG sync is off; nothing queued", file=sys.stderr)
                    return 2
                count = await rag_sync_service.resync_all(session)
    finally:
        await engine.dispose()
    print(f"queued {count} {'appointments' if what == 'calendar' else 'doctors'} for {what}")
    return 0


def _iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {value!r}") from None


def _write_openapi(settings: Settings, output: Path | None) -> int:
    from app.main import openapi_document

    text = json.dumps(openapi_document(settings), indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, then serve the API (embedded database if unset)")
    commands.add_parser("migrate", help="apply the Alembic migrations")
    commands.add_parser("worker", help="run the outbox dispatcher on its own")
    resync_calendar = commands.add_parser(
        "resync-calendar", help="rewrite the event of every future appointment (or re-create it)"
    )
    # Past events keep what they were written with; after GOOGLE_CALENDAR_EVENT_DETAILS is
    # narrowed, a clinic may want them rewritten too.
    resync_calendar.add_argument(
        "--from",
        dest="from_date",
        type=_iso_date,
        metavar="YYYY-MM-DD",
        help="rewrite appointments from this date on (default: today in CLINIC_TIMEZONE)",
    )
    commands.add_parser("resync-rag", help="re-send every doctor to the RAG service")
    openapi = commands.add_parser("openapi", help="write the OpenAPI document (no database)")
    openapi.add_argument("--output", type=Path, default=None, help="a file (default: stdout)")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    if args.command == "serve":
        launcher.serve(settings)
        return 0
    if args.command == "openapi":
        return _write_openapi(settings, args.output)
    url = launcher.prepare(settings, announce_key=False)
    try:
        if args.command == "worker":
            return asyncio.run(_worker(settings, url))
        if args.command in ("resync-calendar", "resync-rag"):
            what = args.command.removeprefix("resync-")
            from_date = getattr(args, "from_date", None)
            return asyncio.run(_resync(settings, url, what, from_date))
        return 0
    finally:
        launcher.stop_embedded_postgres()


if __name__ == "__main__":
    sys.exit(main())
