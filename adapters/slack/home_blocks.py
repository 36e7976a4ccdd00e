"""Haven's App Home tab and its "forget me" confirmation, drawn from ``bot.home.HomeContent`` with
slack_sdk's Block Kit models, so that Slack's limits (100 blocks, 3,000 characters a section, 150 a
header) are checked when the view is built, not discovered as ``invalid_blocks`` in production.

What the Home holds is decided in ``bot.home``; here it is only drawn.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from adapters.slack import blocks as bk
from adapters.slack.translate import escape, link_or_channel
from bot.home import AdminOverview, HomeContent
from bot.notices import reason_phrase
from bot.types import ThreadRef, UserConversation

ACTION_HOME_NEW = "haven_home_new"
ACTION_FORGET = "haven_home_forget"
ACTION_EDIT_RESOURCES = "haven_home_resources"
VIEW_FORGET = "haven_forget"

_SECTION_CHARS = 3000
# How much of a person's latest message (already at most 200 characters) or a report's comment shows.
_QUOTE_CHARS = 200

START = (
    "Mention *@Haven* in a channel (it answers in a thread under your message), send it a direct "
    "message in the *Messages* tab, or use `/haven new`. Reply in the thread to continue; no mention "
    "needed. `/haven help` lists the rest."
)
FORGET = (
    "*Forget me*\nRemove the text of every message you wrote to Haven in this workspace, and the "
    "comments of your reports. Conversations stay for the others in them, with a note where your "
    "words were. Other workspaces are not affected."
)
FORGET_CONFIRM = (
    "Haven removes the text of *every message you wrote in this workspace's Haven conversations* "
    "and the comments of your reports. This cannot be undone. Your conversations can continue, "
    "but Haven will no longer know what you said in them."
)

Links = Mapping[ThreadRef, str | None]


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=text, emoji=False))


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=_md(_clip(text, _SECTION_CHARS)))


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lines(lines: Sequence[str]) -> SectionBlock:
    """A list in one section; lines that would not fit are left out, and said to be."""
    shown: list[str] = []
    used = 0
    for n, line in enumerate(lines):
        more = f"\n…and {len(lines) - n} more"
        if used + len(line) + 1 + len(more) > _SECTION_CHARS:
            shown.append(more.strip())
            break
        shown.append(line)
        used += len(line) + 1
    return _section("\n".join(shown))


def when(at: datetime | None) -> str:
    """A time in each reader's own time zone (Slack's date formatting), with a UTC fallback."""
    if at is None:
        return "?"
    fallback = at.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{fallback}>"


def home_view(content: HomeContent, links: Links, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The Home tab for ``content.user_id``; ``links`` holds each listed thread's link."""
    blocks: list[Block] = [
        _header("Haven"),
        SectionBlock(
            text=_md(START),
            accessory=ButtonElement(
                text="New conversation", action_id=ACTION_HOME_NEW, value="new", style="primary"
            ),
        ),
    ]
    if content.forgotten is not None:
        removed = content.forgotten
        blocks.append(
            ContextBlock(
                elements=[
                    _md(
                        f":white_check_mark: Done: the text of {removed.get('messages', 0)} of your "
                        f"messages and {removed.get('comments', 0)} report comment(s) in this workspace "
                        "was removed."
                    )
                ]
            )
        )
    blocks += [DividerBlock(), _header("Your recent conversations")]
    if content.conversations:
        blocks += [_conversation(c, links.get(c.thread)) for c in content.conversations]
    else:
        blocks.append(_section("_None yet in this workspace._"))
    blocks += [
        DividerBlock(),
        SectionBlock(
            text=_md(FORGET),
            accessory=ButtonElement(
                text="Forget me", action_id=ACTION_FORGET, value="forget", style="danger"
            ),
        ),
    ]
    if content.admin is not None:
        blocks += _admin(content.admin, links)
    return View(
        type="home",
        callback_id="haven_home",
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=blocks,
    ).to_dict()


def _conversation(c: UserConversation, link: str | None) -> SectionBlock:
    state = f"ended {reason_phrase(c.end_reason)}" if c.ended else "open"
    head = f"{link_or_channel(link, c.thread)} · {state} · you last wrote {when(c.last_active)}"
    if c.latest_text is None:
        said = "_your text was removed_"
    else:
        said = ">" + escape(_clip(" ".join(c.latest_text.split()), _QUOTE_CHARS))
    return _section(f"{head}\n{said}")


def _admin(overview: AdminOverview, links: Links) -> list[Block]:
    kind = "your workspace's own text" if overview.crisis_custom else "Haven's built-in default"
    locales = ", ".join(overview.crisis_locales) or "none"
    settings = [f"• *{escape(name)}*: {escape(value)}" for name, value in overview.settings]
    endings = [
        f"• {when(e.ended_at)} — ended {reason_phrase(e.reason)}, {e.warnings} warning(s)"
        f"{' (a fork)' if e.forked_from else ''} — {link_or_channel(links.get(e.thread), e.thread)}"
        for e in overview.endings
    ]
    reports = [
        f"• {when(r.created_at)} — <@{r.user_id}> on {link_or_channel(links.get(r.thread), r.thread)}"
        + (f": “{escape(_clip(r.comment, _QUOTE_CHARS))}”" if r.comment else "")
        for r in overview.feedback
    ]
    u = overview.usage
    usage = (
        f"*{int(u['calls'])}* model calls since {when(overview.usage_since)}: "
        f"{int(u['input_tokens']):,} input tokens, {int(u['cache_read_input_tokens']):,} read from the "
        f"prompt cache ({u['cache_hit_ratio']:.0%} of prompt tokens), "
        f"{int(u['output_tokens']):,} output tokens."
    )
    return [
        DividerBlock(),
        _header("For admins: crisis resources"),
        ContextBlock(
            elements=[_md(f"What people at risk are shown now: {kind}. Locale variants: {escape(locales)}.")]
        ),
        # Exactly the card people see (``blocks.crisis_blocks``), as models again so the view checks it.
        *_parsed(bk.crisis_blocks(overview.crisis)),
        ActionsBlock(
            elements=[
                ButtonElement(text="Edit crisis resources", action_id=ACTION_EDIT_RESOURCES, value="edit")
            ]
        ),
        DividerBlock(),
        _header("Settings"),
        _lines(settings),
        ContextBlock(elements=[_md("Change them with `/haven settings <name> <value>`.")]),
        _header("Recent endings"),
        _lines(endings) if endings else _section("_No endings yet._"),
        _header("Endings reported as mistakes"),
        _lines(reports) if reports else _section("_No reports._"),
        _header("Usage this week"),
        _section(usage),
    ]


def _parsed(blocks: bk.Blocks) -> list[Block]:
    return [b for d in blocks if (b := Block.parse(d)) is not None]


def forget_modal(metadata: Mapping[str, Any]) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=VIEW_FORGET,
        title="Forget me",
        submit="Forget me",
        close="Cancel",
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=[SectionBlock(text=_md(FORGET_CONFIRM))],
    ).to_dict()
