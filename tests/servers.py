"""Real service processes on loopback, for tests that need separate processes and connections."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import IO

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(url: str, within: float = 60) -> None:
    """Poll `{url}/ready` until it answers 200."""
    deadline = time.monotonic() + within
    while True:
        try:
            if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"service at {url} did not become ready")
        time.sleep(0.2)


@contextlib.contextmanager
def service_processes(
    database_url: str,
    count: int,
    api_key: str,
    extra_env: dict[str, str] | None = None,
    stderr: IO[bytes] | None = None,
) -> Iterator[list[str]]:
    """Start `count` uvicorn processes of the service on one database; yield their base URLs.
    Their logs go to `stderr` (a file), else to the test's own stderr."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SERVICE_API_KEY": f"agent:{api_key}",
        "LOG_LEVEL": "WARNING",
        "DISPATCHER_ENABLED": "false",
        "DB_POOL_SIZE": "20",
        "DB_MAX_OVERFLOW": "20",
        **(extra_env or {}),
    }
    for _ in range(count):
        port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "--factory",
                    "app.main:create_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-access-log",
                ],
                env=env,
                stderr=stderr,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in urls:
            wait_ready(url)
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
