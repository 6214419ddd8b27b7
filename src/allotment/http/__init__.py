"""The Litestar front door: decode and validate, call the runtime, encode. Nothing else."""

__all__: tuple[str, ...] = ()
