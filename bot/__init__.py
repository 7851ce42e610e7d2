"""bucketwatch: tells a Slack channel when an S3 bucket or account is opened to the public."""

__version__ = "0.1.0"
