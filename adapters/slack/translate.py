"""Pure translations between Slack payloads and the core's vocabulary. No I/O, no Bolt.

Slack ids (team, channel, ts) are parsed here and nowhere else; the core sees them as opaque strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from bot.text import split
from bot.types import Attachment, Author, IncomingMessage, Origin, Platform, ThreadRef

PLATFORM = Platform.SLACK.value
# Slack truncates `text` at 40,000 characters but advises keeping messages under 4,000.
MAX_MESSAGE_CHARS = 3900
# Markdown (``markdown_text``, ``markdown`` blocks) is limited to 12,000 characters a message; the margin
# leaves room for a closing fence and Slack's own counting.
MAX_MARKDOWN_CHARS = 11_000
# An assistant thread's title (``thread_title``): what fits the thread list at a glance.
THREAD_TITLE_CHARS = 60
# Plain-text inputs in modals hold at most 3,000 characters.
MAX_INPUT_CHARS = 3000
# A subtype in this set still carries a person's words; every other subtype is a system event.
_PERSON_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A person's message that may concern Haven, before we know who the author is."""

    thread: ThreadRef
    user_id: str
    ts: str
    text: str
    origin: Origin
    # Files shared with the message (``file_share``, or files on a mention): references, no bytes.
    attachments: tuple[Attachment, ...] = ()

    @property
    def has_content(self) -> bool:
        """Words or files: a message of only files is a message too."""
        return bool(self.text or self.attachments)

    @property
    def dedupe_key(self) -> str:
        # The same for app_mention and message of one message, and for every retry of either.
        return f"{self.thread.channel}:{self.ts}"

    def incoming(self, author: Author, locale: str | None = None) -> IncomingMessage:
        return IncomingMessage(
            thread=self.thread,
            author=author,
            text=self.text,
            message_id=self.ts,
            origin=self.origin,
            dedupe_key=self.dedupe_key,
            locale=locale,
            attachments=self.attachments,
        )


@dataclass(frozen=True, slots=True)
class SlackEdit:
    """A person edited one of their messages (``message_changed``)."""

    thread: ThreadRef
    user_id: str
    ts: str
    raw_text: str
    edit_key: str


@dataclass(frozen=True, slots=True)
class MessageLink:
    channel: str
    ts: str
    thread_ts: str | None

    @property
    def thread(self) -> str:
        return self.thread_ts or self.ts


def thread_ref(team_id: str, channel: str, thread_ts: str) -> ThreadRef:
    return ThreadRef(PLATFORM, team_id, channel, thread_ts)


# -- events -------------------------------------------------------------------------------------------


def message_from_event(
    event: Mapping[str, Any], *, event_type: str, team_id: str, bot_user_id: str | None
) -> SlackMessage | None:
    """An ``app_mention`` or ``message`` event → the message Haven should consider, or None to ignore.

    Top-level channel messages are left to their own ``app_mention`` event: only a mention starts a
    conversation there, and the ``message`` copy of a mention must not start a second one. Everything a
    person writes in their DM with Haven is for Haven, in a thread too: Slack's assistant threads are
    exactly that (``message.im`` with a ``thread_ts``), and their first message starts the conversation.
    """
    if event.get("subtype") not in _PERSON_SUBTYPES:
        return None
    user, channel, ts = event.get("user"), event.get("channel"), event.get("ts")
    if event.get("bot_id") or event.get("bot_profile") or not user or not channel or not ts:
        return None
    if user == bot_user_id:
        return None
    thread_ts = event.get("thread_ts")
    in_thread = bool(thread_ts) and thread_ts != ts
    if event_type == "app_mention":
        origin, thread = Origin.MENTION, (thread_ts if in_thread else ts)
    elif event.get("channel_type") == "im":
        origin, thread = Origin.DIRECT, (thread_ts if in_thread else ts)
    elif in_thread:
        origin, thread = Origin.THREAD_REPLY, thread_ts
    else:
        return None
    text = slack_to_text(str(event.get("text") or ""), bot_user_id)
    files = attachments_from_files(event.get("files"))
    return SlackMessage(thread_ref(team_id, channel, str(thread)), str(user), str(ts), text, origin, files)


def attachments_from_files(files: object) -> tuple[Attachment, ...]:
    """An event's ``files`` as references. A file Slack did not share in full (``file_access``
    "check_file_info", a deleted one) has no download URL: it is kept, so the person hears it was not
    read. Whether a URL is Slack's own is the fetcher's question (``adapters.slack.files``)."""
    if not isinstance(files, list):
        return ()
    found: list[Attachment] = []
    for f in files:
        if not isinstance(f, Mapping) or not f.get("id"):
            continue
        size = f.get("size")
        found.append(
            Attachment(
                id=str(f["id"]),
                name=str(f.get("name") or f.get("title") or f["id"]),
                mimetype=str(f.get("mimetype") or ""),
                url=str(f.get("url_private_download") or f.get("url_private") or ""),
                size=size if isinstance(size, int) and size >= 0 else None,
            )
        )
    return tuple(found)


def thread_title(text: str, limit: int = THREAD_TITLE_CHARS) -> str:
    """An assistant thread's title from its first message: the first line, cut at a word near ``limit``."""
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = " ".join(line.split())
    if len(line) <= limit:
        return line
    cut = line[: limit - 1]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip(" ,.;:") + "…"


def _mapping(value: object) -> Mapping[str, Any]:
    """A nested payload object, or an empty one when Slack (or a forger) sent something else."""
    return value if isinstance(value, Mapping) else {}


def edit_from_event(event: Mapping[str, Any], *, team_id: str, bot_user_id: str | None) -> SlackEdit | None:
    """A ``message_changed`` event that is a person editing their own words, else None."""
    if event.get("subtype") != "message_changed":
        return None
    new = _mapping(event.get("message"))
    old = _mapping(event.get("previous_message"))
    user, ts, channel = new.get("user"), new.get("ts"), event.get("channel")
    if new.get("bot_id") or new.get("subtype") not in _PERSON_SUBTYPES or not user or not ts or not channel:
        return None
    if user == bot_user_id:
        return None
    text = str(new.get("text") or "")
    # Unfurls and reactions also arrive as message_changed with the words unchanged.
    if not text.strip() or text == old.get("text"):
        return None
    edited = _mapping(new.get("edited")).get("ts") or event.get("event_ts") or event.get("ts") or ""
    thread = str(new.get("thread_ts") or ts)
    return SlackEdit(
        thread_ref(team_id, str(channel), thread), str(user), str(ts), text, f"edit:{channel}:{ts}:{edited}"
    )


# -- Slack text → plain text for the model --------------------------------------------------------------

_ANGLE = re.compile(r"<([^<>\n]+)>")


def _angle(match: re.Match[str], bot_user_id: str | None) -> str:
    inner = match.group(1)
    target, _, label = inner.partition("|")
    if target.startswith("@"):
        if bot_user_id and target[1:] == bot_user_id:
            return ""
        return f"<{target}>"  # keep user mentions, so the model can address people properly
    if target.startswith("#"):
        return f"#{label}" if label else f"<{target}>"
    if target.startswith("!"):
        special = target[1:].split("^", 1)[0]
        if special in ("here", "channel", "everyone"):
            return f"@{special}"
        return label or f"@{special}"
    if target.startswith("mailto:"):
        return label or target[len("mailto:") :]
    if label and label != target:
        return f"{label} ({target})"
    return target


def slack_to_text(text: str, bot_user_id: str | None = None) -> str:
    """Slack's message markup → what a person meant to write (the bot's own mention removed)."""
    text = _ANGLE.sub(lambda m: _angle(m, bot_user_id), text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    text = re.sub(r"[ \t]{2,}", " ", text)
    return text.strip()


def escape(text: str) -> str:
    """Plain text → Slack text that shows exactly these characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def quote(text: str) -> str:
    """Slack text → the same as a block quote."""
    return "\n".join(f">{line}" if line else ">" for line in text.splitlines() or [""])


def link_or_channel(link: str | None, thread: ThreadRef) -> str:
    """A thread as Slack text: its link when there is one, else the channel it is in."""
    return f"<{link}|thread>" if link else f"a thread in <#{thread.channel}>"


# -- Markdown → mrkdwn ----------------------------------------------------------------------------------
# Replies go to Slack as the model wrote them (``markdown_text`` and streams; Slack renders standard
# Markdown itself). This conversion is left only where Slack takes mrkdwn and no Markdown: section
# blocks, which the crisis card shares with the App Home view (``blocks.crisis_mrkdwn``), and the
# ``text`` that stands in for blocks in notifications.

_FENCE = re.compile(r"^([ \t]*)(`{3,}|~{3,})[^\n]*\n(.*?)(?:^[ \t]*\2[ \t]*$|\Z)", re.S | re.M)
_INLINE_CODE = re.compile(r"(`+)(.+?)\1", re.S)
_IMAGE_OR_LINK = re.compile(
    r"!?\[([^\]\n]+)\]\(\s*<?(https?://[^\s)>]+|mailto:[^\s)>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
)
_AUTOLINK = re.compile(r"<(https?://[^\s<>]+|mailto:[^\s<>]+)>")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
_BULLET = re.compile(r"^([ \t]*)[-*+][ \t]+", re.M)
_RULE = re.compile(r"^[ \t]*([-*_])([ \t]*\1){2,}[ \t]*$", re.M)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_ITALIC_STAR = re.compile(r"(?<![\*\w])\*(?=[^\s*])([^*\n]+?)(?<=[^\s*])\*(?![\*\w])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)
_QUOTE = re.compile(r"^([ \t]*(?:>[ \t]?)+)", re.M)
_TABLE_ROW = re.compile(r"^[ \t]*\|.*\|[ \t]*$")
_TABLE_RULE = re.compile(r"^[ \t]*\|?[ \t]*:?-{3,}:?[ \t]*(\|[ \t]*:?-{3,}:?[ \t]*)*\|?[ \t]*$")

# Private-use characters stand in for protected spans while the rest is rewritten.
_HOLD = "\ue000"
_BOLD_MARK = "\ue001"


def markdown_to_mrkdwn(markdown: str) -> str:
    """The model's CommonMark-ish Markdown → Slack mrkdwn; code stays code, links become Slack links."""
    held: list[str] = []

    def hold(s: str) -> str:
        held.append(s)
        return f"{_HOLD}{len(held) - 1}{_HOLD}"

    def fence(m: re.Match[str]) -> str:
        body = m.group(3).rstrip("\n")
        return m.group(1) + hold(f"```\n{escape(body)}\n```")

    text = _tables_to_code(markdown.replace("\r\n", "\n"))
    text = _FENCE.sub(fence, text)
    text = _INLINE_CODE.sub(lambda m: hold(f"`{escape(m.group(2).strip())}`"), text)
    text = _IMAGE_OR_LINK.sub(lambda m: hold(f"<{m.group(2)}|{escape(m.group(1)).replace('|', '¦')}>"), text)
    text = _AUTOLINK.sub(lambda m: hold(f"<{m.group(1)}>"), text)
    text = _QUOTE.sub(lambda m: hold(">" * m.group(1).count(">") + " "), text)
    text = escape(text)
    text = _RULE.sub("──────────", text)
    text = _HEADING.sub(lambda m: f"{_BOLD_MARK}{_strip_emphasis(m.group(1))}{_BOLD_MARK}", text)
    text = _BULLET.sub(lambda m: f"{m.group(1)}• ", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(r"_\1_", text)
    text = _STRIKE.sub(r"~\1~", text)
    text = text.replace(_BOLD_MARK, "*")
    # Held spans may nest (a link inside a quote prefix's line), so restore until none is left.
    pattern = re.compile(f"{_HOLD}(\\d+){_HOLD}")
    while pattern.search(text):
        text = pattern.sub(lambda m: held[int(m.group(1))], text)
    return text.strip("\n")


def _strip_emphasis(s: str) -> str:
    return s.replace("**", "").replace("__", "")


def _tables_to_code(text: str) -> str:
    """Slack has no tables; a Markdown table reads best as a monospace block."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if (
            i + 1 < len(lines)
            and _TABLE_ROW.match(lines[i])
            and _TABLE_RULE.match(lines[i + 1])
            and "```" not in lines[i]
        ):
            j = i + 2
            while j < len(lines) and _TABLE_ROW.match(lines[j]):
                j += 1
            out += ["```", *lines[i:j], "```"]
            i = j
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


# -- splitting -------------------------------------------------------------------------------------------


def split_message(text: str, limit: int = MAX_MESSAGE_CHARS) -> list[str]:
    """mrkdwn as Slack messages: the core's one splitter (``bot.text.split``) at Slack's limit."""
    return split(text, limit)


def split_markdown(markdown: str, limit: int = MAX_MARKDOWN_CHARS) -> list[str]:
    """Markdown as Slack messages at the Markdown limit; a code block cut in two is closed at the end of
    one message and reopened (with its language tag) at the start of the next."""
    return split(markdown, limit)


# -- links and commands -------------------------------------------------------------------------------

_LINK = re.compile(r"<?https?://[^\s/|>]+/archives/([A-Z0-9]+)/p(\d{10})(\d{6})(\?[^\s|>]*)?(?:\|[^>]*)?>?")


def parse_message_link(text: str) -> MessageLink | None:
    """``https://team.slack.com/archives/C123/p1700000000123456?thread_ts=…`` → channel, ts, thread."""
    m = _LINK.search(text)
    if not m:
        return None
    query = parse_qs((m.group(4) or "?")[1:])
    thread_ts = (query.get("thread_ts") or [None])[0]
    if thread_ts is not None and not re.fullmatch(r"\d{10}\.\d{6}", thread_ts):
        thread_ts = None
    return MessageLink(m.group(1), f"{m.group(2)}.{m.group(3)}", thread_ts)


def split_link_and_text(text: str) -> tuple[MessageLink | None, str]:
    """``<link> <new text>`` → the parsed link and the rest."""
    text = text.strip()
    m = _LINK.match(text)
    if not m:
        return None, text
    return parse_message_link(m.group(0)), text[m.end() :].strip()


def ids_in(text: str) -> str:
    """A command's argument as typed: escaped mentions (``<@U1|ana>``, ``<#C1|general>``) become the bare
    ids the core stores, and Slack's entities (``&amp;`` …) the characters (a suggested prompt may hold
    an ampersand)."""
    text = re.sub(r"<[@#]([A-Z0-9]+)(?:\|[^>]*)?>", r"\1", text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def parse_command(text: str) -> tuple[str, str]:
    """``/haven <sub> <rest>`` → (sub in lower case, rest verbatim)."""
    sub, _, rest = text.strip().partition(" ")
    return sub.lower(), rest.strip()


def user_display(user: Mapping[str, Any]) -> str:
    profile: Mapping[str, Any] = user.get("profile") or {}
    for name in (
        profile.get("display_name"),
        profile.get("real_name"),
        user.get("real_name"),
        user.get("name"),
    ):
        if name and str(name).strip():
            return str(name).strip()
    return str(user.get("id") or "someone")


def is_workspace_admin(user: Mapping[str, Any], team_id: str) -> bool:
    """Admin or owner of *this* workspace: an external (Slack Connect) admin is not ours."""
    if user.get("deleted") or user.get("is_bot") or user.get("is_restricted"):
        return False
    home = user.get("team_id")
    if home and home != team_id and not user.get("enterprise_user"):
        return False
    return bool(user.get("is_admin") or user.get("is_owner") or user.get("is_primary_owner"))


# -- marks on a turn's posts ------------------------------------------------------------------------------
# Every message drawn for an inbox entry carries Slack message metadata naming the entry and the item
# (``reply.0``, ``crisis``, ``closure``). A recovery that draws a stored result again — its first drawing
# reached Slack but the database never heard so — reads the thread once and skips what is already there.
REPLY_EVENT = "haven_reply"


def reply_mark(entry: str, item: str) -> dict[str, Any]:
    """The ``metadata`` of one post drawn for inbox entry ``entry``."""
    return {"event_type": REPLY_EVENT, "event_payload": {"entry": entry, "item": item}}


def drawn_items(messages: Sequence[Mapping[str, Any]], entry: str) -> frozenset[str]:
    """The items of ``entry`` that ``messages`` (``conversations.replies`` with metadata) already show."""
    items: set[str] = set()
    for message in messages:
        meta = _mapping(message.get("metadata"))
        payload = _mapping(meta.get("event_payload"))
        if meta.get("event_type") == REPLY_EVENT and payload.get("entry") == entry:
            item = payload.get("item")
            if isinstance(item, str):
                items.add(item)
    return frozenset(items)
