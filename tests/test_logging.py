"""LOG_LEVEL=DEBUG must not put credentials in the log: botocore logs STS responses and headers at DEBUG."""

import logging

import boto3
import pytest
from moto import mock_aws

from bot.cli.run import SECRET_BEARING_LOGGERS, configure_logging


@pytest.fixture
def restore_levels():
    saved = {name: logging.getLogger(name).level for name in ("", *SECRET_BEARING_LOGGERS)}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_debug_logging_keeps_assumed_role_credentials_out(
    restore_levels: None, caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("DEBUG")
    caplog.set_level(logging.DEBUG)
    with mock_aws():
        sts = boto3.client("sts", region_name="us-east-1")
        role = sts.assume_role(RoleArn="arn:aws:iam::123456789012:role/r", RoleSessionName="bucketwatch")
        credentials = role["Credentials"]
        client = boto3.client(
            "s3",
            region_name="us-east-1",
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        client.list_buckets()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logging.getLogger().level == logging.DEBUG  # the bot's own loggers do log at DEBUG
    for secret in (credentials["SecretAccessKey"], credentials["SessionToken"]):
        assert secret not in logged
