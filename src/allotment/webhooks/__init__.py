"""Outbound webhooks (issue 15): endpoints, Standard Webhooks signing, the durable message log
fed from the journal, delivery with retries, and the pull feed. An edge like `payments`: the
runtime hands it journal records through `persistence.store_ports.NotificationOutbox`, and
wiring.py builds it. See docs/webhooks.md."""
