"""Commands: `python -m app serve | migrate`."""

from __future__ import annotations

import argparse
import sys

from app import launcher
from app.config import SettingsError, load_settings
from app.logging_setup import configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="migrate, then serve the API (embedded database if unset)")
    commands.add_parser("migrate", help="apply the Alembic migrations to DATABASE_URL")
    args = parser.parse_args(argv)

    try:
        settings = load_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    configure_logging(settings.log_level)

    if args.command == "serve":
        launcher.serve(settings)
    elif args.command == "migrate":
        launcher.prepare(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
