"""Fork listeners: continue a conversation from one of your earlier messages, in a new thread.

Three ways in: the ⋯ → *Edit & fork* message shortcut (then its modal), the offer Haven makes when an
author edits a message of an ended conversation (then its button), and ``/haven fork <link> <text>``
(parsed in ``admin``, answered by ``from_command``). The engine decides who may fork what.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack import blocks as bk
from adapters.slack.listeners.context import Requester, requester
from adapters.slack.listeners.shared import CANNOT_POST, NOT_FORKABLE, Private, Shared, input_value
from adapters.slack.translate import (
    edit_from_event,
    escape,
    quote,
    slack_to_text,
    split_link_and_text,
    thread_ref,
)
from bot.i18n import strings_for
from bot.notices import NOT_AUTHOR
from bot.ports import StorageUnavailable
from bot.types import ForkRequest, ThreadRef, TurnStatus

log = logging.getLogger(__name__)

# The message shortcut this group answers; manifest.yml must declare the same (a test checks it).
SHORTCUT_EDIT_FORK = "haven_edit_fork"

FORK_USAGE = (
    "Usage: `/haven fork <message link> <new text>` — ⋯ → *Copy link* on your message. Or use ⋯ → "
    "*Edit & fork* on the message itself."
)


class Fork:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._engine = shared.engine
        self._api = shared.api

    def register(self, app: AsyncApp) -> None:
        app.shortcut(SHORTCUT_EDIT_FORK)(self.on_shortcut)
        app.action(bk.ACTION_FORK_EDIT)(self.on_fork_edit)
        app.view(bk.VIEW_FORK)(self.on_submit)

    async def fork(
        self,
        who: Requester,
        thread: ThreadRef,
        message_ts: str,
        *,
        model_text: str,
        shown_text: str,
        private: Private,
    ) -> bool:
        """Post "Forked from … by …" at the top level, then let the engine open and answer its thread."""
        team, user_id = who.team, who.user
        source = await self._engine.fork_source(thread, message_id=message_ts)
        person = await who.person()
        t = strings_for(person.locale)
        if source is None:
            await private(t.localise(NOT_FORKABLE))
            return False
        if not await self._engine.may_fork(person.author, source):
            await private(t.localise(NOT_AUTHOR))
            return False
        if not model_text.strip():
            await private(t("adapter.slack.fork_empty"))
            return False
        link = await self._api.permalink(thread.channel, message_ts)
        # A public post, in the language of the person who forked (as their conversation will be).
        origin = f"<{link}|{t('slack.forked_this_message')}>" if link else t("slack.forked_earlier")
        header = t("slack.forked_from", origin=origin, user=f"<@{user_id}>")
        ts = await self._api.post(thread.channel, f"{header}\n{quote(shown_text)}")
        if ts is None:
            await private(t.localise(CANNOT_POST))
            return False
        request = ForkRequest(
            source.conversation_id,
            source.message_id,
            thread_ref(team, thread.channel, ts),
            person.author,
            model_text,
            new_message_id=ts,
        )
        live = self._shared.live(thread.channel, ts, team, user_id)
        try:
            result = await self._shared.answer(live, self._engine.fork(request, live), person.locale)
        except StorageUnavailable:
            if not live.started:
                await self._api.delete(thread.channel, ts)  # nothing half-done: no header of nothing
            raise
        if result.status is TurnStatus.IGNORED:
            # Refused after all (e.g. the rights changed meanwhile): take the header back.
            await self._api.delete(thread.channel, ts)
            for reply in result.replies:
                await private(t.localise(reply))
            return False
        log.info("slack fork", extra={"workspace": team, "status": result.status.value})
        await self._shared.render(
            result,
            channel=thread.channel,
            thread_ts=ts,
            user_id=user_id,
            private=private,
            live=live,
            locale=person.locale,
        )
        return True

    async def from_command(
        self, who: Requester, rest: str, bot_user_id: str | None, private: Private
    ) -> None:
        """``/haven fork <message link> <new text>``."""
        link, text = split_link_and_text(rest)
        if link is None or not text:
            await private(strings_for((await who.person()).locale).localise(FORK_USAGE))
            return
        await self.fork(
            who,
            thread_ref(who.team, link.channel, link.thread),
            link.ts,
            model_text=slack_to_text(text, bot_user_id),
            shown_text=text,
            private=private,
        )

    async def offer_on_edit(self, event: Mapping[str, Any], team: str, bot_user_id: str | None) -> None:
        """An author edited a message in an ended thread: offer to continue from the edit elsewhere."""
        edit = edit_from_event(event, team_id=team, bot_user_id=bot_user_id)
        if edit is None:
            return
        # Slack retries deliveries; the engine makes it one offer per edit.
        if await self._engine.fork_offer(edit.thread, edit.ts, edit.user_id, edit.edit_key) is None:
            return
        value: str | None = json.dumps(
            {"c": edit.thread.channel, "t": edit.thread.thread, "m": edit.ts, "x": edit.raw_text},
            separators=(",", ":"),
        )
        if value is not None and len(value) > bk.BUTTON_VALUE_CHARS:
            value = None
        t = strings_for((await self._api.person(team, edit.user_id)).locale)
        await self._api.ephemeral(
            edit.thread.channel,
            edit.user_id,
            f"{t('slack.fork_offer_intro')} {t('slack.fork_offer_question')}",
            edit.thread.thread,
            blocks=bk.fork_offer_blocks(value, t),
        )

    async def on_shortcut(self, ack: Any, shortcut: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        who = requester(context)
        channel, message = shortcut["channel"]["id"], shortcut.get("message") or {}

        async def private(text: str) -> None:
            await self._api.tell(who.user, channel, text)

        async def work() -> None:
            ts = str(message.get("ts") or "")
            thread_ts = str(message.get("thread_ts") or ts)
            source = await self._engine.fork_source(thread_ref(who.team, channel, thread_ts), message_id=ts)
            person = await who.person()
            t = strings_for(person.locale)
            if source is None:
                await private(t.localise(NOT_FORKABLE))
                return
            if not await self._engine.may_fork(person.author, source):
                await private(t.localise(NOT_AUTHOR))
                return
            meta = {"c": channel, "t": thread_ts, "m": ts}
            await self._api.open(shortcut["trigger_id"], bk.fork_modal(source.text, meta, t))

        await self._shared.once(who.team, shortcut.get("trigger_id"), private, work, user=who.user)

    async def on_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        text = input_value(view)
        who = requester(context)
        if not text.strip():
            # Acknowledged at once: the locale only if cached (the shortcut that opened the form looked
            # the person up moments ago), else English.
            known = self._api.known_person(who.team, who.user)
            note = strings_for(known.locale if known else None)("slack.fork_needs_text")
            await ack(response_action="errors", errors={bk.INPUT: note})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")

        async def private(message: str) -> None:
            await self._api.tell(who.user, meta["c"], message)

        async def work() -> None:
            await self.fork(
                who,
                thread_ref(who.team, meta["c"], meta["t"]),
                meta["m"],
                model_text=text,
                shown_text=escape(text),
                private=private,
            )

        await self._shared.once(who.team, body.get("trigger_id"), private, work, user=who.user)

    async def on_fork_edit(
        self,
        ack: Any,
        body: dict[str, Any],
        action: dict[str, Any],
        respond: Any,
        context: AsyncBoltContext,
    ) -> None:
        await ack()
        data = json.loads(action.get("value") or "{}")
        who = requester(context)

        async def private(message: str) -> None:
            await respond(text=message, replace_original=False)

        async def work() -> None:
            forked = await self.fork(
                who,
                thread_ref(who.team, data["c"], data["t"]),
                data["m"],
                model_text=slack_to_text(data["x"], context.bot_user_id),
                shown_text=data["x"],
                private=private,
            )
            if forked:
                await respond(delete_original=True)

        await self._shared.once(who.team, body.get("trigger_id"), private, work, user=who.user)
