"""A webhook receiver on loopback that records every request it gets, byte for byte, and
answers as the test scripts it (statuses in turn, a delay, a Retry-After)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def message_id(self) -> str:
        return self.headers["webhook-id"]


@dataclass
class Receiver:
    requests: list[Request] = field(default_factory=list)
    # Answers in turn; once they run out, `status`.
    script: list[int] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    retry_after: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        # A sender that timed out leaves a broken pipe behind; that is the point of some tests.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def received(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def answer(self) -> int:
        with self.lock:
            return self.script.pop(0) if self.script else self.status


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            request = Request(
                self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
            )
            with receiver.lock:
                receiver.requests.append(request)
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.answer()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            if receiver.retry_after and status >= 400:
                self.send_header("Retry-After", receiver.retry_after)
            self.end_headers()

    return Handler
