"""Hand-off: alerts passed on to PagerDuty (Events API v2) and to a signed webhook, durably.

The alert engine's events (bot.alerts.events) become rows of the `handoffs` table in the transaction
that changed the alert (bot.handoff.notifier); a sender (bot.handoff.sender) posts them later, retried
with back-off. Like bot.slack.notifier, and independent of it: nothing here knows Slack.
"""
