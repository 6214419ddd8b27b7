"""Console sessions: an admin key entered once, exchanged for a random token (CON-3..CON-8).

A server may answer from several worker processes (a Ray front door's `--workers`), and a
browser's next request may reach any of them, so a session lives where every worker of the
server sees it: a small file per session under `<data-dir>/console/sessions/` (CON-81). The
file is named by the SHA-256 of the cookie's token, and holds the API key only sealed with the
token (XOR with SHAKE-256 of it): the browser's cookie is needed to read the key back, so the
directory alone lets nobody in, and the key is never on disk in the clear. Each request
unseals the key and re-authenticates it as the API does (CON-6), so a revoked key ends its
sessions on every worker. Sign-out deletes the file: every worker then finds nothing (CON-7).
Files are written whole (a temporary file, then a rename), mode 0600, the directory 0700.
`allotment serve` empties the directory as it starts, so a restart signs everybody out.

Without a directory (an app built in a test) the same records live in this process's memory.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

__all__ = (
    "IDLE_S",
    "LIFETIME_S",
    "SESSIONS_MAX",
    "Session",
    "SessionStore",
    "forget_all",
    "new_token",
    "sessions_dir",
    "tokens_equal",
)

LIFETIME_S = 8 * 3600  # a working day; the cookie's Max-Age says the same (CON-4)
IDLE_S = 3600  # a console left alone for an hour asks for the key again
SESSIONS_MAX = 1024  # signing in needs an admin key, but the store is bounded all the same
TOUCH_S = 60.0  # a session's last use is written at most once a minute: idle to the minute
_SEAL = b"allotment console key\x00"


def new_token() -> str:
    """256 random bits, URL-safe: session ids and CSRF tokens alike."""
    return secrets.token_urlsafe(32)


def tokens_equal(presented: str | None, expected: str) -> bool:
    """Constant-time comparison, so a token cannot be guessed a character at a time."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


def sessions_dir(data_dir: Path) -> Path:
    return data_dir / "console" / "sessions"


def forget_all(data_dir: Path) -> None:
    """Sign everybody out: `allotment serve` calls it as it starts, holding the directory's
    lock (no worker of another server is using it)."""
    directory = sessions_dir(data_dir)
    if directory.is_dir():
        for entry in directory.iterdir():
            entry.unlink(missing_ok=True)


def _boot() -> str:
    """This machine's boot: monotonic time restarts with it, so a record from another boot
    (a data directory that outlived a reboot without a `serve` start) is void."""
    with contextlib.suppress(OSError):
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return ""


def _sealed(token: str, data: bytes) -> bytes:
    """`data` XOR a pad drawn from the token: sealing and unsealing are the same operation. A
    token is random and seals one key once, so the pad is never reused."""
    pad = hashlib.shake_256(_SEAL + token.encode()).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    """A session as stored: nothing in it opens the console without the cookie's token."""

    environment: str
    csrf_token: str
    sealed_key: bytes
    boot: str
    created_at: float  # monotonic seconds, shared by every process of one boot
    expires_at: float
    last_seen: float


class Session:
    """One signed-in browser: its environment, CSRF token and expiry. The key it was opened
    with is kept for re-authentication and never shown: `repr` leaves it out, so a session
    that reaches a log or a traceback does not carry it (CON-5)."""

    __slots__ = ("_key", "csrf_token", "environment", "expires_at", "last_seen", "token")

    def __init__(self, key: str, token: str, record: _Record) -> None:
        self._key = key
        self.token = token
        self.environment = record.environment
        self.csrf_token = record.csrf_token
        self.expires_at = record.expires_at
        self.last_seen = record.last_seen

    @property
    def key(self) -> str:
        return self._key

    def __repr__(self) -> str:
        return f"Session(environment={self.environment!r}, expires_at={self.expires_at})"


class _Memory:
    """The records in this process (no data directory)."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}

    def read(self, name: str) -> bytes | None:
        return self._records.get(name)

    def write(self, name: str, data: bytes) -> None:
        self._records[name] = data

    def delete(self, name: str) -> None:
        self._records.pop(name, None)

    def names(self) -> list[str]:
        return list(self._records)


class _Files:
    """The records as files every worker of the server reads (CON-81)."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory

    def read(self, name: str) -> bytes | None:
        try:
            return (self._directory / name).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, name: str, data: bytes) -> None:
        """Whole or not at all: another worker never reads half a record."""
        self._directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self._directory / f".{name}.{secrets.token_hex(4)}"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            os.replace(temporary, self._directory / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def delete(self, name: str) -> None:
        (self._directory / name).unlink(missing_ok=True)

    def names(self) -> list[str]:
        if not self._directory.is_dir():
            return []
        return [entry.name for entry in self._directory.iterdir() if entry.name[0] != "."]


class SessionStore:
    """The live sessions, by token. `now` is monotonic seconds: session expiry is about how
    long a browser has held the key, not the billing clock (which a manual clock may jump)."""

    def __init__(
        self, directory: Path | None = None, now: Callable[[], float] = time.monotonic
    ) -> None:
        self._now = now
        self._boot = _boot()
        self._records = _Files(directory) if directory is not None else _Memory()

    def __len__(self) -> int:
        return len(self._records.names())

    def open(self, key: str, environment: str) -> Session:
        """A new session for an authenticated key; the oldest goes when the store is full."""
        now = self._now()
        self._make_room(now)
        token = new_token()
        record = _Record(
            environment=environment, csrf_token=new_token(),
            sealed_key=_sealed(token, key.encode()), boot=self._boot, created_at=now,
            expires_at=now + LIFETIME_S, last_seen=now,
        )  # fmt: skip
        self._records.write(_name(token), msgspec.json.encode(record))
        return Session(key, token, record)

    def find(self, token: str | None) -> Session | None:
        """The live session `token` names, its idle timer restarted; None once it expired,
        idled out or was closed, by this worker or another."""
        if not token:
            return None
        name = _name(token)
        record = self._load(name)
        if record is None:
            return None
        now = self._now()
        if not self._live(record, now):
            self._records.delete(name)
            return None
        if now - record.last_seen >= TOUCH_S:
            record = msgspec.structs.replace(record, last_seen=now)
            self._records.write(name, msgspec.json.encode(record))
        key = _sealed(token, record.sealed_key).decode(errors="replace")
        return Session(key, token, record)

    def close(self, token: str | None) -> None:
        """Sign-out: the session is forgotten, whatever cookie still names it (CON-7)."""
        if token:
            self._records.delete(_name(token))

    def _load(self, name: str) -> _Record | None:
        data = self._records.read(name)
        if data is None:
            return None
        try:
            return msgspec.json.decode(data, type=_Record)
        except msgspec.DecodeError:
            self._records.delete(name)  # not ours, or damaged: it names no session
            return None

    def _live(self, record: _Record, now: float) -> bool:
        return (
            record.boot == self._boot
            and now < record.expires_at
            and now - record.last_seen < IDLE_S
        )

    def _make_room(self, now: float) -> None:
        """Forget the expired sessions, then the oldest while the store is full. A sign-in
        reads every record (at most `SESSIONS_MAX` small files); a page reads only its own."""
        live: list[tuple[float, str]] = []
        for name in self._records.names():
            record = self._load(name)
            if record is not None and self._live(record, now):
                live.append((record.created_at, name))
            elif record is not None:
                self._records.delete(name)
        live.sort()
        while len(live) >= SESSIONS_MAX:
            self._records.delete(live.pop(0)[1])


def _name(token: str) -> str:
    """A token's record: its SHA-256, so the directory does not hold the tokens themselves."""
    return hashlib.sha256(token.encode()).hexdigest()
