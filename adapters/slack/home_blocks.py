"""Haven's App Home tab and its "forget me" confirmation, drawn from ``bot.home.HomeContent`` with
slack_sdk's Block Kit models, so that Slack's limits (100 blocks, 3,000 characters a section, 150 a
header) are checked when the view is built, not discovered as ``invalid_blocks`` in production.

What the Home holds is decided in ``bot.home``; here it is only drawn. The part every person sees (start
a conversation, their recent conversations, "forget me" and its confirmation) is in their language
(``home.*`` in ``bot/locales``). The admin part stays English, as every admin text does (``bot.i18n``):
it speaks to the workspace's operators, not to the person in a conversation.
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
from bot.i18n import Strings, english
from bot.notices import reason_phrase
from bot.types import EndReason, ThreadRef, UserConversation

ACTION_HOME_NEW = "haven_home_new"
ACTION_FORGET = "haven_home_forget"
ACTION_EDIT_RESOURCES = "haven_home_resources"
VIEW_FORGET = "haven_forget"

_SECTION_CHARS = 3000
# How much of a person's latest message (already at most 200 characters) or a report's comment shows.
_QUOTE_CHARS = 200

# How a person's own conversation ended, after its link (``home.ended_*``).
_ENDED: dict[str, str] = {
    EndReason.USER_REQUEST.value: "home.ended_user_request",
    EndReason.ABUSE.value: "home.ended_abuse",
    EndReason.USER_COMMAND.value: "home.ended_user_command",
}

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


def home_view(
    content: HomeContent, links: Links, metadata: Mapping[str, Any], strings: Strings | None = None
) -> dict[str, Any]:
    """The Home tab for ``content.user_id``, in ``strings``' language (English by default) but for the
    admin part; ``links`` holds each listed thread's link."""
    t = strings or english()
    blocks: list[Block] = [
        _header("Haven"),
        SectionBlock(
            text=_md(t("home.start")),
            accessory=ButtonElement(
                text=t("home.new_button"), action_id=ACTION_HOME_NEW, value="new", style="primary"
            ),
        ),
    ]
    if content.forgotten is not None:
        removed = content.forgotten
        done = t("home.forgotten", messages=removed.get("messages", 0), comments=removed.get("comments", 0))
        blocks.append(ContextBlock(elements=[_md(f":white_check_mark: {done}")]))
    blocks += [DividerBlock(), _header(t("home.recent"))]
    if content.conversations:
        blocks += [_conversation(c, links.get(c.thread), t) for c in content.conversations]
    else:
        blocks.append(_section(f"_{t('home.none_yet')}_"))
    blocks += [
        DividerBlock(),
        SectionBlock(
            text=_md(t("home.forget")),
            accessory=ButtonElement(
                text=t("home.forget_button"), action_id=ACTION_FORGET, value="forget", style="danger"
            ),
        ),
    ]
    if content.admin is not None:
        # English whatever the admin's locale: admin texts stay English (``bot.i18n``).
        blocks += _admin(content.admin, links)
    return View(
        type="home",
        callback_id="haven_home",
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=blocks,
    ).to_dict()


def _conversation(c: UserConversation, link: str | None, t: Strings) -> SectionBlock:
    state = t(_ENDED.get(c.end_reason or "", "home.ended_unknown")) if c.ended else t("home.open")
    last = t("home.last_wrote", when=when(c.last_active))
    head = f"{link_or_channel(link, c.thread)} · {state} · {last}"
    if c.latest_text is None:
        said = f"_{t('home.text_removed')}_"
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


def forget_modal(metadata: Mapping[str, Any], strings: Strings | None = None) -> dict[str, Any]:
    """The confirmation of "forget me", in ``strings``' language (English by default)."""
    t = strings or english()
    return View(
        type="modal",
        callback_id=VIEW_FORGET,
        title=t("home.forget_title"),
        submit=t("home.forget_submit"),
        close=t("slack.cancel"),
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=[SectionBlock(text=_md(t("home.forget_confirm")))],
    ).to_dict()
