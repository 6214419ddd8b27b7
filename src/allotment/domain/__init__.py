"""The pure domain core: catalog, customer state, pricing, credits, entitlements.

Nothing in this package performs I/O, reads a clock, awaits, or logs business facts.
Time arrives as an argument (`now`), and so do fresh ids (`TurnContext.new_id`).
"""

__all__: tuple[str, ...] = ()
