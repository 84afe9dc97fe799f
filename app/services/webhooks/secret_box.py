"""Signing secrets sealed at rest: the database holds each endpoint's secret encrypted (Fernet:
AES-128-CBC with an HMAC-SHA256), so a dump of it alone does not let anyone sign messages.

The key is `WEBHOOK_SECRET_KEY` (several, comma-separated, to rotate it: the first seals,
every one opens), or else one generated once under `DATA_DIR` (`webhook_secret_key`), as the
API key is. Every process that creates endpoints or delivers messages must hold the same key.
"""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import Settings, fernet_keys

KEY_FILE = "webhook_secret_key"


class SecretUnreadable(Exception):
    """A sealed secret that none of this process's keys opens."""


class SecretBox:
    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "the endpoint's secret cannot be opened with this service's WEBHOOK_SECRET_KEY"
            ) from None


def box_for(settings: Settings) -> SecretBox:
    if settings.webhook_secret_key is not None:
        return _box(settings.webhook_secret_key)
    return _stored_box(settings.data_dir.resolve())


@lru_cache(maxsize=4)
def _box(keys: str) -> SecretBox:
    return SecretBox(fernet_keys(keys))


@lru_cache(maxsize=4)
def _stored_box(data_dir: Path) -> SecretBox:
    """The key kept under DATA_DIR, made on first use (once per process, so the few small file
    operations never recur on a request)."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        # Written aside, then linked into place: of two processes making it at once, both
        # keep the one that landed first.
        aside = data_dir / f".{KEY_FILE}.{secrets.token_hex(8)}"
        descriptor = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(Fernet.generate_key() + b"\n")
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
        finally:
            aside.unlink()
    return SecretBox(fernet_keys(path.read_text()))
