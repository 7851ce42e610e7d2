"""`manifest` and `doctor`: the manifest matches the configured command and mode; doctor checks for real."""

from __future__ import annotations

import argparse
import io
import json
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import slack_sdk.http_retry.handler
from botocore.awsrequest import AWSResponse
from botocore.stub import ANY, Stubber
from moto import mock_aws
from slack_sdk import WebClient

from bot.aws.clients import AwsClients, _default_client
from bot.cli.doctor import run_doctor
from bot.cli.manifest import cli_manifest
from bot.core.config import Settings, load_settings
from bot.slack.manifest import BOT_SCOPES, REQUEST_URL, build_manifest
from tests.clocks import recorded_sleeps
from tests.ports import unused_port
from tests.slack_requests import ACCOUNT, make_settings
from tests.slack_standin import SlackStandin, slack_standin

# pytest fixtures used by parameter name in this module
FIXTURES = (slack_standin,)

LOOKUP = {
    "LookupAttributes": [{"AttributeKey": "EventSource", "AttributeValue": "s3.amazonaws.com"}],
    "StartTime": ANY,
    "EndTime": ANY,
    "MaxResults": 1,
}


def test_manifest_http_mode(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLASH_COMMAND", "watchbucket")
    assert cli_manifest(argparse.Namespace()) == 0
    manifest = json.loads(capsys.readouterr().out)
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/watchbucket" and command["url"] == REQUEST_URL
    assert manifest["settings"]["socket_mode_enabled"] is False
    assert manifest["settings"]["interactivity"] == {"is_enabled": True, "request_url": REQUEST_URL}
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES) >= {"chat:write", "commands"}


def test_manifest_socket_mode_needs_no_urls() -> None:
    manifest = build_manifest(load_settings({"SLACK_APP_TOKEN": "xapp-1"}))
    assert manifest["settings"]["socket_mode_enabled"] is True
    assert "url" not in manifest["features"]["slash_commands"][0]
    assert "request_url" not in manifest["settings"]["interactivity"]
    assert "request_url" not in manifest["settings"]["event_subscriptions"]


ENABLED_REGIONS = {
    "Regions": [
        {"RegionName": name, "OptInStatus": "opt-in-not-required", "Endpoint": f"ec2.{name}.amazonaws.com"}
        for name in ("eu-west-1", "us-east-1", "us-west-2")
    ]
}


def regions_answered(session: Any, service: str, region: str, config: Any) -> Any:
    """The bot's own client set-up, with DescribeRegions answered at once (moto's EC2 takes seconds to start)."""
    client = _default_client(session, service, region, config)
    if service == "ec2":

        def answer(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
            return AWSResponse("https://ec2.amazonaws.com", 200, {}, None), ENABLED_REGIONS

        client.meta.events.register("before-call.ec2.DescribeRegions", answer)
    return client


def _doctor(
    settings: Settings, standin: SlackStandin, cloudtrail: Any = None, account_bpa: str | None = None
) -> tuple[int, str]:
    """Run doctor with LookupEvents stubbed (moto lacks it), and the account BPA read refused if asked."""
    slack = WebClient(token=settings.slack_bot_token, base_url=standin.url)
    aws = AwsClients(settings, client_factory=regions_answered)
    client = aws.client("cloudtrail", ACCOUNT, "us-east-1")
    out = io.StringIO()
    with ExitStack() as stack:
        stub = stack.enter_context(Stubber(client))
        if cloudtrail is None:
            stub.add_response("lookup_events", {"Events": []}, LOOKUP)
        else:
            stub.add_client_error("lookup_events", cloudtrail, "not allowed", 400, expected_params=LOOKUP)
        if account_bpa is not None:
            s3control = stack.enter_context(Stubber(aws.client("s3control", ACCOUNT, "us-east-1")))
            s3control.add_client_error("get_public_access_block", account_bpa, "no", 403, {"AccountId": ACCOUNT})
        code = run_doctor(settings, slack=slack, aws=aws, out=out)
    return code, out.getvalue()


def test_doctor_passes_and_prints_no_secret(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = make_settings(
        slack_standin, tmp_path, slack_bot_token="xoxb-very-secret-1", slack_signing_secret="shh-42"
    )
    with mock_aws():
        code, out = _doctor(settings, slack_standin)
    assert code == 0, out
    assert "✓ Slack token" in out and "✓ scope commands" in out and "✓ alert channel: #alerts" in out
    assert f"✓ AWS {ACCOUNT} identity: arn:aws:" in out and f"✓ AWS {ACCOUNT} us-east-1 CloudTrail" in out
    assert f"✓ AWS {ACCOUNT} account BPA read: readable (no configuration set)" in out
    assert "xoxb-very-secret-1" not in out and "shh-42" not in out and "SLACK_BOT_TOKEN = set" in out
    assert slack_standin.calls_to("auth.test")[0].token == "xoxb-very-secret-1"


def test_doctor_fails_on_a_missing_scope_and_denied_cloudtrail(slack_standin: SlackStandin, tmp_path: Path) -> None:
    slack_standin.scopes = "chat:write,channels:read"
    slack_standin.channels["C0ALERTS"] = {"id": "C0ALERTS", "name": "alerts", "is_member": False}
    settings = make_settings(slack_standin, tmp_path)
    with mock_aws():
        code, out = _doctor(settings, slack_standin, cloudtrail="AccessDeniedException")
    assert code == 1
    assert "✗ scope commands: missing" in out
    assert "✗ scope usergroups:read" in out and "(not essential" in out
    assert "✗ alert channel: #alerts (C0ALERTS): the bot is not a member" in out
    assert f"✗ AWS {ACCOUNT} us-east-1 CloudTrail: AccessDeniedException" in out
    assert "Traceback" not in out


def test_doctor_marks_a_denied_account_bpa_read_as_degrading(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = make_settings(slack_standin, tmp_path)
    with mock_aws():
        code, out = _doctor(settings, slack_standin, account_bpa="AccessDenied")
    assert code == 0, out  # the verdict degrades; the bot still posts and polls
    assert f"✗ AWS {ACCOUNT} account BPA read: AccessDenied: no (not essential" in out


def test_doctor_without_settings_says_what_is_missing(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = Settings(slack_api_url=slack_standin.url, db_path=tmp_path / "x.db")
    out = io.StringIO()
    code = run_doctor(settings, slack=WebClient(base_url=slack_standin.url), aws=AwsClients(settings), out=out)
    text = out.getvalue()
    assert code == 1
    assert "✗ SLACK_BOT_TOKEN: not set" in text and "✗ ALERT_CHANNEL: not set" in text and "✗ sources" in text
    assert slack_standin.calls == []


def test_doctor_names_the_host_it_could_not_reach(
    slack_standin: SlackStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    retried = recorded_sleeps(monkeypatch, slack_sdk.http_retry.handler)  # slack-sdk's back-off, not waited

    port = unused_port()  # a port nobody listens on
    url = f"http://127.0.0.1:{port}/api/"
    settings = replace(make_settings(slack_standin, tmp_path), slack_api_url=url)
    out = io.StringIO()
    with mock_aws():
        code = run_doctor(settings, slack=WebClient(token="xoxb-test", base_url=url), aws=AwsClients(settings),
                          out=out)
    text = out.getvalue()
    assert code == 1
    assert f"✗ Slack token: could not reach 127.0.0.1:{port}: Connection refused" in text
    assert "URLError" not in text and "Traceback" not in text
    assert retried  # the refused connection was tried again before the doctor said so


def test_doctor_warns_when_nobody_may_fix(slack_standin: SlackStandin, tmp_path: Path) -> None:
    settings = make_settings(slack_standin, tmp_path, responders=())
    with mock_aws():
        code, out = _doctor(settings, slack_standin)
    assert code == 0, out  # alerts still flow; only the buttons are refused
    assert ("✗ RESPONDERS: not set: nobody may press Re-enable Block Public Access, Undo or Mark as expected"
            " (not essential") in out
    with mock_aws():
        _, out = _doctor(make_settings(slack_standin, tmp_path), slack_standin)
    assert "✓ RESPONDERS: 1 user(s) or group(s) may fix, undo and allow" in out
