"""Discord renderings of the core's platform-neutral notices. Wording lives in ``bot.notices``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import discord

from adapters.discord.translate import jump_url, truncate
from bot.admin import describe_settings
from bot.i18n import Strings, english, strings_for
from bot.notices import ClosureText, PlatformHints, model_alert_text, reason_phrase
from bot.types import (
    AdminAlert,
    CrisisCard,
    Digest,
    EndingRecord,
    FeedbackRecord,
    WorkspaceSettings,
)


def hints(strings: Strings, *, dm: bool) -> PlatformHints:
    """How things are done on Discord (in a server, or in a DM with Haven), in the person's language."""
    new = strings("discord.hint_new_dm" if dm else "discord.hint_new_guild")
    return PlatformHints(new_conversation=new, fork=strings("discord.hint_fork"))


GUILD_HINTS = hints(english(), dm=False)
DM_HINTS = hints(english(), dm=True)

CLOSURE_COLOUR = discord.Colour.dark_grey()
CRISIS_COLOUR = discord.Colour.from_rgb(46, 134, 222)
ADMIN_COLOUR = discord.Colour.blurple()

_EMBED_DESCRIPTION = 4096
_FIELD_VALUE = 1024

# The English help (``help.discord`` in ``bot/locales``); people get it in their language.
HELP = """\
**Talking with Haven**
• Mention @Haven in a channel: Haven opens a thread from your message and answers there. Keep writing \
in that thread — no mention needed.
• In a direct message, just write. `/haven new` starts the next conversation.
• `/haven new [prompt]` — start a new conversation (a new thread, or the next DM conversation).
• `/haven end` — close this conversation for good.
• **Edit & fork** (message menu → Apps) or `/haven fork message:<link> text:<new text>` — continue from \
one of your earlier messages with new text, in a new thread.

Haven may end a conversation as a last resort, after repeated warnings, or when you ask it to. It never \
ends one with someone who may be at risk; it stays and shows the crisis resources your server configured.
Admins (Manage Server): `/haven-admin`."""


def closure_embed(conversation_id: str, text: ClosureText) -> discord.Embed:
    t = strings_for(text.language)
    embed = discord.Embed(title=text.title, description=text.reason, colour=CLOSURE_COLOUR)
    start, other = t("discord.closure_start_anew"), t("discord.closure_continue")
    embed.add_field(name=start, value=truncate(text.new_conversation, _FIELD_VALUE), inline=False)
    embed.add_field(name=other, value=truncate(text.fork, _FIELD_VALUE), inline=False)
    embed.set_footer(text=t("discord.closure_footer", ref=conversation_id))
    return embed


_LIST_ITEM = re.compile(r"^([ \t]*)[-*+][ \t]+", re.MULTILINE)


def crisis_markdown(text: str) -> str:
    """The crisis resources in Discord's Markdown: the core's Markdown as it is (``**bold**``, links),
    list items drawn with a bullet so they look the same on every client."""
    return _LIST_ITEM.sub(lambda m: f"{m.group(1)}• ", text)


def crisis_embed(card: CrisisCard, *, preview: bool = False) -> discord.Embed:
    title = strings_for(card.language)("crisis.title_long")
    embed = discord.Embed(
        title=title,
        description=truncate(crisis_markdown(card.text), _EMBED_DESCRIPTION),
        colour=CRISIS_COLOUR,
    )
    if preview:
        embed.set_footer(text="Preview: this is what people see when Haven shares crisis resources.")
    return embed


def alert_text(alert: AdminAlert) -> str:
    """Content-free: where, why, how many warnings — never what was said. In English, like every admin
    text: it is for the server's operators, not the person in the conversation."""
    reason = reason_phrase(alert.reason, "unknown")
    link = jump_url(alert.thread)
    if alert.kind == "model":
        return f"{model_alert_text(alert.failures)} The latest was in {link}."
    if alert.kind == "feedback":
        return f"An ending was reported as a mistake — {link} (ended {reason}, {alert.warnings} warnings)"
    return f"Haven ended a conversation {reason} — {link} ({alert.warnings} warnings)."


def digest_text(digest: Digest) -> str:
    """The weekly summary for admins: counts and links, no message content."""
    endings = ", ".join(
        f"{count} {reason_phrase(reason)}" for reason, count in sorted(digest.endings_by_reason.items())
    )
    lines = [
        f"**Haven — weekly summary** (since <t:{int(digest.since.timestamp())}:D>)",
        f"Endings: {endings or 'none'}",
        f"Endings vetoed because someone may be at risk: {digest.vetoes}",
        f"Warnings given: {digest.warnings}",
        f"“This ending was a mistake” reports: {digest.feedback}",
    ]
    links = [f"https://discord.com/channels/{digest.workspace}/{thread}" for _, thread in digest.reported]
    if links:
        lines.append("Reported: " + " · ".join(links))
    return "\n".join(lines)


def settings_embed(settings: WorkspaceSettings, title: str = "Haven settings") -> discord.Embed:
    embed = discord.Embed(title=title, colour=ADMIN_COLOUR)
    for name, value in describe_settings(settings):
        if name == "alert-channel" and settings.alert_channel:
            value = f"<#{settings.alert_channel}>"
        elif name in ("allow-channels", "deny-channels"):
            channels = settings.allowed_channels if name == "allow-channels" else settings.denied_channels
            value = " ".join(f"<#{c}>" for c in channels) or value
        embed.add_field(name=name, value=truncate(value, _FIELD_VALUE) or "—", inline=True)
    return embed


def _when(moment: datetime | None) -> str:
    return f"<t:{int(moment.timestamp())}:R>" if moment else "—"


def endings_embed(rows: Sequence[EndingRecord]) -> discord.Embed:
    lines = [
        f"{_when(r.ended_at)} · {reason_phrase(r.reason, '?')} · "
        f"{r.warnings} warnings · [thread]({jump_url(r.thread)})" + (" · fork" if r.forked_from else "")
        for r in rows
    ]
    body = "\n".join(lines) or "No conversations have been ended here."
    return discord.Embed(
        title="Recent endings", description=truncate(body, _EMBED_DESCRIPTION), colour=ADMIN_COLOUR
    )


def feedback_embed(rows: Sequence[FeedbackRecord]) -> discord.Embed:
    lines = []
    for r in rows:
        comment = f" — “{truncate(' '.join(r.comment.split()), 200)}”" if r.comment else ""
        lines.append(f"{_when(r.created_at)} · <@{r.user_id}> · [thread]({jump_url(r.thread)}){comment}")
    body = "\n".join(lines) or "No endings have been reported as mistakes."
    return discord.Embed(
        title="“This ending was a mistake” reports",
        description=truncate(body, _EMBED_DESCRIPTION),
        colour=ADMIN_COLOUR,
    )
