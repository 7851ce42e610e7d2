"""The core every other part stands on: settings, the CloudTrail record view, AWS's "public" rule, time."""
