"""Slack's ``bot.ports.Renderer``: the core's presentation items as Block Kit messages in one thread.

What is shown, in which order and to whom is decided by ``bot.presentation``; this module only draws.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from slack_sdk.models.metadata import Metadata

from adapters.slack import blocks as bk
from adapters.slack.api import SlackApi
from adapters.slack.reply import LiveReply
from adapters.slack.translate import MAX_MESSAGE_CHARS, escape, reply_mark, split_markdown, split_message
from bot.i18n import Strings, english
from bot.notices import PlatformHints, model_alert_text, reason_phrase
from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, PrivateNotice, Reply
from bot.types import AdminAlert


def hints(strings: Strings) -> PlatformHints:
    """How things are done on Slack, in the person's language."""
    return PlatformHints(new_conversation=strings("slack.hint_new"), fork=strings("slack.hint_fork"))


HINTS = hints(english())

Private = Callable[[str], Awaitable[None]]


class SlackRenderer:
    """Draws into ``channel``/``thread_ts``. ``live`` is the turn's reply as it was streamed, if any;
    ``private`` answers the person who acted (a command's ``respond``), else private notices are
    ephemeral messages in the thread.

    ``entry``: the inbox entry whose result this is; its posts carry a mark (``translate.reply_mark``)
    and the items in ``drawn`` — found in the thread by a recovery, already posted by an earlier
    drawing — are not posted again.
    """

    def __init__(
        self,
        api: SlackApi,
        *,
        channel: str,
        thread_ts: str,
        private: Private | None = None,
        live: LiveReply | None = None,
        entry: str | None = None,
        drawn: frozenset[str] = frozenset(),
    ) -> None:
        self._api = api
        self._channel = channel
        self._thread_ts = thread_ts
        self._private = private
        self._live = live
        self._entry = entry
        self._drawn = drawn

    def _metadata(self, item: str) -> Metadata | None:
        mark = reply_mark(self._entry, item) if self._entry else None
        return Metadata(**mark) if mark is not None else None

    async def _post(
        self, item: str, text: str, blocks: bk.Blocks | None = None, *, markdown: bool = False
    ) -> None:
        """One post of the turn's result, marked (see the class docstring); ``markdown``: ``text`` is
        standard Markdown, sent as ``markdown_text`` for Slack to render."""
        if item in self._drawn:
            return
        metadata = self._metadata(item)
        if markdown:
            await self._api.post_markdown(self._channel, text, thread_ts=self._thread_ts, metadata=metadata)
            return
        await self._api.post(self._channel, text, thread_ts=self._thread_ts, blocks=blocks, metadata=metadata)

    async def reply(self, item: Reply) -> None:
        live = self._live
        if live is not None and live.started:
            await (live.fail(item.text) if item.failed else live.finish(item.text))
            return
        if item.failed:
            # A failure note is plain text, not the model's Markdown.
            for n, part in enumerate(split_message(escape(item.text), MAX_MESSAGE_CHARS)):
                await self._post(f"reply.{n}", part)
            return
        for n, part in enumerate(split_markdown(item.text)):
            await self._post(f"reply.{n}", part, markdown=True)

    async def crisis_card(self, item: CrisisResources) -> None:
        await self._post("crisis", bk.crisis_mrkdwn(item.card.text), bk.crisis_blocks(item.card))

    async def closure(self, item: ClosureNotice) -> None:
        blocks = bk.closure_blocks(item.conversation_id, item.text)
        await self._post("closure", item.text.plain(), blocks)

    async def private_notice(self, item: PrivateNotice) -> None:
        if self._private is not None:
            await self._private(item.text)
        else:
            await self._api.ephemeral(self._channel, item.user_id, item.text, self._thread_ts)

    async def admin_alert(self, item: AlertNotice) -> None:
        await send_alert(self._api, item.alert)


async def send_alert(api: SlackApi, alert: AdminAlert) -> None:
    """A content-free notice for the admins: where, why, how many warnings. In English: it is for the
    workspace's operators, in a channel of theirs, not for the person in the conversation."""
    link = await api.permalink(alert.thread.channel, alert.thread.thread)
    where = f"<{link}|this thread>" if link else f"a thread in <#{alert.thread.channel}>"
    reason = reason_phrase(alert.reason)
    warnings = f"{alert.warnings} warning{'s' if alert.warnings != 1 else ''}"
    if alert.kind == "model":
        text = f":warning: {model_alert_text(alert.failures)} The latest was in {where}."
    elif alert.kind == "feedback":
        text = (
            f":speech_balloon: Someone reported that Haven's ending of {where} was a mistake "
            f"(it ended {reason}, {warnings}). `/haven feedback` lists the reports."
        )
    else:
        text = (
            f":no_entry_sign: Haven ended a conversation in {where} {reason} ({warnings}). "
            "`/haven endings` lists recent endings."
        )
    await api.post(alert.channel, text)
