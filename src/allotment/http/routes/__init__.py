"""Route handlers, one module per resource. Each decodes, calls the runtime, encodes."""

__all__: tuple[str, ...] = ()
