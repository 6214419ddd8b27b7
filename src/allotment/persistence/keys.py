"""API keys: stored only as SHA-256 hashes, shown in full once, at creation (AUTH-8).

Keys are 32 random bytes, so an unsalted fast hash is safe; lookups go by digest, and the
digest comparison is constant-time, so timing reveals nothing about a key.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from allotment.persistence.ports import ApiKey

__all__ = ("ALL_SCOPES", "ApiKey", "KeyStore", "environment_of", "new_key")

ALL_SCOPES = ("client:read", "client:write", "admin", "metrics")  # metrics: GET /metrics
_PREFIXES = {"sk_test_": "test", "sk_live_": "live"}


def environment_of(key: str) -> str | None:
    """The environment a key belongs to by its prefix (AUTH-4), or None when malformed."""
    for prefix, environment in _PREFIXES.items():
        if key.startswith(prefix) and len(key) > len(prefix) + 15:
            return environment
    return None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(environment: str = "test") -> str:
    prefix = next(p for p, env in _PREFIXES.items() if env == environment)
    return prefix + secrets.token_urlsafe(32)


class KeyStore:
    """The known keys, optionally persisted as `api_keys.json` under the data directory."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._keys: dict[str, ApiKey] = {}
        if path is not None and path.exists():
            for key in msgspec.json.decode(path.read_bytes(), type=list[ApiKey]):
                self._keys[key.digest] = key

    def __len__(self) -> int:
        return len(self._keys)

    def add(
        self, key: str, scopes: tuple[str, ...] = ALL_SCOPES, *, persist: bool = False
    ) -> ApiKey:
        """Register `key`. Raises ValueError for a key without a known prefix."""
        environment = environment_of(key)
        if environment is None:
            raise ValueError(
                "API keys start with sk_test_ or sk_live_ and are at least 24 characters"
            )
        record = ApiKey(
            digest=_digest(key),
            environment=environment,
            scopes=scopes,
            hint=f"{key[:8]}…{key[-4:]}",
            created_at=datetime.now(UTC),
        )
        self._keys[record.digest] = record
        if persist:
            self._save()
        return record

    def authenticate(self, key: str) -> ApiKey | None:
        digest = _digest(key)
        record = self._keys.get(digest)
        if record is None or not hmac.compare_digest(record.digest, digest):
            return None
        return record

    def _save(self) -> None:
        assert self._path is not None
        self._path.parent.mkdir(parents=True, exist_ok=True)
        persisted = [k for k in self._keys.values()]
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.format(msgspec.json.encode(persisted)))
        os.replace(tmp, self._path)
