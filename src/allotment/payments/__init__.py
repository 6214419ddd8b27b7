"""Payment adapters. The only package allowed to import `stripe`."""

__all__: tuple[str, ...] = ()
