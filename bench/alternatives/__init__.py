"""Issue 6 item 7: the entitlement check against the designs users would pick instead."""
