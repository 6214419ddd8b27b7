"""`allotment keys create|list|revoke` (OPS-K1..OPS-K4): the key store under the data
directory, changed while a server runs on it; the server applies each change to the next
request it starts (persistence/key_file.py)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path

import msgspec

from allotment.persistence import key_file
from allotment.persistence.keys import ApiKey, KeyRefused, KeyStore, parse_scopes

__all__ = ("format_keys", "run_keys_command")

_COLUMNS = ("ID", "NAME", "ENV", "SCOPES", "CREATED", "LAST USED", "STATUS")


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else "never"


def _row(record: ApiKey) -> tuple[str, ...]:
    status = "active" if record.revoked_at is None else f"revoked {_when(record.revoked_at)}"
    return (
        record.key_id, record.name or "-", record.environment, ",".join(record.scopes),
        _when(record.created_at), _when(record.last_used_at), status,
    )  # fmt: skip


def format_keys(records: list[ApiKey]) -> str:
    """A table of `records`: ids, names, scopes and times; never a key or a hash."""
    rows = [_COLUMNS, *(_row(record) for record in records)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def run_keys_command(args: argparse.Namespace) -> int:
    """Run `keys <command>`; 0 on success, 1 when refused, 2 when the store is unusable."""
    path = args.data_dir / key_file.KEYS_FILE
    try:
        if args.keys_command == "list":
            return _list(path)
        store = KeyStore(path)
        if args.keys_command == "create":
            key, record = store.create(args.name, parse_scopes(args.scopes), args.environment)
            print(key)
            print(
                f"allotment: created key {record.key_id} ({record.name}; "
                f"{', '.join(record.scopes)}): shown once, only its hash is stored",
                file=sys.stderr,
            )
            return 0
        record = store.revoke(args.key)
        print(f"allotment: revoked key {record.key_id} ({record.name or 'unnamed'})")
        return 0
    except KeyRefused as refused:
        print(f"allotment: {refused.message}", file=sys.stderr)
        return 1
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as error:
        print(f"allotment: cannot use the keys in {path}: {error}", file=sys.stderr)
        return 2


def _list(path: Path) -> int:
    records = key_file.read_records(path)
    if not records:
        print(f"allotment: no keys in {path}; create one with "
              "`allotment keys create --name default --scopes all`")  # fmt: skip
        return 0
    print(format_keys(records))
    return 0
