"""The runtime owns concurrency: actors, shards, timers, the clock and bounded buffers."""

__all__: tuple[str, ...] = ()
