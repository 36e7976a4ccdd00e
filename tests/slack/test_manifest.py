"""manifest.yml declares exactly what the app registers, with the minimal scopes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.app import (
    ASSISTANT_EVENTS,
    COMMAND,
    EVENTS,
    HOME_EVENTS,
    INSTALL_EVENTS,
    SHORTCUT_EDIT_FORK,
)
from adapters.slack.workspaces import BOT_SCOPES
from bot.starters import DEFAULT_PROMPTS
from fakes.slack_harness import SlackHarness

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"
SCOPES = {
    "app_mentions:read",
    "assistant:write",  # setStatus, setTitle and setSuggestedPrompts in assistant threads
    "chat:write",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "im:write",
    "users:read",
    "commands",
    "files:read",  # files people share with Haven, read as model input (adapters.slack.files)
}


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    return data


def test_manifest_basics(manifest: dict[str, Any]) -> None:
    assert manifest["display_information"]["name"] == "Haven"
    assert manifest["features"]["bot_user"]["display_name"] == "Haven"
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == SCOPES
    assert len(manifest["oauth_config"]["scopes"]["bot"]) == len(SCOPES)
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True  # people can DM Haven
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True  # listeners.home publishes it


def test_manifest_matches_the_registered_handlers(manifest: dict[str, Any]) -> None:
    commands = {c["command"] for c in manifest["features"]["slash_commands"]}
    shortcuts = {(s["callback_id"], s["type"]) for s in manifest["features"]["shortcuts"]}
    events = {e.split(".", 1)[0] for e in manifest["settings"]["event_subscriptions"]["bot_events"]}
    assert commands == {COMMAND}
    assert shortcuts == {(SHORTCUT_EDIT_FORK, "message")}
    assert events == {*EVENTS, *HOME_EVENTS, *ASSISTANT_EVENTS, *INSTALL_EVENTS}
    # A message listener hears what its scopes allow: public, private, DM and group DM channels.
    message_events = {e for e in manifest["settings"]["event_subscriptions"]["bot_events"] if "." in e}
    assert message_events == {"message.channels", "message.groups", "message.im", "message.mpim"}


def test_an_oauth_install_asks_for_the_manifests_scopes(manifest: dict[str, Any]) -> None:
    # Installs into many workspaces (adapters.slack.workspaces) request these; the manifest grants them.
    assert list(BOT_SCOPES) == sorted(manifest["oauth_config"]["scopes"]["bot"])


def test_manifest_declares_the_assistant_view(manifest: dict[str, Any]) -> None:
    view = manifest["features"]["assistant_view"]
    assert view["assistant_description"].strip()
    # The manifest's prompts are the settings' default, which Haven sets when a thread starts.
    prompts = view["suggested_prompts"]
    assert [(p["title"], p["message"]) for p in prompts] == [(p, p) for p in DEFAULT_PROMPTS]
    assert len(prompts) <= 4  # Slack's limit


async def test_every_declared_entry_reaches_a_listener_and_nothing_else_does(
    lite: SlackHarness, manifest: dict[str, Any]
) -> None:
    """Bolt answers 404 for a request no listener matched: drive each manifest entry through the app."""
    for event in manifest["settings"]["event_subscriptions"]["bot_events"]:
        kind = event.split(".", 1)[0]
        if kind.startswith("assistant_thread_"):
            payload = lite.assistant_event(kind, thread_ts=lite.ts())
        else:
            payload = lite.message("hello", ts=lite.ts(), kind=kind)
        resp = await lite.event(payload)
        assert resp.status == 200, event
    for command in manifest["features"]["slash_commands"]:
        assert command["command"] == "/haven"
        assert (await lite.command("help")).status == 200
    for shortcut in manifest["features"]["shortcuts"]:
        resp = await _shortcut(lite, shortcut["callback_id"])
        assert resp.status == 200, shortcut

    assert (await _shortcut(lite, "some_other_callback")).status == 404
    unknown_event = await lite.event(
        {"type": "reaction_added", "user": "U1", "reaction": "x", "event_ts": "1.1"}
    )
    assert unknown_event.status == 404


async def _shortcut(lite: SlackHarness, callback_id: str) -> Any:
    return await lite.interact(
        {
            "type": "message_action",
            "callback_id": callback_id,
            "trigger_id": f"t.{time.time_ns()}",
            "team": {"id": lite.slack.team_id},
            "user": {"id": "UALICE001", "team_id": lite.slack.team_id},
            "channel": {"id": "CGENERAL01"},
            "message": {"type": "message", "user": "UALICE001", "ts": lite.ts(), "text": "x"},
            "response_url": lite.slack.response_url(),
        }
    )
