"""Pure translations between discord.py objects and the core's vocabulary. No I/O here.

Discord ids are opaque to the core; this module is the only place that builds or parses them:

* guild conversation: ``ThreadRef("discord", guild_id, parent_channel_id, thread_id)``. A thread started
  from a message has that message's id, so a mention's conversation key is known before the thread exists.
* DM conversation: ``ThreadRef("discord", "dm", dm_channel_id, f"{dm_channel_id}:{n}")``, n = 1, 2, …
  numbered contiguously, so the current one is the highest n the repository knows (see ``shared``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import discord

from bot.i18n import Strings, strings_for
from bot.text import split
from bot.types import Attachment, Author, IncomingMessage, Origin, ThreadRef

PLATFORM = "discord"
DM_WORKSPACE = "dm"
MESSAGE_LIMIT = 2000
# Discord caps a nonce at 25 characters.
NONCE_LENGTH = 25
MODAL_TITLE_LIMIT = 45
TEXT_INPUT_LIMIT = 4000
FENCE = "```"

_USER_MENTION = re.compile(r"<@!?(\d+)>")
_ROLE_MENTION = re.compile(r"<@&(\d+)>")
_MESSAGE_LINK = re.compile(
    r"https?://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/channels/(\d+|@me)/(\d+)/(\d+)", re.IGNORECASE
)
_DM_THREAD = re.compile(r"^(\d+):(\d+)$")

# What a person can write in: text channels start threads, threads continue, DMs hold one at a time.
_SYSTEM_OK = (discord.MessageType.default, discord.MessageType.reply)


# -- thread references ------------------------------------------------------------------------------------


def guild_thread(guild_id: int, parent_id: int, thread_id: int) -> ThreadRef:
    return ThreadRef(PLATFORM, str(guild_id), str(parent_id), str(thread_id))


def dm_thread(channel_id: int, number: int) -> ThreadRef:
    return ThreadRef(PLATFORM, DM_WORKSPACE, str(channel_id), f"{channel_id}:{number}")


def is_dm(ref: ThreadRef) -> bool:
    return ref.workspace == DM_WORKSPACE


def dm_number(ref: ThreadRef) -> int | None:
    match = _DM_THREAD.match(ref.thread)
    return int(match.group(2)) if match else None


def target_channel_id(ref: ThreadRef) -> int:
    """The Discord channel a conversation's messages go to: the thread, or the DM channel."""
    return int(ref.channel if is_dm(ref) else ref.thread)


def jump_url(ref: ThreadRef) -> str:
    if is_dm(ref):
        return f"https://discord.com/channels/@me/{ref.channel}"
    return f"https://discord.com/channels/{ref.workspace}/{ref.thread}"


@dataclass(frozen=True, slots=True)
class MessageLink:
    guild_id: int | None  # None for a DM link (".../channels/@me/...")
    channel_id: int
    message_id: int


def parse_message_link(text: str) -> MessageLink | None:
    match = _MESSAGE_LINK.search(text.strip())
    if match is None:
        return None
    guild, channel, message = match.groups()
    return MessageLink(None if guild == "@me" else int(guild), int(channel), int(message))


# -- incoming messages ---------------------------------------------------------------------------------


def author_of(user: discord.abc.User, *, permissions: discord.Permissions | None = None) -> Author:
    """``is_platform_admin`` is Discord's manage_guild: from the interaction's resolved permissions when
    given, else from the member's roles (which discord.py resolves against the guild's cached roles)."""
    if permissions is not None:
        admin = permissions.manage_guild
    else:
        admin = isinstance(user, discord.Member) and user.guild_permissions.manage_guild
    return Author(id=str(user.id), name=user.display_name, is_platform_admin=admin)


def mentions_bot(message: discord.Message, bot_id: int) -> bool:
    if any(user.id == bot_id for user in message.mentions):
        return True
    # Picking the bot from the autocomplete sometimes inserts its managed role instead of the user.
    return any(role.tags is not None and role.tags.bot_id == bot_id for role in message.role_mentions)


def message_text(message: discord.Message, bot_id: int) -> str:
    """The message as the model should read it: the bot's mention removed, other mentions named."""
    names = {user.id: user.display_name for user in message.mentions}
    bot_roles = {
        role.id for role in message.role_mentions if role.tags is not None and role.tags.bot_id == bot_id
    }

    def user(match: re.Match[str]) -> str:
        uid = int(match.group(1))
        if uid == bot_id:
            return ""
        return f"@{names[uid]}" if uid in names else match.group(0)

    def role(match: re.Match[str]) -> str:
        return "" if int(match.group(1)) in bot_roles else match.group(0)

    text = _ROLE_MENTION.sub(role, _USER_MENTION.sub(user, message.content))
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def is_ignored(message: discord.Message, bot_id: int) -> bool:
    """Our own messages, other bots, webhooks and system messages never reach the engine."""
    return (
        message.author.id == bot_id
        or message.author.bot
        or message.webhook_id is not None
        or message.type not in _SYSTEM_OK
    )


def incoming_from_message(
    message: discord.Message, bot_id: int, *, dm_conversation: int | None = None
) -> IncomingMessage | None:
    """A gateway message as the engine's input, or None when Haven should not look at it.

    ``dm_conversation`` is the number of the DM conversation the caller resolved (required for DMs).
    A mention in a text channel is keyed by the thread that the adapter then starts from the message; a
    mention in a thread (anyone's, or a forum post) by that thread.
    """
    if is_ignored(message, bot_id):
        return None
    text = message_text(message, bot_id)
    files = attachments_of(message)
    if not text and not files:
        return None
    channel = message.channel
    key = str(message.id)
    if isinstance(channel, discord.DMChannel):
        if dm_conversation is None:
            return None
        ref = dm_thread(channel.id, dm_conversation)
        return IncomingMessage(
            ref, author_of(message.author), text, key, Origin.DIRECT, dedupe_key=key, attachments=files
        )
    guild = message.guild
    if guild is None:
        return None
    if isinstance(channel, discord.Thread):
        if channel.parent_id is None:
            return None
        # Any thread is a conversation's key (a forum post is a thread too). A mention starts one in a
        # thread someone else opened; the rest only continue one (the engine knows which threads are).
        ref = guild_thread(guild.id, channel.parent_id, channel.id)
        starts = channel.owner_id != bot_id and mentions_bot(message, bot_id)
        origin = Origin.MENTION if starts else Origin.THREAD_REPLY
        return IncomingMessage(
            ref, author_of(message.author), text, key, origin, dedupe_key=key, attachments=files
        )
    if isinstance(channel, discord.TextChannel) and mentions_bot(message, bot_id):
        ref = guild_thread(guild.id, channel.id, message.id)
        return IncomingMessage(
            ref, author_of(message.author), text, key, Origin.MENTION, dedupe_key=key, attachments=files
        )
    return None


def attachments_of(message: discord.Message) -> tuple[Attachment, ...]:
    """A message's attachments as references (``url`` on Discord's CDN; the fetcher checks that)."""
    return tuple(
        Attachment(
            id=str(a.id),
            name=a.filename,
            mimetype=a.content_type or "",
            url=a.url,
            size=a.size if a.size >= 0 else None,
        )
        for a in message.attachments
    )


def edit_key(channel_id: int, message_id: int, edited_at: str) -> str:
    """One edit of one message: the gateway may deliver its MESSAGE_UPDATE again, and each new edit of
    the message has a new edit time."""
    return f"edit:{channel_id}:{message_id}:{edited_at}"


# -- outgoing text ---------------------------------------------------------------------------------------


def thread_name(text: str, fallback: str = "Haven") -> str:
    line = " ".join(text.split())
    if not line:
        return fallback
    return line if len(line) <= 80 else line[:79].rstrip() + "…"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def nonce_for(source: str, kind: str, index: int = 0) -> str:
    """A stable nonce per (event, output): a send that discord.py retries is posted only once."""
    return hashlib.sha256(f"{source}|{kind}|{index}".encode()).hexdigest()[:NONCE_LENGTH]


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """A reply as Discord messages: the core's one splitter (``bot.text.split``) at Discord's limit."""
    return split(text, limit)


# -- locales ----------------------------------------------------------------------------------------------


def interaction_locale(interaction: discord.Interaction[Any]) -> str | None:
    """The locale of the person who used a command, button or form (their Discord client's language)."""
    locale = getattr(interaction, "locale", None)
    return str(locale) if locale else None


def words_for(interaction: discord.Interaction[Any]) -> Strings:
    """What Haven says to the person who used a command, button or form, in their client's language."""
    return strings_for(interaction_locale(interaction))


def place_locale(target: object) -> str | None:
    """The server's preferred locale where ``target`` lives; None in a DM. Discord does not tell a bot a
    person's locale on a plain message, so notices there follow the server's language; it is not the
    person's, so it is not given to the model as theirs."""
    guild = getattr(target, "guild", None)
    locale = getattr(guild, "preferred_locale", None)
    return str(locale) if locale else None
