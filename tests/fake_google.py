"""A fake Google on loopback: the OAuth token endpoint and the Calendar v3 events API.

The token endpoint verifies the service account's signed JWT (RS256) and its subject, as
Google does for domain-wide delegation. Events live in memory per calendar. Failures can be
injected: the whole API down, scripted error answers, slow answers, unknown calendars.
"""

from __future__ import annotations

import copy
import json
import secrets
import threading
import time
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import jwt

SERVICE_ACCOUNT = "mirror@clinic-test.iam.gserviceaccount.com"
ADMIN = "admin@clinic.example"


@dataclass
class Scripted:
    status: int
    reason: str = ""
    retry_after: str | None = None


@dataclass
class Call:
    method: str
    calendar_id: str
    event_id: str | None
    action: str
    status: int


@dataclass
class FakeGoogle:
    calendars: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    deleted: dict[str, set[str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    script: deque[Scripted] = field(default_factory=deque)
    missing_calendars: set[str] = field(default_factory=set)
    down: bool = False
    no_move: bool = False  # behave like an endpoint without events.move (404)
    delay: float = 0.0
    token_requests: int = 0
    rejected_tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self.public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.tokens: set[str] = set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        # A client that timed out leaves a broken pipe behind; that is the point of some tests.
        self.server.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_credentials(self, directory: Path) -> Path:
        path = directory / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "clinic-test",
                    "private_key_id": "key-1",
                    "private_key": self.private_pem,
                    "client_email": SERVICE_ACCOUNT,
                    "client_id": "1234567890",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return path

    def events(self, calendar_id: str) -> dict[str, dict[str, Any]]:
        with self.lock:
            return copy.deepcopy(self.calendars.get(calendar_id, {}))

    def all_events(self) -> dict[str, dict[str, Any]]:
        """Every live event by id, across calendars."""
        with self.lock:
            return {eid: ev for cal in self.calendars.values() for eid, ev in cal.items()}

    def reset(self) -> None:
        with self.lock:
            self.calendars.clear()
            self.deleted.clear()
            self.calls.clear()
            self.script.clear()
            self.missing_calendars.clear()
            self.down = False
            self.no_move = False
            self.delay = 0.0


def _handler(fake: FakeGoogle) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        _last_body: bytes | None = None

        def log_message(self, *args: Any) -> None:
            pass

        def _send(
            self, status: int, body: Any = None, headers: dict[str, str] | None = None
        ) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
            self._send(
                status,
                {
                    "error": {
                        "code": status,
                        "message": reason,
                        "errors": [{"reason": reason, "message": reason}],
                    }
                },
                headers,
            )

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_POST(self) -> None:
            if self.path == "/token":
                self._token()
            else:
                self._api("POST")

        def do_PATCH(self) -> None:
            self._api("PATCH")

        def do_DELETE(self) -> None:
            self._api("DELETE")

        def do_GET(self) -> None:
            self._api("GET")

        def _token(self) -> None:
            form = urllib.parse.parse_qs(self._body().decode())
            fake.token_requests += 1
            try:
                claims = jwt.decode(
                    form["assertion"][0],
                    certs=fake.public_pem,
                    audience="https://oauth2.googleapis.com/token",
                )
                assert form["grant_type"][0] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
                assert claims["iss"] == SERVICE_ACCOUNT
                assert claims["sub"] == ADMIN
                assert "https://www.googleapis.com/auth/calendar" in claims["scope"].split()
            except Exception:
                fake.rejected_tokens += 1
                self._send(400, {"error": "invalid_grant"})
                return
            token = secrets.token_hex(16)
            fake.tokens.add(token)
            self._send(200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"})

        def _api(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            parts = [urllib.parse.unquote(p) for p in url.path.split("/") if p]
            body = self._body()
            if parts[:2] != ["calendar", "v3"] or len(parts) < 5 or parts[2] != "calendars":
                self._error(404, "notFound")
                return
            calendar_id, rest = parts[3], parts[5:]
            event_id = rest[0] if rest else None
            action = "move" if len(rest) == 2 and rest[1] == "move" else method
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth.removeprefix("Bearer ") not in fake.tokens:
                self._error(401, "authError")
                return
            if fake.delay:
                time.sleep(fake.delay)
            self._apply(method, action, calendar_id, event_id, body, url.query)

        def _record(
            self, method: str, action: str, calendar_id: str, event_id: str | None, status: int
        ) -> None:
            # Recorded before answering: a client that timed out still had its call applied.
            if event_id is None and action == "POST":
                event_id = json.loads(self._last_body or b"{}").get("id")
            with fake.lock:
                fake.calls.append(Call(method, calendar_id, event_id, action, status))

        def _apply(
            self,
            method: str,
            action: str,
            calendar_id: str,
            event_id: str | None,
            body: bytes,
            query: str,
        ) -> int:
            self._last_body = body
            with fake.lock:
                scripted = fake.script.popleft() if fake.script else None
                down = fake.down
            if down:
                self._record(method, action, calendar_id, event_id, 503)
                self._error(503, "backendError")
                return 503
            if scripted is not None:
                self._record(method, action, calendar_id, event_id, scripted.status)
                headers = {"Retry-After": scripted.retry_after} if scripted.retry_after else None
                self._error(scripted.status, scripted.reason or "scripted", headers)
                return scripted.status
            if calendar_id in fake.missing_calendars:
                self._record(method, action, calendar_id, event_id, 404)
                self._error(404, "notFound")
                return 404
            with fake.lock:
                events = fake.calendars.setdefault(calendar_id, {})
                gone = fake.deleted.setdefault(calendar_id, set())
                if action == "POST" and event_id is None:
                    event = json.loads(body)
                    eid = event["id"]
                    if eid in events or eid in gone:
                        result: tuple[int, Any] = (409, None)
                    else:
                        events[eid] = {**event, "status": "confirmed"}
                        result = (200, events[eid])
                elif action == "PATCH" and event_id:
                    patch = json.loads(body)
                    if event_id in events:
                        events[event_id].update(patch)
                        result = (200, events[event_id])
                    elif event_id in gone and patch.get("status") == "confirmed":
                        gone.discard(event_id)
                        events[event_id] = {**patch, "id": event_id}
                        result = (200, events[event_id])
                    else:
                        result = (404, None)
                elif action == "DELETE" and event_id:
                    if event_id in events:
                        del events[event_id]
                        gone.add(event_id)
                        result = (204, None)
                    else:
                        result = (410 if event_id in gone else 404, None)
                elif action == "move" and fake.no_move:
                    result = (404, None)
                elif action == "move" and event_id:
                    destination = urllib.parse.parse_qs(query)["destination"][0]
                    if event_id in events:
                        event = events.pop(event_id)
                        fake.calendars.setdefault(destination, {})[event_id] = event
                        result = (200, event)
                    else:
                        result = (404, None)
                elif action == "GET" and event_id:
                    result = (200, events[event_id]) if event_id in events else (404, None)
                else:
                    result = (400, None)
            status, payload = result
            self._record(method, action, calendar_id, event_id, status)
            if status == 204:
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif status >= 400:
                reason = {409: "duplicate", 410: "deleted", 404: "notFound"}.get(status, "bad")
                self._error(status, reason)
            else:
                self._send(status, payload)
            return status

    return Handler
