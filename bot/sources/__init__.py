"""Where records come from: LookupEvents, trail buckets, SQS, files; their state and health; the poller."""
