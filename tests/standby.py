"""A real streaming replication pair for the read-replica tests: a primary and a hot standby
built from the embedded PostgreSQL's own binaries (initdb, `pg_basebackup -R`), both on
loopback, on ports and directories of their own (never the server the rest of the suite uses).

PostgreSQL refuses to run as root; as root (CI) every server command runs as the `pgserver`
system user that pgserver itself uses. pg_ctl always gets a log file: its output captured
through a pipe would hang the caller, because the server keeps the pipe open.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import asyncpg
import pytest
from pgserver._commands import POSTGRES_BIN_PATH
from pgserver.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

from app.launcher import migrate
from tests.servers import free_port

SYSTEM_USER = "pgserver"
DATABASE = "clinic"
Server = Literal["primary", "standby"]


def _blocking(coroutine: Any) -> Any:
    """Run a coroutine to completion off the caller's event loop (tests run inside one)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _query(url: str, sql: str) -> Any:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


class ReplicaPair:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports: dict[Server, int] = {"primary": free_port(), "standby": free_port()}
        self.as_root = os.geteuid() == 0

    def url(self, server: Server, database: str = DATABASE) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.ports[server]}/{database}"

    @property
    def primary_url(self) -> str:
        return self.url("primary")

    @property
    def standby_url(self) -> str:
        return self.url("standby")

    # -- building -----------------------------------------------------------------------------

    def start(self) -> None:
        if self.as_root:
            ensure_user_exists(SYSTEM_USER)
            ensure_prefix_permissions(POSTGRES_BIN_PATH)
            ensure_folder_permissions(POSTGRES_BIN_PATH, 0o055)
            ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", 0o044)
            ensure_prefix_permissions(self.root)
            shutil.chown(self.root, SYSTEM_USER, SYSTEM_USER)
        primary = self._dir("primary")
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
            conf.write(
                f"listen_addresses = '127.0.0.1'\nport = {self.ports['primary']}\n"
                "wal_level = replica\nmax_wal_senders = 5\nwal_keep_size = '256MB'\n"
                "hot_standby = on\nunix_socket_directories = ''\n"
            )
        with (primary / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        self._pg_ctl("primary", "start")
        _blocking(_query(self.url("primary", "postgres"), f"CREATE DATABASE {DATABASE}"))
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(migrate, self.primary_url).result()
        self._run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.ports["primary"]),
            "-U",
            "postgres",
            "-D",
            str(self._dir("standby", create=False)),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        )
        with (self._dir("standby", create=False) / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {self.ports['standby']}\n")
        self._pg_ctl("standby", "start")
        self.wait_caught_up()

    def stop(self) -> None:
        for server in ("standby", "primary"):
            if (self.root / server / "postmaster.pid").exists():
                self._pg_ctl(server, "stop", "-m", "immediate")

    def _dir(self, server: Server, create: bool = True) -> Path:
        path = self.root / server
        if create:
            path.mkdir(mode=0o700)
            if self.as_root:
                shutil.chown(path, SYSTEM_USER, SYSTEM_USER)
        return path

    def _run(self, program: str, *args: str) -> None:
        command = [str(POSTGRES_BIN_PATH / program), *args]
        if self.as_root:
            command = ["runuser", "-u", SYSTEM_USER, "--", *command]
        subprocess.run(
            command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120
        )

    def _pg_ctl(self, server: Server, action: str, *args: str) -> None:
        log = self.root / f"{server}.log"
        self._run("pg_ctl", "-D", str(self.root / server), "-l", str(log), "-w", action, *args)

    # -- controlling the standby ----------------------------------------------------------------

    def wait_caught_up(self, timeout: float = 15) -> None:
        """Until the standby has replayed all the primary has written so far."""
        target = _blocking(_query(self.primary_url, "SELECT pg_current_wal_lsn()::text"))
        sql = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        self._poll(lambda: _blocking(_query(self.standby_url, sql)) is True, timeout)

    def pause_replay(self) -> None:
        _blocking(_query(self.standby_url, "SELECT pg_wal_replay_pause()"))
        state = "SELECT pg_get_wal_replay_pause_state()"
        self._poll(lambda: _blocking(_query(self.standby_url, state)) == "paused", 10)

    def resume_replay(self) -> None:
        _blocking(_query(self.standby_url, "SELECT pg_wal_replay_resume()"))

    def stop_standby(self) -> None:
        self._pg_ctl("standby", "stop", "-m", "fast")

    def start_standby(self) -> None:
        self._pg_ctl("standby", "start")
        self.wait_caught_up()

    def reads_on(self, server: Server) -> int:
        """Transactions the `clinic` database has run on that server (flushed about once a
        second: poll with `wait_for_reads_on`)."""
        sql = (
            f"SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{DATABASE}'"
        )
        return int(_blocking(_query(self.url(server, "postgres"), sql)))

    def wait_for_reads_on(self, server: Server, more_than: int, timeout: float = 5) -> int:
        found = [0]

        def grown() -> bool:
            found[0] = self.reads_on(server)
            return found[0] > more_than

        self._poll(grown, timeout)
        return found[0]

    def truncate(self, tables: str) -> None:
        _blocking(_query(self.primary_url, f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        self.wait_caught_up()

    @staticmethod
    def _poll(done: Any, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise TimeoutError("the replication pair did not reach the expected state")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def replica_pair() -> Iterator[ReplicaPair]:
    root = Path(tempfile.mkdtemp(prefix="clinic-replica-"))
    pair = ReplicaPair(root)
    try:
        pair.start()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)
