"""Who may read what the server writes (OPS-K7): its owner alone.

Key hashes, the journal, checkpoints and the analytics files hold every customer's data, so
each is created 0600 (and a data directory the server creates, 0700), whatever the umask.
"""

from __future__ import annotations

import os

__all__ = ("PRIVATE", "PRIVATE_DIRECTORY", "private_opener")

PRIVATE = 0o600
PRIVATE_DIRECTORY = 0o700


def private_opener(path: str | os.PathLike[str], flags: int) -> int:
    """An `opener` for `open`/`FileIO`: a file it creates is the owner's alone."""
    return os.open(path, flags | os.O_CLOEXEC, PRIVATE)
