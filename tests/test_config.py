"""The settings table: defaults, parsing, .env never overriding the environment, no secrets shown."""

from pathlib import Path

import pytest

from bot.core.config import SETTINGS, ConfigError, load_settings, parse_accounts, settings_help


def test_every_setting_has_help_and_a_default_except_credentials() -> None:
    for setting in SETTINGS:
        assert setting.help.strip(), setting.name
        if not setting.name.startswith("SLACK_") or setting.name == "SLACK_API_URL":
            optional = {
                "ALERT_CHANNEL", "RESPONDERS", "AWS_ACCOUNTS", "REMEDIATION_ROLE", "TRAIL_BUCKETS", "TRAIL_QUEUE_URLS",
                "EVENT_QUEUE_URLS",
            }
            assert setting.default or setting.name in optional
    assert all(s.name in settings_help() for s in SETTINGS)


def test_defaults() -> None:
    settings = load_settings({})
    assert settings.db_path == Path("data/bucketwatch.db")
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
        ({"AWS_ACCOUNTS": "111122223333:role/x"}, "role ARN"),
        ({"DRY_RUN": "maybe"}, "true or false"),
        ({"POLL_SECONDS": "soon"}, "whole number"),
        ({"LOOKBACK_MINUTES": "5"}, "at least 15"),
        ({"DIGEST_TIME": "25:00"}, "HH:MM"),
        ({"DIGEST_TZ": "Mars/Olympus"}, "time zone"),
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
