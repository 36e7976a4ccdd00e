"""The built-in crisis message is Markdown in the core and is drawn right on each platform: Slack gets
its mrkdwn (``*bold*``, ``•``), Discord its Markdown (``**bold**``); an admin's own text stays theirs."""

from __future__ import annotations

import re
from typing import Any

import discord

from adapters.discord import embeds
from adapters.discord.render import DiscordRenderer
from adapters.slack import blocks as bk
from adapters.slack.render import SlackRenderer
from bot.notices import DEFAULT_CRISIS_MESSAGE
from bot.presentation import CrisisResources
from bot.types import CrisisCard

DEFAULT = CrisisCard(DEFAULT_CRISIS_MESSAGE)
# Slack's bold: one star on each side, not two.
SLACK_BOLD = re.compile(r"(?<!\*)\*(?!\*)[^*\n]+(?<!\*)\*(?!\*)")


def test_the_default_is_markdown_in_the_core() -> None:
    assert "**988**" in DEFAULT_CRISIS_MESSAGE and "**116 123**" in DEFAULT_CRISIS_MESSAGE
    assert not SLACK_BOLD.search(DEFAULT_CRISIS_MESSAGE), "Slack-style *bold* would be italic on Discord"
    assert "•" not in DEFAULT_CRISIS_MESSAGE  # Markdown list items, drawn per platform


class RecordingSlackApi:
    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    async def post(self, channel: str, text: str, **kwargs: Any) -> None:
        self.posts.append({"channel": channel, "text": text, **kwargs})


async def test_slack_draws_the_default_in_mrkdwn() -> None:
    api = RecordingSlackApi()
    renderer = SlackRenderer(api, channel="C1", thread_ts="1.0")  # type: ignore[arg-type]
    await renderer.crisis_card(CrisisResources(DEFAULT))
    [post] = api.posts
    section_text = "\n".join(b["text"]["text"] for b in post["blocks"] if b["type"] == "section")
    for text in (section_text, post["text"]):
        assert "**" not in text
        assert "*988*" in text and "*116 123*" in text
        assert "• *US:* call or text *988*" in text
        assert "https://findahelpline.com" in text
    assert post["blocks"][0]["type"] == "header"


def test_slack_keeps_an_admins_own_markup() -> None:
    own = "*Call* the team line: 555-0100\n• _quietly_ ask a lead"
    assert bk.crisis_mrkdwn(own) == own
    # The Markdown forms that mean nothing in Slack's markup are converted.
    assert bk.crisis_mrkdwn("**Call** [the line](https://example.org/help)") == (
        "*Call* <https://example.org/help|the line>"
    )


async def test_discord_draws_the_default_in_markdown() -> None:
    sent: list[dict[str, Any]] = []

    async def send(target: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    renderer = DiscordRenderer(send, object(), object(), source="m1", alert=None)  # type: ignore[arg-type]
    await renderer.crisis_card(CrisisResources(DEFAULT))
    [message] = sent
    embed: discord.Embed = message["embed"]
    description = embed.description or ""
    assert "**988**" in description and "**US:**" in description
    assert not SLACK_BOLD.search(description)
    assert "• **US:** call or text **988**" in description
    assert "&amp;" not in description and "UK & Ireland" in description


def test_discord_keeps_an_admins_own_markdown() -> None:
    own = "**Call** the team line: 555-0100\n__quietly__ ask a lead"
    assert embeds.crisis_embed(CrisisCard(own)).description == own
