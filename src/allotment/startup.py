"""What `allotment serve` checks before it touches any data, each refusal one line (OPS-P3).

The order is the order of cost and of harm: the files it reads (catalog, prices), the data
directory (writable, then not served by another process), then the port. Nothing here writes
state: a refused start mints no sandbox key and leaves the data directory as it was (apart
from creating it, and the lock file).
"""

from __future__ import annotations

import socket

from allotment import serving
from allotment.config import Settings
from allotment.domain.catalog import Catalog
from allotment.loading import LoadFailed, load_catalog, load_price_table
from allotment.persistence import datadir_lock
from allotment.persistence.file_modes import PRIVATE_DIRECTORY
from allotment.persistence.journal_io import probe

__all__ = ("Claimed", "StartRefused", "claim")


class StartRefused(Exception):
    """The server cannot start; `str()` is the one line to print, `status` the exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Claimed:
    """What a successful start holds: the catalog it loaded, the data directory's lock and the
    listening socket, both kept until the server stops."""

    def __init__(
        self, catalog: Catalog, lock: datadir_lock.DataDirLock, listener: socket.socket
    ) -> None:
        self.catalog = catalog
        self.lock = lock
        self.listener = listener


def _check_writable(settings: Settings) -> None:
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise StartRefused(f"data directory {settings.data_dir} is not a directory", 1)
    try:
        settings.data_dir.mkdir(mode=PRIVATE_DIRECTORY, parents=True, exist_ok=True)  # OPS-K7
        probe(settings.data_dir)  # write, fsync, remove: what the journal will need
    except OSError as error:
        raise StartRefused(
            f"data directory {settings.data_dir} is not writable: {error.strerror or error}", 1
        ) from None


def claim(settings: Settings) -> Claimed:
    """Load the files, check and lock the data directory, and bind the port.

    Raises:
        StartRefused: an unreadable or malformed catalog or price table (status 2), an
            unwritable data directory, one locked by another server, or a port in use (1).
    """
    try:
        catalog = load_catalog(settings.catalog_path)
        load_price_table(settings.model_prices_path)  # loaded again by the worker; cheap
    except LoadFailed as error:
        raise StartRefused(str(error), 2) from None
    _check_writable(settings)
    try:
        lock = datadir_lock.hold(settings.data_dir)
    except datadir_lock.DataDirInUse as error:
        raise StartRefused(str(error), 1) from None
    try:
        listener = serving.listen(settings.host, settings.port)
    except serving.PortUnavailable as error:
        lock.release()
        raise StartRefused(error.message, 1) from None
    return Claimed(catalog, lock, listener)
