"""The replication harness itself (`tests/standby.py`): a real primary + hot standby from the
embedded PostgreSQL's binaries, migrated, replicating, pausable, stoppable, counted, and gone
without a trace afterwards."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from tests.standby import SERVERS, ReplicaPair, Server, replica_pair

__all__ = ["replica_pair"]  # the module-scoped pair, used as a fixture here

PROBE = "harness_probe"


@pytest.fixture(scope="module")
def pair(replica_pair: ReplicaPair) -> Iterator[ReplicaPair]:
    replica_pair.execute("primary", f"CREATE TABLE {PROBE} (id int PRIMARY KEY, note text)")
    replica_pair.wait_caught_up()
    yield replica_pair


def probe_notes(pair: ReplicaPair, server: Server) -> list[str]:
    notes = pair.fetchval(server, f"SELECT array_agg(note ORDER BY id) FROM {PROBE}")
    return list(notes or [])


def write_probe(pair: ReplicaPair, note: str) -> None:
    pair.execute(
        "primary",
        f"INSERT INTO {PROBE} (id, note) VALUES ($1, $2)",
        int(time.time_ns() % 2**31),
        note,
    )


def test_two_servers_of_their_own_both_migrated(pair: ReplicaPair) -> None:
    for url in (pair.primary_url, pair.standby_url):
        parts = urlsplit(url)
        assert parts.scheme == "postgresql" and parts.username == "postgres"
        assert parts.hostname == "127.0.0.1" and parts.path == "/clinic"
    assert pair.ports["primary"] != pair.ports["standby"]
    assert 5432 not in pair.ports.values()
    for server in SERVERS:
        assert Path(pair.fetchval(server, "SHOW data_directory")) == pair.data_dir(server)
    assert pair.fetchval("primary", "SELECT pg_is_in_recovery()") is False
    assert pair.fetchval("standby", "SELECT pg_is_in_recovery()") is True
    head = pair.fetchval("primary", "SELECT version_num FROM alembic_version")
    assert head and pair.fetchval("standby", "SELECT version_num FROM alembic_version") == head
    streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
    assert pair.fetchval("primary", streaming) == 1


def test_a_row_written_on_the_primary_appears_on_the_standby(pair: ReplicaPair) -> None:
    write_probe(pair, "replicated")
    pair.wait_caught_up()
    assert "replicated" in probe_notes(pair, "standby")


def test_the_standby_refuses_writes(pair: ReplicaPair) -> None:
    with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
        pair.execute("standby", f"INSERT INTO {PROBE} (id, note) VALUES (-1, 'nope')")
    assert "nope" not in probe_notes(pair, "primary")


def test_a_paused_standby_does_not_replay_until_resumed(pair: ReplicaPair) -> None:
    pair.pause_replay()
    try:
        assert pair.replay_paused()
        write_probe(pair, "while paused")
        assert "while paused" in probe_notes(pair, "primary")
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            assert "while paused" not in probe_notes(pair, "standby")
            time.sleep(0.2)
    finally:
        pair.resume_replay()
    pair.wait_caught_up()
    assert not pair.replay_paused()
    assert "while paused" in probe_notes(pair, "standby")


def test_a_stopped_standby_refuses_connections_and_catches_up_when_started(
    pair: ReplicaPair,
) -> None:
    pair.stop_standby()
    try:
        with pytest.raises(OSError):
            pair.fetchval("standby", "SELECT 1")
        write_probe(pair, "while stopped")
    finally:
        pair.start_standby()
    assert "while stopped" in probe_notes(pair, "standby")
    # Still a streaming hot standby, on the same address.
    assert pair.fetchval("standby", "SELECT pg_is_in_recovery()") is True
    write_probe(pair, "after restart")
    pair.wait_caught_up()
    assert "after restart" in probe_notes(pair, "standby")


def test_reads_on_counts_the_clinic_transactions_of_each_server(pair: ReplicaPair) -> None:
    async def reads(count: int) -> None:
        connection = await asyncpg.connect(pair.standby_url)
        try:
            for _ in range(count):
                await connection.fetchval(f"SELECT count(*) FROM {PROBE}")
        finally:
            await connection.close()  # a backend flushes its counters when it exits

    before = {server: pair.reads_on(server) for server in SERVERS}
    pair.wait_caught_up()  # the harness's own queries are not counted

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, reads(20)).result()
    seen = pair.wait_for_reads_on("standby", more_than=before["standby"] + 19)
    assert seen >= before["standby"] + 20
    assert pair.reads_on("primary") - before["primary"] < 20


def test_truncate_empties_the_tables_on_both(pair: ReplicaPair) -> None:
    write_probe(pair, "doomed")
    pair.truncate([PROBE])
    assert probe_notes(pair, "standby") == []
    assert probe_notes(pair, "primary") == []


def test_the_pair_leaves_no_server_and_no_directory_behind_even_on_failure() -> None:
    with pytest.raises(RuntimeError, match="boom"), ReplicaPair() as pair:
        pids = pair.server_pids()
        root = pair.root
        assert len(pids) > 4  # two postmasters and their children
        raise RuntimeError("boom")
    assert not root.exists()
    assert not [pid for pid in pids if alive(pid)]
    assert not leftover(root)


def test_a_failing_set_up_leaves_nothing_behind() -> None:
    def failing_setup(url: str) -> None:
        raise RuntimeError(f"migrations failed on {url}")

    pair = ReplicaPair(setup=failing_setup)
    with pytest.raises(RuntimeError, match="migrations failed"), pair:
        pass
    assert not pair.root.exists()
    assert not leftover(pair.root)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def leftover(root: Path) -> list[str]:
    """Processes whose command line names the pair's directory (the postmasters, pg_ctl)."""
    found = subprocess.run(["pgrep", "-af", str(root)], capture_output=True, text=True)
    return found.stdout.splitlines()
