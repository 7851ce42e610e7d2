"""The settings table: defaults, parsing, .env never overriding the environment, no secrets shown;
every problem a running bot would trip on, found before it starts."""

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from bot.core.config import SETTINGS, ConfigError, Settings, load_settings, parse_accounts, settings_help
from bot.core.problems import all_problems, checked_settings, settings_problems


def test_every_setting_has_help_and_a_default_except_credentials() -> None:
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        if not setting.name.startswith("SLACK_") or setting.name == "SLACK_API_URL":
            optional = {
                "ALERT_CHANNEL", "RESPONDERS", "AWS_ACCOUNTS", "REMEDIATION_ROLE", "TRAIL_BUCKETS", "TRAIL_QUEUE_URLS",
                "LITESTREAM_REPLICA_URL", "FINDINGS_QUEUE_URL", "EVENT_QUEUE_URLS", "ROUTES", "PAGERDUTY_ROUTING_KEY",
                "WEBHOOK_URL", "WEBHOOK_SECRET",
                "ACTOR_EMAIL_DOMAIN", "ACTOR_MAP", "UNATTENDED_ROLES",
            }
            assert setting.default or setting.name in optional
    assert all(s.name in settings_help() for s in SETTINGS)


def test_settings_takes_every_default_from_the_table() -> None:
    built, read = Settings(), load_settings({})
    also = {attr for s in SETTINGS for attr, _ in s.also}  # fields read from the same text (org:, all)
    assert {f.name for f in dataclasses.fields(Settings)} == {s.field_name for s in SETTINGS} | also
    for setting in SETTINGS:
        assert getattr(built, setting.field_name) == getattr(read, setting.field_name) == setting.read(None)
        for attr, value in setting.read_also(None).items():
            assert getattr(built, attr) == getattr(read, attr) == value


def test_defaults() -> None:
    settings = load_settings({})
    # Under the home folder (conftest gives each test its own), whatever the working directory.
    assert settings.db_path == Path(os.environ["HOME"]) / ".local/share/bucketwatch/bucketwatch.db"
    assert settings.db_path.is_absolute() and load_settings({"DB_PATH": "~/x.db"}).db_path.is_absolute()
    assert settings.slash_command == "/bucketwatch"
    assert settings.poll_seconds == 60 and not settings.dry_run and not settings.socket_mode


def test_accounts_bare_id_and_role_with_external_id() -> None:
    accounts = parse_accounts(
        "111122223333, 444455556666:arn:aws:iam::444455556666:role/bucketwatch-readonly:ext-id:with-colon"
    )
    assert accounts[0].role_arn is None
    assert accounts[1].role_arn == "arn:aws:iam::444455556666:role/bucketwatch-readonly"
    assert accounts[1].external_id == "ext-id:with-colon"


@pytest.mark.parametrize(
    "env, message",
    [
        ({"AWS_ACCOUNTS": "12345"}, "12-digit"),
        ({"LITESTREAM_REPLICA_URL": "my-bucket/bucketwatch"}, "s3://bucket/path"),
        ({"AWS_ACCOUNTS": "111122223333:role/x"}, "role ARN"),
        ({"DRY_RUN": "maybe"}, "true or false"),
        ({"POLL_SECONDS": "soon"}, "whole number"),
        ({"LOOKBACK_MINUTES": "5"}, "at least 15"),
        ({"DIGEST_TIME": "25:00"}, "HH:MM"),
        ({"DIGEST_TZ": "Mars/Olympus"}, "time zone"),
        ({"PORT": "70000"}, "at most 65535"),
        ({"LOG_LEVEL": "chatty"}, "DEBUG, INFO"),
        ({"LOG_FORMAT": "xml"}, "text, json"),
    ],
)
def test_bad_values_get_a_clear_message(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(env)


def test_dotenv_fills_gaps_but_never_overrides(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ALERT_CHANNEL=C_FROM_FILE\nDRY_RUN=true\nUNRELATED=1\n")
    settings = load_settings({"ALERT_CHANNEL": "C_FROM_ENV"}, dotenv=dotenv)
    assert settings.alert_channel == "C_FROM_ENV"
    assert settings.dry_run is True


def test_redacted_shows_no_secret() -> None:
    settings = load_settings({"SLACK_BOT_TOKEN": "xoxb-secret-value", "SLACK_SIGNING_SECRET": "shh"})
    shown = settings.redacted()
    assert shown["SLACK_BOT_TOKEN"] == "set" and shown["SLACK_APP_TOKEN"] == "unset"
    assert "xoxb-secret-value" not in repr(shown) and "shh" not in repr(shown)


def test_every_unreadable_value_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({"POLL_SECONDS": "soon", "DRY_RUN": "maybe", "DIGEST_TIME": "noon"})
    assert [p.split(":")[0] for p in caught.value.problems] == ["POLL_SECONDS", "DIGEST_TIME", "DRY_RUN"]


GOOD = {
    "SLACK_BOT_TOKEN": "xoxb-1-good",
    "SLACK_SIGNING_SECRET": "0123456789abcdef0123456789abcdef",
    "ALERT_CHANNEL": "C0ALERTS",
    "RESPONDERS": "U0ALICE,W0BOB,S0SECOPS",
    "AWS_ACCOUNTS": "111122223333,444455556666:arn:aws:iam::444455556666:role/bucketwatch-readonly:ext",
    "AWS_REGIONS": "us-east-1,eu-west-3,us-gov-west-1",
    "REMEDIATION_ROLE": "bucketwatch-remediation",
    "TRAIL_BUCKETS": "s3://org-trail/prefix,s3://other.trail",
    "TRAIL_QUEUE_URLS": "https://sqs.eu-west-1.amazonaws.com/111122223333/trail-files",
}


def test_a_good_configuration_has_no_problem(tmp_path: Path) -> None:
    settings = checked_settings({**GOOD, "DB_PATH": str(tmp_path / "deep" / "bw.db")})
    assert settings.alert_channel == "C0ALERTS"
    assert checked_settings({**GOOD, "SLACK_SIGNING_SECRET": "", "SLACK_APP_TOKEN": "xapp-1-A0-x"}).socket_mode
    assert not (tmp_path / "deep").exists()  # checking creates nothing


def test_the_whole_organisation_and_every_enabled_region_are_no_problem(tmp_path: Path) -> None:
    env = {**GOOD, "AWS_ACCOUNTS": "org:bucketwatch-readonly:ext,111122223333", "AWS_REGIONS": "all",
           "EVENT_QUEUE_URLS": "https://sqs.us-east-1.amazonaws.com/111122223333/s3-api-calls",
           "SAFETY_NET_FACTOR": "3", "DB_PATH": str(tmp_path / "bw.db")}
    settings, problems = all_problems(env)
    assert problems == []
    assert settings.organization is not None and settings.all_regions and settings.safety_net_factor == 3
    assert checked_settings(env).queue_urls == (env["EVENT_QUEUE_URLS"], GOOD["TRAIL_QUEUE_URLS"])


@pytest.mark.parametrize(
    "env, line",
    [
        ({"SLACK_BOT_TOKEN": "xoxp-123-user"}, "SLACK_BOT_TOKEN: must start with xoxb- (this is a user token"),
        ({"SLACK_BOT_TOKEN": "not-a-token"}, "SLACK_BOT_TOKEN: must start with xoxb- (this does not look like"),
        ({"SLACK_BOT_TOKEN": ""}, "SLACK_BOT_TOKEN: not set"),
        ({"SLACK_APP_TOKEN": "garbage"}, "SLACK_APP_TOKEN: must start with xapp-"),
        ({"SLACK_APP_TOKEN": "xoxb-1-swapped"}, "SLACK_APP_TOKEN: must start with xapp- (this is a bot token"),
        ({"SLACK_SIGNING_SECRET": ""}, "SLACK_SIGNING_SECRET: not set; required in HTTP mode"),
        ({"SLACK_API_URL": "slack.com/api"}, "SLACK_API_URL: 'slack.com/api/' is not an http(s) URL"),
        ({"ALERT_CHANNEL": "#security"}, "ALERT_CHANNEL: '#security' is not a channel id (C… or G…): that is a name"),
        ({"ALERT_CHANNEL": "U0ALICE"}, "ALERT_CHANNEL: 'U0ALICE' is not a channel id"),
        ({"ALERT_CHANNEL": ""}, "ALERT_CHANNEL: not set"),
        ({"SLASH_COMMAND": "Bucket Watch"}, "SLASH_COMMAND: '/Bucket Watch' is not a slash command name"),
        ({"RESPONDERS": "U0ALICE,alice@example.com"}, "RESPONDERS: 'alice@example.com' not a Slack user id"),
        ({"AWS_ACCOUNTS": "111122223333:arn:aws:iam::role/x"}, "AWS_ACCOUNTS: 'arn:aws:iam::role/x' is not a role ARN"),
        ({"AWS_REGIONS": "us-east-1,Ireland"}, "AWS_REGIONS: 'Ireland' not a region name"),
        ({"REMEDIATION_ROLE": "role with spaces"}, "REMEDIATION_ROLE: 'role with spaces' is neither"),
        ({"TRAIL_BUCKETS": "org-trail/prefix"}, "TRAIL_BUCKETS: 'org-trail/prefix' is not s3://bucket/prefix"),
        ({"TRAIL_QUEUE_URLS": "trail-files"}, "TRAIL_QUEUE_URLS: 'trail-files' is not a queue URL"),
        ({"FINDINGS_QUEUE_URL": "trail-findings"}, "FINDINGS_QUEUE_URL: 'trail-findings' is not a queue URL"),
        ({"EVENT_QUEUE_URLS": "s3-api-calls"}, "EVENT_QUEUE_URLS: 's3-api-calls' is not a queue URL"),
        ({"AWS_ACCOUNTS": "org:arn:aws:iam::1:role/x"}, "AWS_ACCOUNTS: 'org:arn:aws:iam::1:role/x': after org:"),
        ({"AWS_REGIONS": "all,eu-west-1"}, "AWS_REGIONS: all stands alone"),
        ({"SAFETY_NET_FACTOR": "0"}, "SAFETY_NET_FACTOR: must be at least 1"),
        ({"POLL_SECONDS": "1"}, "POLL_SECONDS: must be at least 5, got 1"),
        # Accepted before, then ignored: nothing was polled, and fixes assumed another account's role.
        ({"LOOKUP_POLLING": "false", "TRAIL_BUCKETS": "", "TRAIL_QUEUE_URLS": ""},
         "LOOKUP_POLLING: false, and no TRAIL_BUCKETS, TRAIL_QUEUE_URLS, EVENT_QUEUE_URLS or FINDINGS_QUEUE_URL"),
        ({"AWS_ACCOUNTS": "111122223333:arn:aws:iam::444455556666:role/r"},
         "AWS_ACCOUNTS: 111122223333 is to be read through a role of account 444455556666; the role must be in"),
        ({"REMEDIATION_ROLE": "arn:aws:iam::111122223333:role/bucketwatch-remediation"},
         "REMEDIATION_ROLE: an ARN names a role of account 111122223333 only, and fixes in 444455556666 would"),
        ({"AWS_ACCOUNTS": "org:bucketwatch-readonly", "REMEDIATION_ROLE": "arn:aws:iam::111122223333:role/fix"},
         "REMEDIATION_ROLE: an ARN names a role of account 111122223333 only, and fixes in the organisation's"),
    ],
)
def test_each_problem_is_one_clear_line(env: dict[str, str], line: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        checked_settings({**GOOD, "DB_PATH": str(tmp_path / "bw.db"), **env})
    assert len(caught.value.problems) == 1, caught.value.problems
    assert caught.value.problems[0].startswith(line)


def test_every_problem_at_once_in_table_order_and_no_secret_shown(tmp_path: Path) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxp-123-secret-user-token", "SLACK_APP_TOKEN": "secret-garbage-app-token",
           "ALERT_CHANNEL": "security", "POLL_SECONDS": "often", "AWS_REGIONS": "moon-1",
           "DB_PATH": str(tmp_path / "x")}
    settings, problems = all_problems(env)
    names = [p.split(":")[0] for p in problems]
    assert names == ["SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "ALERT_CHANNEL", "AWS_REGIONS", "POLL_SECONDS"]
    assert settings.poll_seconds == 60  # an unreadable value keeps its default, so the other checks still run
    assert not any("secret" in p for p in problems)


def test_a_remediation_role_arn_of_the_one_account_watched_is_fine(tmp_path: Path) -> None:
    env = {**GOOD, "DB_PATH": str(tmp_path / "bw.db"), "AWS_ACCOUNTS": "111122223333",
           "REMEDIATION_ROLE": "arn:aws:iam::111122223333:role/bucketwatch-remediation"}
    assert checked_settings(env).remediation_role.endswith(":role/bucketwatch-remediation")


def test_db_path_that_cannot_be_written_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    assert settings_problems(Settings(**_good(), db_path=tmp_path / "a-file" / "bw.db")) == [
        f"DB_PATH: cannot create {tmp_path / 'a-file' / 'bw.db'}: {tmp_path / 'a-file'} is not a folder"
    ]
    assert settings_problems(Settings(**_good(), db_path=tmp_path)) == [
        f"DB_PATH: {tmp_path} is a folder; give a file path"
    ]
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        assert "is not writable" in settings_problems(Settings(**_good(), db_path=locked / "bw.db"))[0]


def _good() -> dict[str, object]:
    return {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s", "alert_channel": "C0ALERTS"}
