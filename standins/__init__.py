"""Stand-ins for Slack's Web API and CloudTrail LookupEvents, on 127.0.0.1.

Only the tests, the benchmarks and `demo` use these: the bot itself always talks to the real
services (or to whatever SLACK_API_URL / AWS_ENDPOINT_URL_* point at).
"""
