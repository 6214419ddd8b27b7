"""Console sessions: an admin key entered once, exchanged for a random token (CON-3..CON-8).

The server keeps each session in memory (one serving process: `serving.py` runs one granian
worker), so a restart signs everybody out, and signing out forgets the session here: the old
cookie then names nothing (CON-7). The key is held only in this process's memory, never in the
cookie, a URL or a log, so that every request re-authenticates it the way the API does: a key
revoked after sign-in ends its sessions at their next request (CON-6).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable

__all__ = (
    "IDLE_S",
    "LIFETIME_S",
    "SESSIONS_MAX",
    "Session",
    "SessionStore",
    "new_token",
    "tokens_equal",
)

LIFETIME_S = 8 * 3600  # a working day; the cookie's Max-Age says the same (CON-4)
IDLE_S = 3600  # a console left alone for an hour asks for the key again
SESSIONS_MAX = 1024  # signing in needs an admin key, but memory is bounded all the same


def new_token() -> str:
    """256 random bits, URL-safe: session ids and CSRF tokens alike."""
    return secrets.token_urlsafe(32)


def tokens_equal(presented: str | None, expected: str) -> bool:
    """Constant-time comparison, so a token cannot be guessed a character at a time."""
    return presented is not None and hmac.compare_digest(presented.encode(), expected.encode())


class Session:
    """One signed-in browser: its environment, CSRF token and expiry. The key it was opened
    with is kept for re-authentication and never shown: `repr` leaves it out, so a session
    that reaches a log or a traceback does not carry it (CON-5)."""

    __slots__ = ("_key", "csrf_token", "environment", "expires_at", "last_seen", "token")

    def __init__(self, key: str, environment: str, now: float) -> None:
        self._key = key
        self.environment = environment
        self.token = new_token()
        self.csrf_token = new_token()
        self.expires_at = now + LIFETIME_S
        self.last_seen = now

    @property
    def key(self) -> str:
        return self._key

    def __repr__(self) -> str:
        return f"Session(environment={self.environment!r}, expires_at={self.expires_at})"


class SessionStore:
    """The live sessions, by token. `now` is monotonic seconds: session expiry is about how
    long a browser has held the key, not the billing clock (which a manual clock may jump)."""

    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        self._now = now
        self._sessions: dict[str, Session] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def open(self, key: str, environment: str) -> Session:
        """A new session for an authenticated key; the oldest goes when the store is full."""
        now = self._now()
        self._forget_expired(now)
        while len(self._sessions) >= SESSIONS_MAX:
            del self._sessions[next(iter(self._sessions))]
        session = Session(key, environment, now)
        self._sessions[session.token] = session
        return session

    def find(self, token: str | None) -> Session | None:
        """The live session `token` names, its idle timer restarted; None once it expired,
        idled out or was closed."""
        session = self._sessions.get(token) if token else None
        if session is None:
            return None
        now = self._now()
        if now >= session.expires_at or now - session.last_seen >= IDLE_S:
            del self._sessions[session.token]
            return None
        session.last_seen = now
        return session

    def close(self, token: str | None) -> None:
        """Sign-out: the session is forgotten, whatever cookie still names it (CON-7)."""
        if token:
            self._sessions.pop(token, None)

    def _forget_expired(self, now: float) -> None:
        expired = [
            token
            for token, session in self._sessions.items()
            if now >= session.expires_at or now - session.last_seen >= IDLE_S
        ]
        for token in expired:
            del self._sessions[token]
