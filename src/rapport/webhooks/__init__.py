"""Outgoing webhooks: admin-configured endpoints receive the workspace's domain events, signed
per Standard Webhooks, retried for about a day, logged, replayable, and never sent to internal
addresses. See `delivery.py` for the flow and `ssrf.py` for the address rules."""
