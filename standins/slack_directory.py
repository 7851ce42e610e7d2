"""The Slack stand-in's directory and files: who the bot is, users and their emails, user groups,
channels, DM conversations and file uploads (the parts of the Web API that post nothing).

`directory_answer` is called by standins.slack for the methods it does not answer itself.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

Answer = tuple[dict[str, Any], dict[str, str]]


class Directory(Protocol):
    """What these answers read from the stand-in (standins.slack.SlackStandin)."""

    scopes: str
    users: dict[str, dict[str, Any]]
    usergroups: dict[str, list[str]]
    channels: dict[str, dict[str, Any]]
    emails: dict[str, str]
    bots: set[str]
    port: int

    def next_id(self) -> int: ...


def directory_answer(standin: Directory, method: str, p: dict[str, Any]) -> Answer | None:
    """The answer to a directory or file method; None for a method this module does not know."""
    if method == "auth.test":
        return (
            {
                "ok": True,
                "url": "https://example.slack.com/",
                "team": "Example",
                "user": "bucketwatch",
                "team_id": "T0TEST",
                "user_id": "U0BOT",
                "bot_id": "B0BOT",
            },
            {"x-oauth-scopes": standin.scopes},
        )
    if method == "users.info":
        uid = str(p.get("user"))
        user = standin.users.get(
            uid,
            {
                "id": uid,
                "name": uid.lower(),
                "real_name": uid,
                "tz": "UTC",
                "profile": {"display_name": uid.lower(), "real_name": uid},
            },
        )
        return {"ok": True, "user": user}, {}
    if method == "users.lookupByEmail":
        email = str(p.get("email") or "").lower()
        match = [u for e, u in standin.emails.items() if e.lower() == email]
        if not match:
            return {"ok": False, "error": "users_not_found"}, {}
        uid = match[0]
        person = {"id": uid, "name": email.split("@")[0], "is_bot": uid in standin.bots, "deleted": False,
                  "profile": {"email": email}}
        return {"ok": True, "user": {**person, **standin.users.get(uid, {})}}, {}
    if method == "conversations.open":
        uid = str(p.get("users") or "").split(",")[0]
        if uid in standin.bots:
            return {"ok": False, "error": "cannot_dm_bot"}, {}
        if not uid:
            return {"ok": False, "error": "users_list_not_supplied"}, {}
        return {"ok": True, "channel": {"id": f"D{uid}"}}, {}
    if method == "usergroups.users.list":
        group = str(p.get("usergroup"))
        if group not in standin.usergroups:
            return {"ok": False, "error": "no_such_subteam"}, {}
        return {"ok": True, "users": standin.usergroups[group]}, {}
    if method == "conversations.info":
        cid = str(p.get("channel"))
        channel = standin.channels.get(
            cid, {"id": cid, "name": "alerts", "is_channel": True, "is_member": True}
        )
        return {"ok": True, "channel": channel}, {}
    if method == "files.getUploadURLExternal":
        fid = f"F{standin.next_id():08d}"
        return {
            "ok": True,
            "upload_url": f"http://127.0.0.1:{standin.port}/upload/{fid}",
            "file_id": fid,
        }, {}
    if method == "files.completeUploadExternal":
        files = p.get("files")
        files = json.loads(files) if isinstance(files, str) else files or []
        return {"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]}, {}
    return None
