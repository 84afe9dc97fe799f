"""Signing secrets and the `webhook-signature` header, as the Standard Webhooks specification
has them (the `standardwebhooks` package's `Webhook(secret).verify` accepts every one)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes: the HMAC key, as the receiver is given it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the bytes
    the secret's base64 part stands for."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signatures(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One signature per secret, space-separated (after a rotation, the new secret's and the
    old one's): a receiver holding either verifies the message."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in secrets_)
