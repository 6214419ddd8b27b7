"""Standard Webhooks signing (WHK-D10..WHK-D13): secrets `whsec_` + base64 of 24 random
bytes; `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the
decoded secret. During a rotation's grace period one header carries both signatures, space
separated, which the spec (and the `standardwebhooks` package) accept."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = ("SECRET_PREFIX", "new_secret", "signature_header", "signed_headers")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


@functools.lru_cache(maxsize=1024)  # every delivery signs with one of a few secrets
def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def _sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.digest(_key(secret), signed, hashlib.sha256)  # one-shot: no HMAC object
    return "v1," + base64.b64encode(digest).decode()


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,` signature per secret, newest first."""
    return " ".join(_sign(secret, message_id, timestamp, body) for secret in secrets_)


def signed_headers(
    secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
    }
