"""Outbound webhooks (issue 15): the edge that renders the notifications the domain decided
(`payloads`) and delivers them: endpoints, Standard Webhooks signing, the durable message log
fed from the journal, delivery with retries, and the pull feed. The runtime hands it journal
records through `persistence.store_ports.NotificationOutbox` only; wiring.py builds it.
Nothing in the domain or the runtime imports this package. See docs/webhooks.md."""
