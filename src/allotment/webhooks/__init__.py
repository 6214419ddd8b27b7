"""Outbound webhooks (issue 15): the edge that renders the notifications the domain decided
(`payloads`) and delivers them. Nothing in the domain or the runtime imports this package."""
