"""A real streaming replication pair for the read-replica tests: a primary and a hot standby
built from the embedded PostgreSQL's own binaries (initdb, `pg_basebackup -R`), both on
loopback, on ports and directories of their own (never the server the rest of the suite uses).

    from tests.standby import replica_pair  # the module-scoped fixture, in a test module

or, outside pytest, `with ReplicaPair() as pair: ...`.

The primary gets a `clinic` database migrated with the project's Alembic migrations (the
suite's own `migrate`), then the standby is cloned from it and started. The harness's own
queries (lag, pause state, counters) use each server's `postgres` database, so
`reads_on(...)` counts only what was run on `clinic`.

PostgreSQL refuses to run as root; as root (CI) every server command runs as the `pgserver`
system user that pgserver itself uses, on directories that user owns. pg_ctl always gets a
log file and never a pipe: its output captured through a pipe would hang the caller. Command
output goes to `<root>/commands.log`, server logs to `<root>/primary.log` and
`<root>/standby.log`; a failing command raises `ReplicaPairError` with their tails.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

import asyncpg
import pytest
from pgserver._commands import POSTGRES_BIN_PATH
from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

from app.launcher import migrate
from tests.servers import free_port

SYSTEM_USER = "pgserver"
DATABASE = "clinic"
BIN = Path(POSTGRES_BIN_PATH)
Server = Literal["primary", "standby"]
SERVERS: tuple[Server, Server] = ("primary", "standby")

T = TypeVar("T")


class ReplicaPairError(RuntimeError):
    """A server command failed or the pair did not reach the expected state in time."""


def _blocking(coroutine: Awaitable[T]) -> T:
    """Run a coroutine to completion off the caller's event loop (tests run inside one)."""

    async def run() -> T:
        return await coroutine

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


async def _fetchval(url: str, sql: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def _poll(url: str, sql: str, done: Callable[[Any], bool], within: float, what: str) -> Any:
    """Run `sql` on `url` every 50 ms until `done(value)`; connection failures (a server still
    starting) count as "not yet". Returns the last value."""
    deadline = time.monotonic() + within
    connection: asyncpg.Connection[Any] | None = None
    last: Any = None
    error: BaseException | None = None
    try:
        while True:
            try:
                if connection is None or connection.is_closed():
                    connection = await asyncpg.connect(url, timeout=2)
                last = await connection.fetchval(sql)
                error = None
                if done(last):
                    return last
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                error = exc
                if connection is not None:
                    connection.terminate()
                    connection = None
            if time.monotonic() > deadline:
                raise ReplicaPairError(
                    f"{what}: not reached within {within} s (last value {last!r}, "
                    f"last error {error!r})"
                )
            await asyncio.sleep(0.05)
    finally:
        if connection is not None:
            await connection.close()


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(none)"


class ReplicaPair:
    """A primary and a hot standby streaming from it; `start()`/`close()`, or use as a context
    manager. Servers are named "primary" and "standby" wherever one is asked for."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        database: str = DATABASE,
        setup: Callable[[str], None] = migrate,
    ) -> None:
        """`root`: an empty directory for everything (default: a new temp dir, removed by
        `close()`). `setup(primary_url)` prepares the database before the standby is cloned
        (default: the project's migrations)."""
        self._owns_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="clinic-replica-")) if root is None else root
        self.database = database
        self._setup = setup
        self.as_root = os.geteuid() == 0
        primary = free_port()
        standby = free_port()
        while standby == primary:
            standby = free_port()
        self.ports: dict[Server, int] = {"primary": primary, "standby": standby}

    # -- addresses ------------------------------------------------------------------------------

    def url(self, server: Server, database: str | None = None) -> str:
        """postgresql://postgres@127.0.0.1:PORT/DB, the form `create_app(database_url=...)` and
        the suite's `database_url` use."""
        return f"postgresql://postgres@127.0.0.1:{self.ports[server]}/{database or self.database}"

    @property
    def primary_url(self) -> str:
        return self.url("primary")

    @property
    def standby_url(self) -> str:
        return self.url("standby")

    def data_dir(self, server: Server) -> Path:
        return self.root / server

    def log_file(self, server: Server) -> Path:
        return self.root / f"{server}.log"

    # -- life cycle -----------------------------------------------------------------------------

    def __enter__(self) -> ReplicaPair:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def start(self) -> None:
        """Build and start both servers; returns once the standby has caught up (~2 s)."""
        if self.as_root:
            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(BIN)
            ensure_folder_permissions(BIN, 0o055)
            ensure_folder_permissions(BIN.parent / "lib", 0o044)
            ensure_prefix_permissions(self.root)
            shutil.chown(self.root, SYSTEM_USER, SYSTEM_USER)
        primary = self.data_dir("primary")
        self._run(
            "initdb",
            "-D",
            str(primary),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-locale",
            "-E",
            "UTF8",
        )
        with (primary / "postgresql.conf").open("a") as conf:
            # The port is given to pg_ctl (`-o -p`), so that the standby's copy carries none.
            conf.write(
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "wal_level = replica\n"
                "max_wal_senders = 5\n"
                "wal_keep_size = '256MB'\n"
                "hot_standby = on\n"
                "wal_retrieve_retry_interval = '1s'\n"
                "fsync = off\n"
            )
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        self._start_server("primary", retry_ports=True)
        _blocking(_fetchval(self.url("primary", "postgres"), f'CREATE DATABASE "{self.database}"'))
        with ThreadPoolExecutor(max_workers=1) as pool:  # Alembic runs its own event loop
            pool.submit(self._setup, self.primary_url).result()
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.ports["primary"]),
            "-U",
            "postgres",
            "-D",
            str(self.data_dir("standby")),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        self._start_server("standby", retry_ports=True)
        self.wait_caught_up()

    def close(self) -> None:
        """Stop both servers (fast shutdown; immediate, then SIGKILL, if that fails) and remove
        the temp dir. Safe to call more than once and after a failed `start()`."""
        for server in ("standby", "primary"):
            self._shutdown(server)
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    stop = close

    # -- controlling the standby ----------------------------------------------------------------

    def wait_caught_up(self, timeout: float = 10) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = _blocking(
            _fetchval(self.url("primary", "postgres"), "SELECT pg_current_wal_lsn()::text")
        )
        _blocking(
            _poll(
                self.url("standby", "postgres"),
                f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn",
                lambda caught_up: caught_up is True,
                timeout,
                f"standby replayed up to {target}",
            )
        )

    def pause_replay(self, timeout: float = 10) -> None:
        """Pause WAL replay on the standby; returns once it reports 'paused'. The standby still
        receives WAL and answers queries, on data as of the pause. A restart resumes replay."""
        _blocking(_fetchval(self.url("standby", "postgres"), "SELECT pg_wal_replay_pause()"))
        _blocking(
            _poll(
                self.url("standby", "postgres"),
                "SELECT pg_get_wal_replay_pause_state()",
                lambda state: state == "paused",
                timeout,
                "replay paused",
            )
        )

    def resume_replay(self) -> None:
        _blocking(_fetchval(self.url("standby", "postgres"), "SELECT pg_wal_replay_resume()"))

    def replay_paused(self) -> bool:
        state = self.fetchval(
            "standby", "SELECT pg_get_wal_replay_pause_state()", database="postgres"
        )
        return bool(state == "paused")

    def stop_standby(self) -> None:
        """`pg_ctl stop -m fast`: connections to the standby fail until `start_standby()`."""
        self._pg_ctl("standby", "stop", "-m", "fast")

    def start_standby(self, timeout: float = 10) -> None:
        """Start it again on the same port; returns once it accepts connections and has caught
        up (replay is no longer paused)."""
        self._start_server("standby", retry_ports=False)
        self.wait_caught_up(timeout)

    # -- SQL and counters -----------------------------------------------------------------------

    def fetchval(self, server: Server, sql: str, *args: Any, database: str | None = None) -> Any:
        """One statement on a new connection to that server (the `clinic` database unless
        `database` is given): counts as one transaction in `reads_on` there."""
        return _blocking(_fetchval(self.url(server, database), sql, *args))

    def execute(self, server: Server, sql: str, *args: Any) -> None:
        self.fetchval(server, sql, *args)

    def reads_on(self, server: Server) -> int:
        """Transactions (xact_commit + xact_rollback) the `clinic` database has run on that
        server, from pg_stat_database. Backends flush these counters at most once a second,
        and one that goes idle within a second of its last flush waits ~10 s to flush again
        (or until it disconnects): poll with `wait_for_reads_on`."""
        sql = "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = $1"
        return int(self.fetchval(server, sql, self.database, database="postgres"))

    def wait_for_reads_on(self, server: Server, more_than: int, timeout: float = 15) -> int:
        """Poll `reads_on(server)` until it exceeds `more_than`; returns the count seen."""
        sql = (
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            f"WHERE datname = '{self.database}'"
        )
        found = _blocking(
            _poll(
                self.url(server, "postgres"),
                sql,
                lambda count: count is not None and int(count) > more_than,
                timeout,
                f"more than {more_than} transactions on {self.database} on the {server}",
            )
        )
        return int(found)

    def truncate(self, tables: str | Iterable[str]) -> None:
        """`TRUNCATE ... RESTART IDENTITY CASCADE` on the primary, then wait until replayed."""
        names = tables if isinstance(tables, str) else ", ".join(tables)
        self.execute("primary", f"TRUNCATE {names} RESTART IDENTITY CASCADE")
        self.wait_caught_up()

    # -- processes ------------------------------------------------------------------------------

    def server_pids(self) -> list[int]:
        """The postmasters of both servers and their children (Linux /proc), for leak checks."""
        pids = [pid for server in SERVERS if (pid := self._postmaster_pid(server))]
        children: list[int] = []
        for pid in pids:
            with contextlib.suppress(OSError):
                tasks = Path(f"/proc/{pid}/task/{pid}/children").read_text()
                children.extend(int(child) for child in tasks.split())
        return pids + children

    def _postmaster_pid(self, server: Server) -> int | None:
        try:
            first = (self.data_dir(server) / "postmaster.pid").read_text().splitlines()[0]
            return int(first)
        except (OSError, IndexError, ValueError):
            return None

    # -- running the binaries -------------------------------------------------------------------

    def _run(self, program: str, *args: str, timeout: float = 120) -> None:
        command = [str(BIN / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        log = self.root / "commands.log"
        with log.open("ab") as out:  # a file, never a pipe: the server would keep it open
            out.write(f"$ {' '.join(command)}\n".encode())
            out.flush()
            try:
                subprocess.run(
                    command,
                    check=True,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=timeout,
                )
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
                raise ReplicaPairError(
                    f"{program} failed: {exc}\n--- {log}:\n{_log_tail(log)}"
                ) from exc

    def _pg_ctl(self, server: Server, action: str, *args: str, timeout: float = 90) -> None:
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir(server)),
            "-l",
            str(self.log_file(server)),
            "-o",
            f"-p {self.ports[server]}",
            "-w",
            "-t",
            "60",
            action,
            *args,
            timeout=timeout,
        )

    def _start_server(self, server: Server, retry_ports: bool) -> None:
        """`pg_ctl start`; while `retry_ports`, on another free port if this one was taken
        since it was chosen."""
        for attempt in range(3):
            try:
                self._pg_ctl(server, "start")
                return
            except ReplicaPairError as exc:
                log = _log_tail(self.log_file(server), 10)
                taken = "could not bind" in log or "already in use" in log
                if not (retry_ports and taken and attempt < 2):
                    raise ReplicaPairError(f"{exc}\n--- {self.log_file(server)}:\n{log}") from exc
                self.ports[server] = free_port()

    def _shutdown(self, server: Server) -> None:
        if self._postmaster_pid(server) is None:
            return
        for mode in ("fast", "immediate"):
            with contextlib.suppress(ReplicaPairError):
                self._pg_ctl(server, "stop", "-m", mode, timeout=75)
                return
        pid = self._postmaster_pid(server)
        if pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)  # pg_ctl starts it as a process group leader
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def replica_pair() -> Iterator[ReplicaPair]:
    """A primary + hot standby pair for the module; torn down (servers stopped, temp dir
    removed) at its end, also when a test or the set-up fails. Tests that pause or stop the
    standby must resume/start it again (in a `finally`)."""
    with ReplicaPair() as pair:
        yield pair
