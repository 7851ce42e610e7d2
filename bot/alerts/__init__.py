"""The alert engine: findings grouped into alerts, their lifecycle, auto-resolve, exceptions, audit.

It knows nothing of Slack: it reports what happened (bot.alerts.events) and bot.slack says it.
"""
