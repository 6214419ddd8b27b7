"""Standard Webhooks signing (WHK-D10..WHK-D13): secrets `whsec_` + base64 of 24 random
bytes; `webhook-signature` is `v1,` + base64 HMAC-SHA256 of `id.timestamp.body`, keyed by the
decoded secret. During a rotation's grace period one header carries both signatures, space
separated, which the spec (and the `standardwebhooks` package) accept."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import secrets
from collections.abc import Sequence

__all__ = ("SECRET_PREFIX", "new_secret", "signature_header", "signed_headers")

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


_BLOCK = 64  # SHA-256's block size, in bytes (RFC 2104's B)
_INNER = bytes(b ^ 0x36 for b in range(256))  # RFC 2104's ipad and opad, as translate tables
_OUTER = bytes(b ^ 0x5C for b in range(256))


@functools.lru_cache(maxsize=1024)  # every delivery signs with one of a few secrets
def _pads(secret: str) -> tuple[hashlib._Hash, hashlib._Hash]:
    """HMAC-SHA256 (RFC 2104) of the decoded secret, its key already hashed into the inner
    and outer states: a signature copies them, where `hmac.digest` set the key up again for
    every delivery (on OpenSSL 3 that call cost twice the whole HMAC done this way)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return hashlib.sha256(key.translate(_INNER)), hashlib.sha256(key.translate(_OUTER))


def _sign(secret: str, signed: bytes) -> str:
    inner, outer = _pads(secret)
    inner, outer = inner.copy(), outer.copy()
    inner.update(signed)
    outer.update(inner.digest())
    return "v1," + binascii.b2a_base64(outer.digest(), newline=False).decode()


def signature_header(secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """One `v1,` signature per secret, newest first. Every delivery signs, on the server's
    one thread: the signed bytes are built once for all secrets, and the usual single secret
    needs no join."""
    signed = b"%s.%d.%s" % (message_id.encode(), timestamp, body)
    if len(secrets_) == 1:
        return _sign(secrets_[0], signed)
    return " ".join([_sign(secret, signed) for secret in secrets_])


def signed_headers(
    secrets_: Sequence[str], message_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_, message_id, timestamp, body),
    }
