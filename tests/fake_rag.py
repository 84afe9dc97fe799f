"""A fake RAG service on loopback that records every request it gets."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    api_key: str | None
    body: dict[str, Any]


@dataclass
class FakeRag:
    received: list[Received] = field(default_factory=list)
    every_request: list[Received] = field(default_factory=list)
    status: int = 200
    retry_after: str | None = None
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        # A client that timed out leaves a broken pipe behind; that is the point of some tests.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.received.clear()
            self.every_request.clear()
            self.status, self.retry_after, self.delay = 200, None, 0.0

    def accepted(self) -> list[Received]:
        """Requests that were answered 2xx, i.e. what the RAG index now holds, in order."""
        with self.lock:
            return list(self.received)

    def latest(self) -> dict[str, dict[str, Any]]:
        return {r.path.rsplit("/", 1)[-1]: r.body for r in self.accepted()}


def _handler(fake: FakeRag) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            if fake.delay:
                time.sleep(fake.delay)
            status = fake.status
            request = Received(self.path, self.headers.get("X-API-Key"), body)
            with fake.lock:
                fake.every_request.append(request)
                if 200 <= status < 300:
                    fake.received.append(request)
            data = json.dumps({"ok": status < 300, "detail": "scripted"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if fake.retry_after and status >= 400:
                self.send_header("Retry-After", fake.retry_after)
            self.end_headers()
            self.wfile.write(data)

    return Handler
