"""Ports and adapters for durable state: the journal, snapshots, API keys, analytics."""

__all__: tuple[str, ...] = ()
