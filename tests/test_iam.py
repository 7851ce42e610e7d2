"""deploy/: the roles trust only the bot's role and require the presser's SourceIdentity; resources are scoped;
the plain JSON policies say what the templates say; every remediation action's permissions are granted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bot.aws.remediation  # noqa: F401  (its import registers every fix action)
from bot.aws.fix_action import ACTIONS

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"


def _template(name: str) -> dict[str, Any]:
    # Imported here, not at the top: cfnlint brings sympy (~1 s of CPU), which every pytest-xdist worker
    # would pay at collection even when it runs none of these tests.
    from cfnlint.decode import decode

    template, problems = decode(str(DEPLOY / name))
    assert not problems and template is not None, problems
    # Plain data, with the partition as in the commercial regions (what the JSON files say).
    text = json.dumps(template).replace("${AWS::Partition}", "aws")
    return dict(json.loads(text))


def _plain(value: Any) -> Any:
    """{"Fn::Sub": "arn:aws:s3:::*"} → "arn:aws:s3:::*" (the JSON files carry no intrinsic functions)."""
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return value["Fn::Sub"]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _policy(role: dict[str, Any]) -> list[dict[str, Any]]:
    (policy,) = role["Properties"]["Policies"]
    return list(_plain(policy["PolicyDocument"]["Statement"]))


def _json(name: str) -> list[dict[str, Any]]:
    return list(json.loads((DEPLOY / name).read_text())["Statement"])


def test_roles_trust_the_bots_own_role_never_its_whole_account() -> None:
    roles = _template("roles.cfn.yaml")["Resources"]
    for name in ("ReadOnlyRole", "RemediationRole"):
        (statement,) = roles[name]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Principal"] == {"AWS": {"Ref": "BotRoleArn"}}, name
        assert statement["Condition"]["StringEquals"] == {"sts:ExternalId": {"Ref": "ExternalId"}}
    for name in ("roles.cfn.yaml", "remediation-trust-policy.json"):
        assert ":root" not in (DEPLOY / name).read_text(), name


def test_the_remediation_role_requires_the_presser_as_source_identity() -> None:
    trust = _template("roles.cfn.yaml")["Resources"]["RemediationRole"]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert set(statement["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}
    assert statement["Condition"]["Null"] == {"sts:SourceIdentity": "false"}
    (plain,) = _json("remediation-trust-policy.json")
    assert plain["Action"] == statement["Action"] and plain["Condition"]["Null"] == statement["Condition"]["Null"]
    bot = _template("bot-identity.cfn.yaml")["Resources"]["BotPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assume = next(s for s in bot if s.get("Sid") == "AssumeWatchedAccountRoles")
    assert set(assume["Action"]) == {"sts:AssumeRole", "sts:SetSourceIdentity"}


def test_bucket_actions_are_scoped_to_bucket_arns_and_json_matches_the_template() -> None:
    roles = _template("roles.cfn.yaml")["Resources"]
    read, fix = _policy(roles["ReadOnlyRole"]), _policy(roles["RemediationRole"])
    assert read == _json("readonly-policy.json")
    assert fix == _json("remediation-policy.json")
    for statement in read + fix:
        actions = [statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"]
        if any("Bucket" in a or "Object" in a for a in actions if a != "s3:ListAllMyBuckets"):
            assert statement["Resource"] != "*", statement["Sid"]
    granted = {a for s in fix for a in s["Action"]}
    assert len(ACTIONS) == 3
    for action in ACTIONS.values():
        assert set(action.permissions) <= granted, action.name


def test_kms_decrypt_for_an_encrypted_trail_is_an_optional_parameter() -> None:
    template = _template("bot-identity.cfn.yaml")
    assert template["Parameters"]["TrailKmsKeyArn"]["Default"] == ""
    statements = template["Resources"]["BotPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    kms = next(s for s in statements if isinstance(s, dict) and "Fn::If" in s and s["Fn::If"][0] == "HasTrailKmsKey")
    decrypt = kms["Fn::If"][1]
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == {"Ref": "TrailKmsKeyArn"}
    assert kms["Fn::If"][2] == {"Ref": "AWS::NoValue"}
    plain = next(s for s in _json("bot-identity-policy.json") if s["Sid"] == "DecryptTrail")
    assert plain["Condition"] == decrypt["Condition"]
