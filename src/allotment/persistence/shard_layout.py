"""How many shards a data directory was created with (SCL-20, SCL-21): `<data-dir>/shards/count`,
written once when the first sharded server creates the directory. A server started with a
different `--shards` refuses to start: placement is `tag mod N`, so serving the directory with
another N would look every customer up on the wrong shard. `allotment reshard` changes it."""

from __future__ import annotations

from pathlib import Path

from allotment.persistence.file_modes import PRIVATE_DIRECTORY

__all__ = ("ShardCountMismatch", "record_shards", "recorded_shards", "shard_dir")

COUNT_FILE = "count"


class ShardCountMismatch(RuntimeError):
    """The data directory holds another number of shards than the server was started with."""


def shard_dir(data_dir: Path, index: int) -> Path:
    return data_dir / "shards" / str(index)


def recorded_shards(data_dir: Path) -> int | None:
    """The number of shards recorded in `data_dir`, or None for a directory never sharded."""
    path = data_dir / "shards" / COUNT_FILE
    return int(path.read_text().strip()) if path.exists() else None


def record_shards(data_dir: Path, shards: int) -> None:
    """Record `shards` in a new directory, or check it against the one recorded.

    Raises:
        ShardCountMismatch: the directory was created with another number.
    """
    recorded = recorded_shards(data_dir)
    if recorded is not None and recorded != shards:
        raise ShardCountMismatch(
            f"{data_dir} holds {recorded} shards, not {shards}: start with --shards {recorded}, "
            f"or change it offline with `allotment reshard --shards {shards}`"
        )
    if recorded is None:
        (data_dir / "shards").mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        temporary = data_dir / "shards" / f"{COUNT_FILE}.tmp"
        temporary.write_text(f"{shards}\n")
        temporary.replace(data_dir / "shards" / COUNT_FILE)
