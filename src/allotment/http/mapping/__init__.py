"""Mapping domain values to wire DTOs, one module per resource.

Projectors (`project_*`, `*_projector`) run inside a customer turn, so what they return is a
consistent, immutable picture of that instant.
"""

__all__: tuple[str, ...] = ()
