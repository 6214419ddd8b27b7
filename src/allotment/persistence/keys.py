"""API keys: stored only as SHA-256 hashes, shown in full once, at creation (AUTH-8), and
managed while the server runs (OPS-K1..OPS-K7; docs/deploy.md, "API keys").

Keys are 32 random bytes, so an unsalted fast hash is safe; lookups go by digest, and the
digest comparison is constant-time, so timing reveals nothing about a key.

A request costs the store one memory read (has another process changed the file? see
`key_file`), one dict lookup and one set insertion (the key was used). Last-use times reach
the file at most every `usage_flush_s`, from a background task, never from a request.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import msgspec

from allotment.persistence import key_file
from allotment.persistence.file_modes import PRIVATE
from allotment.persistence.ports import ApiKey, KeyRefused

__all__ = (
    "ALL_SCOPES",
    "ApiKey",
    "KeyRefused",
    "KeyStore",
    "environment_of",
    "new_key",
    "parse_scopes",
)

logger = logging.getLogger("allotment.keys")
ALL_SCOPES = ("client:read", "client:write", "admin", "metrics")  # metrics: GET /metrics
_PREFIXES = {"sk_test_": "test", "sk_live_": "live"}
PREFIX_LENGTH = 16  # "sk_test_" and 8 random characters (48 bits): the key's public id
_NAME = re.compile(r"[A-Za-z0-9_.:@-]{1,64}")  # OPS-K1
USAGE_FLUSH_S = 60.0  # OPS-K5: last use is recorded to within this
# Keys that authenticated, remembered with their digest: a SHA-256 per request was 4% of a
# reserve+commit pair's CPU (py-spy, 64 clients on one key). A digest never changes, so a
# revoked key still fails (its digest leaves the active table); the bound keeps a flood of
# distinct valid keys from growing it.
_DIGESTS_MAX = 256


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


def _now() -> datetime:
    """Key times are the machine's time, never the manual clock: they are for operators."""
    return datetime.now(UTC).replace(microsecond=0)


def parse_scopes(text: str) -> tuple[str, ...]:
    """`all`, or scopes separated by commas, in the order of ALL_SCOPES.

    Raises:
        KeyRefused: an unknown scope, or none.
    """
    if text.strip() == "all":
        return ALL_SCOPES
    given = {scope.strip() for scope in text.split(",") if scope.strip()}
    unknown = sorted(given - set(ALL_SCOPES))
    if unknown or not given:
        raise KeyRefused(
            400, f"unknown scope {', '.join(unknown) or '(none)'}: use all, or any of "
            f"{', '.join(ALL_SCOPES)} separated by commas",
        )  # fmt: skip
    return tuple(scope for scope in ALL_SCOPES if scope in given)


class KeyStore:
    """The known keys: those in `<data-dir>/api_keys.json` when `path` is given (a store
    without one keeps its keys in memory), plus any added with `add` (`--api-key`)."""

    def __init__(self, path: Path | None = None, *, usage_flush_s: float = USAGE_FLUSH_S) -> None:
        self._path = path
        self._usage_flush_s = usage_flush_s
        self._fixed: dict[str, ApiKey] = {}  # given on the command line: never stored
        self._records: list[ApiKey] = []  # the file's records, revoked ones included
        self._active: dict[str, ApiKey] = {}  # by digest: what authenticates
        self._used: set[str] = set()  # digests used since the last usage flush
        self._digests: dict[str, str] = {}  # key -> digest, for keys that authenticated
        self._counter: key_file.ChangeCounter | None = None
        self._seen = 0  # the change counter when `_records` was read
        self._identity: key_file.FileIdentity | None = None
        if path is not None:
            self._counter = key_file.ChangeCounter(path.with_name(key_file.LOCK_FILE))
            self._narrow_old_file(path)
            self._reload()

    @staticmethod
    def _narrow_old_file(path: Path) -> None:
        """A file written before OPS-K7 was world-readable: make it the owner's alone."""
        if path.exists() and path.stat().st_mode & 0o077:
            path.chmod(PRIVATE)

    def __len__(self) -> int:
        """Keys that authenticate."""
        return len(self._active)

    def stored(self) -> list[ApiKey]:
        """The file's records as last read, revoked ones included."""
        return list(self._records)

    def add(self, key: str, scopes: tuple[str, ...] = ALL_SCOPES, *, name: str = "") -> ApiKey:
        """Accept `key` in this process only (`--api-key`, tests); it is never stored.

        Raises:
            ValueError: the key has no known prefix.
        """
        environment = environment_of(key)
        if environment is None:
            raise ValueError(
                "API keys start with sk_test_ or sk_live_ and are at least 24 characters"
            )
        record = ApiKey(
            digest=_digest(key), environment=environment, scopes=scopes,
            hint=f"{key[:8]}…{key[-4:]}", created_at=_now(), name=name or "command line",
        )  # fmt: skip
        self._fixed[record.digest] = record
        self._active[record.digest] = record
        return record

    def authenticate(self, key: str) -> ApiKey | None:
        if self._counter is not None and self._counter.value() != self._seen:
            self._reload_serving()  # another process (or our own thread) changed the file
        digest = self._digests.get(key)
        if digest is None:
            digest = _digest(key)
        record = self._active.get(digest)
        if record is None or not hmac.compare_digest(record.digest, digest):
            return None
        if key not in self._digests:
            if len(self._digests) >= _DIGESTS_MAX:
                self._digests.clear()
            self._digests[key] = digest
        self._used.add(digest)
        return record

    # -- changes: blocking, for the CLI and (on a worker thread) the admin API -----------------

    def create(
        self, name: str, scopes: tuple[str, ...] = ALL_SCOPES, environment: str = "test"
    ) -> tuple[str, ApiKey]:
        """Mint a key named `name` and store its hash (OPS-K1, OPS-K2).

        Raises:
            KeyRefused: a bad name or scope.
        """
        if not _NAME.fullmatch(name):
            raise KeyRefused(
                400, "a key name is 1 to 64 letters, digits and _ - . : @ (e.g. --name ci)"
            )
        if not scopes or any(scope not in ALL_SCOPES for scope in scopes):
            raise KeyRefused(400, f"scopes are any of {', '.join(ALL_SCOPES)}")
        taken = {record.prefix for record in self._records}
        key = new_key(environment)
        while key[:PREFIX_LENGTH] in taken:  # 48 random bits: practically never
            key = new_key(environment)
        record = ApiKey(
            digest=_digest(key), environment=environment, scopes=scopes,
            hint=f"{key[:8]}…{key[-4:]}", created_at=_now(), name=name,
            prefix=key[:PREFIX_LENGTH],
        )  # fmt: skip
        self._change(lambda records: [*records, record])
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by id, or by name when exactly one active key has it (OPS-K3).

        Raises:
            KeyRefused: 404 when no key matches, 409 when a name is shared.
        """
        found: list[ApiKey] = []

        def revoked(records: list[ApiKey]) -> list[ApiKey]:
            found[:] = _matching(records, key_id)
            at = _now()
            return [  # revoking twice keeps the first time
                msgspec.structs.replace(r, revoked_at=at)
                if r.digest == found[0].digest and r.revoked_at is None
                else r
                for r in records
            ]

        self._change(revoked)
        return next(r for r in self._records if r.digest == found[0].digest)

    def take_usage(self) -> set[str]:
        """The digests of stored keys used since the last call. On the event loop: requests
        add to the set there."""
        used, self._used = self._used, set()
        return used - self._fixed.keys()

    def record_usage(self, used: set[str]) -> None:
        """Write now as the last-use time of the keys in `used` (OPS-K5)."""
        if not used:
            return
        at = _now()
        self._change(
            lambda records: [
                msgspec.structs.replace(r, last_used_at=at) if r.digest in used else r
                for r in records
            ]
        )

    def _change(self, change: Callable[[list[ApiKey]], list[ApiKey]]) -> None:
        """Read-modify-write under the writers' lock, then serve the result at once."""
        if self._path is None or self._counter is None:
            self._install(change(self._records), self._seen)
            return
        with self._counter.locked():
            records = change(key_file.read_records(self._path))
            self._identity = key_file.write_records(self._path, records)
            seen = self._counter.increment()
        self._install(records, seen)

    def _reload(self) -> None:
        assert self._path is not None
        assert self._counter is not None
        seen = self._counter.value()  # read first: a change during the read is seen again
        self._identity = key_file.file_identity(self._path)
        self._install(key_file.read_records(self._path), seen)

    def _reload_serving(self) -> None:
        """Reload for a request: a file broken by hand must not fail every request, so the
        last good keys keep serving and the log says why."""
        try:
            self._reload()
        except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
            assert self._counter is not None
            self._seen = self._counter.value()  # not again for every request
            logger.error("api keys not reloaded, the previous ones still apply: %s", error)

    def _install(self, records: list[ApiKey], seen: int) -> None:
        active = {r.digest: r for r in records if r.revoked_at is None}
        active.update(self._fixed)
        # One assignment each: a request on the loop sees the old table or the new one.
        self._records, self._active, self._seen = records, active, seen

    # -- the server's background work ----------------------------------------------------------

    async def list_keys(self) -> list[ApiKey]:
        await anyio.to_thread.run_sync(self.record_usage, self.take_usage())
        return self.stored()

    async def create_key(
        self, name: str, scopes: tuple[str, ...], environment: str
    ) -> tuple[str, ApiKey]:
        return await anyio.to_thread.run_sync(self.create, name, scopes, environment)

    async def revoke_key(self, key_id: str) -> ApiKey:
        return await anyio.to_thread.run_sync(self.revoke, key_id)

    @asynccontextmanager
    async def maintained(self) -> AsyncIterator[None]:
        """While the server runs: write last-use times every `usage_flush_s`, notice a file
        replaced by hand (no change counter moved), and write the last uses at the end."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._maintain)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
        await anyio.to_thread.run_sync(self.record_usage, self.take_usage())

    async def _maintain(self) -> None:
        while True:
            await anyio.sleep(self._usage_flush_s)
            await anyio.to_thread.run_sync(self.record_usage, self.take_usage())
            path = self._path
            if path is not None and key_file.file_identity(path) != self._identity:
                await anyio.to_thread.run_sync(self._reload_serving)


def _matching(records: Sequence[ApiKey], key_id: str) -> list[ApiKey]:
    by_id = [r for r in records if r.key_id == key_id]
    if by_id:
        return by_id
    named = [r for r in records if r.name == key_id and r.revoked_at is None]
    if len(named) > 1:
        ids = ", ".join(r.key_id for r in named)
        raise KeyRefused(409, f"{len(named)} active keys are named {key_id!r} ({ids}): give an id")
    if not named:
        raise KeyRefused(404, f"no key with id or name {key_id!r} (see `allotment keys list`)")
    return named
