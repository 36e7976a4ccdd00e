"""Where Haven answers in a workspace: the admins' channel allow-list and deny-list. Pure, no I/O.

The rules, in order:

1. **Direct messages are always answered.** A person's DM with Haven is not a workspace channel, and
   the lists are about where Haven speaks in front of others; the DM is also where the private note
   sends people.
2. **Deny wins.** A channel on the deny-list is never answered, even when it is also on the allow-list.
3. **An empty allow-list means every channel.** Otherwise only the channels it names are answered.

A conversation lives in one channel (a Discord thread counts as its parent channel), so the lists apply to
every message of it: a conversation whose channel is denied later stops being answered, and its people get
the same private note as anyone else there. Channel ids are opaque; they are compared as the adapter gave
them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence

from bot.i18n import Strings, english
from bot.types import IncomingMessage, Origin, WorkspaceSettings

# How many (person, channel) pairs remember that they were told (``Told``); the oldest are forgotten first.
TOLD_LIMIT = 10_000
# At most this many allowed channels are named in the note; the rest are counted.
NAMED_CHANNELS = 10


def is_direct(msg: IncomingMessage) -> bool:
    return msg.in_dm or msg.origin is Origin.DIRECT


def may_answer_in(settings: WorkspaceSettings, channel: str, *, direct: bool) -> bool:
    """Whether Haven answers in ``channel`` of ``settings``' workspace (rules in the module docstring)."""
    if direct:
        return True
    if channel in settings.denied_channels:
        return False
    return not settings.allowed_channels or channel in settings.allowed_channels


def may_answer(settings: WorkspaceSettings, msg: IncomingMessage) -> bool:
    return may_answer_in(settings, msg.thread.channel, direct=is_direct(msg))


def channel_link(channel: str) -> str:
    # Slack and Discord both draw "<#id>" as a link to the channel, so the note needs no adapter's help.
    return f"<#{channel}>"


def elsewhere_note(settings: WorkspaceSettings, strings: Strings | None = None) -> str:
    """The private note for someone who addressed Haven where it does not answer: where it does, in
    their language (``strings``; English when None)."""
    t = strings or english()
    allowed = [c for c in settings.allowed_channels if c not in settings.denied_channels]
    if not settings.allowed_channels:
        where = t("channels.where_other")
    elif not allowed:
        return t("channels.elsewhere_none")
    else:
        where = t("channels.where_in", channels=_names(allowed, t))
    return t("channels.elsewhere", where=where)


def _names(channels: Sequence[str], t: Strings) -> str:
    named = [channel_link(c) for c in channels[:NAMED_CHANNELS]]
    more = len(channels) - len(named)
    if more:
        named.append(t("channels.more_one") if more == 1 else t("channels.more_many", count=more))
    if len(named) == 1:
        return named[0]
    return t("channels.pair", first=", ".join(named[:-1]), last=named[-1])


class Told:
    """Who was already told, per (person, channel): the note is sent once, not on every message.

    Kept in memory and bounded (least recently told forgotten first), not in the database: a message
    outside the allowed channels must leave nothing stored, and a chatty denied channel must not cost a
    write per message. A restart or a second process may tell a person once more, which a private note
    can afford.
    """

    def __init__(self, limit: int = TOLD_LIMIT) -> None:
        self._limit = limit
        self._seen: OrderedDict[Hashable, None] = OrderedDict()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen (within the memory's bound), False after."""
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._limit:
            self._seen.popitem(last=False)
        return True
