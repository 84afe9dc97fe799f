"""What `make run` does before serving: database, migrations, API key."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from app.config import Settings

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"
EMBEDDED_DB = "clinic"
_servers: list[Any] = []  # keeps the embedded server's handle alive for the process's life


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL under `data_dir/pgdata`; return its URL."""
    import pgserver

    pgdata = (data_dir / "pgdata").resolve()
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    _servers.append(server)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DB}';")
    if "1 row" not in exists:
        server.psql(f"CREATE DATABASE {EMBEDDED_DB};")
    uri: str = server.get_uri(EMBEDDED_DB)
    return uri


def stored_api_key(settings: Settings) -> str:
    path = api_key_path(settings)
    if not path.exists():
        raise SystemExit(
            "SERVICE_API_KEY is not set and no key is stored yet; `make run` creates one"
        )
    return path.read_text().strip()


def api_key_path(settings: Settings) -> Path:
    return settings.data_dir / "api_key"


def ensure_api_key(settings: Settings) -> tuple[str, bool]:
    """The configured keys, or a key generated once and kept under DATA_DIR; and whether it
    was generated now (by this call)."""
    if settings.service_api_key:
        return settings.service_api_key, False
    path = api_key_path(settings)
    generated = not path.exists()
    if generated:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32) + "\n")
        path.chmod(0o600)
    return path.read_text().strip(), generated


def migrate(database_url: str) -> None:
    from alembic.config import Config

    from alembic import command

    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def prepare(settings: Settings, *, announce_key: bool = True) -> str:
    """Resolve the database (embedded when DATABASE_URL is unset), migrate, and export the
    URL and key to the environment the server's workers read."""
    url = settings.database_url or start_embedded_postgres(settings.data_dir)
    migrate(url)
    key, generated = ensure_api_key(settings)
    os.environ["DATABASE_URL"] = url
    os.environ["SERVICE_API_KEY"] = key
    if announce_key and not settings.service_api_key:
        # Shown once, when it is made, on the terminal (never the logs); a later start names
        # the file instead, so a log that keeps stdout never holds the key.
        if generated:
            print(f"API key (send as X-API-Key): {key}", file=sys.stdout, flush=True)
        else:
            path = api_key_path(settings).resolve()
            print(f"API key: the one kept in {path}", file=sys.stdout, flush=True)
    return url


def _prepare_metrics_dir(settings: Settings) -> None:
    """Workers add their metrics up through files here; stale ones from a previous run go."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    directory = (settings.data_dir / "prometheus").resolve()
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)


def serve(settings: Settings) -> None:
    import uvicorn

    prepare(settings)
    _prepare_metrics_dir(settings)
    print(
        f"Serving on http://{settings.host}:{settings.port} (docs at /docs)",
        file=sys.stdout,
        flush=True,
    )
    # uvicorn re-raises SIGTERM/SIGINT once it has shut down; turn that into a normal exit so
    # the embedded database below is stopped cleanly instead of being orphaned.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_on_signal)
    try:
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=20,
            proxy_headers=True,
        )
    finally:
        stop_embedded_postgres()


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def stop_embedded_postgres() -> None:
    """Stop the embedded server now rather than leave it to interpreter exit."""
    while _servers:
        _servers.pop().__exit__(None, None, None)
