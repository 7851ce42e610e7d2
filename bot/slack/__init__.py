"""Slack: cards, messages and escaping, the outbox, permissions, the manifest, the transports."""
