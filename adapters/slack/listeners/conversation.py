"""Conversation listeners: mentions, direct messages and thread replies become engine turns.

Also ``start``: the ``/haven new`` turn (the command and its modal live in ``admin``), whose
conversation is the thread under a message Haven posts for the person.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.payload_utils import is_assistant_event

from adapters.slack.listeners.context import Requester, requester
from adapters.slack.listeners.inbox import Admitted, admitted, with_author
from adapters.slack.listeners.shared import CANNOT_POST, Private, Shared
from adapters.slack.translate import PLATFORM, SlackMessage, escape, message_from_event, quote, thread_ref
from bot.failures import log_failure, retry_turn
from bot.i18n import strings_for
from bot.locks import KeyedLocks
from bot.notices import TURN_FAILED
from bot.ports import StorageUnavailable
from bot.types import IncomingMessage, Origin, TurnResult

log = logging.getLogger(__name__)

# The events this group listens to; manifest.yml must subscribe to the same (a test checks it).
EVENTS = ("app_mention", "message")


# What becomes of an edited message (``message_changed``): the fork group's offer to continue from it.
OnEdit = Callable[[Mapping[str, Any], str, str | None], Awaitable[None]]


def ignored_message(body: Mapping[str, Any], team: str, bot_user_id: str | None) -> bool:
    """Whether the ``message`` event in ``body`` is one that no listener acts on: not an edit
    (``on_message``'s fork offer), not in a DM (Bolt's assistant middleware looks at those), and no
    person's words for Haven (``message_from_event``) — above all the ``message`` copy of a top-level
    @mention, left to its ``app_mention``. ``adapters.slack.intake`` acknowledges these at once."""
    event = body.get("event")
    if not isinstance(event, Mapping) or event.get("type") != "message":
        return False
    if event.get("subtype") == "message_changed" or event.get("channel_type") == "im":
        return False  # an edit, or a DM (its assistant threads are Bolt's assistant middleware's)
    if is_assistant_event(dict(body)):
        return False
    try:
        msg = message_from_event(event, event_type="message", team_id=team, bot_user_id=bot_user_id)
    except (TypeError, ValueError, AttributeError):
        return False  # malformed: Bolt and the listener decide, as ever
    return msg is None


class Conversation:
    def __init__(self, shared: Shared, *, on_edit: OnEdit) -> None:
        self._shared = shared
        self._engine = shared.engine
        self._api = shared.api
        self._on_edit = on_edit
        # Slack delivers events concurrently; a lock per thread keeps them (and our replies) in arrival
        # order even when one needs a users.info round trip and the next does not.
        self._thread_lock = KeyedLocks()

    def register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self.on_mention)
        # One listener for every message subtype: we decide what to ignore, and Bolt never logs an
        # "unhandled request" with the payload in it.
        app.event("message")(self.on_message)

    async def on_mention(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        with self._shared.track():
            await self._on_words(event, "app_mention", requester(context), context)

    async def on_message(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        with self._shared.track():
            who = requester(context)
            if event.get("subtype") == "message_changed":
                await self._on_edit(event, who.team, context.bot_user_id)
            else:
                await self._on_words(event, "message", who, context)

    async def _on_words(
        self, event: Mapping[str, Any], event_type: str, who: Requester, context: AsyncBoltContext
    ) -> None:
        team = who.team
        msg = message_from_event(event, event_type=event_type, team_id=team, bot_user_id=context.bot_user_id)
        if msg is None:
            return
        accepted = admitted(context)
        if accepted is not None:
            await self._entry_turn(msg, accepted)
            return
        if not msg.has_content:
            if msg.origin in (Origin.MENTION, Origin.DIRECT):
                in_thread = msg.thread.thread if msg.thread.thread != msg.ts else None
                hello = strings_for((await who.person(msg.user_id)).locale)("slack.empty_mention")
                await self._api.ephemeral(msg.thread.channel, msg.user_id, hello, in_thread)
            return
        # Taken before the first await, so this process handles a thread's messages in arrival order.
        async with self._thread_lock(msg.thread.key):
            # Slack got its 200 long ago and will not deliver this again: a passing outage (the database
            # restarting) is waited out (bot.failures.retry_turn). A turn that already stored the message
            # comes back as a duplicate and stays silent (see docs/slack.md).
            try:
                await retry_turn(
                    lambda attempt: self._turn(msg, who, attempt),
                    shown=lambda exc: getattr(exc, "haven_reply_shown", False),
                    logger=log,
                    event="slack turn failed",
                    workspace=team,
                )
            except Exception as exc:
                log_failure(log, "slack turn failed", exc, workspace=team)
                if getattr(exc, "haven_ours", False) and not getattr(exc, "haven_reply_shown", False):
                    # A message of Haven's conversation that cannot be answered gets a note, not silence.
                    await self._api.post(msg.thread.channel, escape(TURN_FAILED), thread_ts=msg.thread.thread)

    async def _entry_turn(self, msg: SlackMessage, accepted: Admitted) -> None:
        """The turn of a message the inbox recorded (``listeners.inbox``). Not retried here, and no
        failure note: whatever this process cannot finish, recovery finishes (in this process or
        another), continuing the reply this turn started rather than posting a second one."""
        entry, ticket, team = accepted.entry, accepted.ticket, msg.thread.workspace
        try:
            try:
                await ticket.wait(self._engine.lock_wait_seconds)
            except TimeoutError:
                log.info("slack message left to recovery: its thread is busy", extra={"workspace": team})
                return
            # Events still being acknowledged go first (bot.admission): Slack gives them 3 s, this turn's
            # message is already in the inbox.
            await self._engine.admission.after_intake()
            # Who wrote it: looked up now, off the acknowledgement's path (``listeners.inbox.recorded``).
            # The turn goes ahead whatever happens to the lookup: the entry is held by this process, and
            # a listener that gave up here would leave it held (renewed) and never answered.
            try:
                message = with_author(entry.message, await self._api.person(team, msg.user_id))
            except Exception as exc:
                log_failure(log, "slack author lookup failed; answered as recorded", exc, workspace=team)
                message = entry.message
            channel, thread_ts = msg.thread.channel, msg.thread.thread

            async def on_ref(ts: str) -> None:
                await self._engine.record_reply_ref(entry.hold, ts)

            live = self._shared.live(channel, thread_ts, team, msg.user_id, on_ref=on_ref, entry=entry.id)

            async def deliver(result: TurnResult) -> None:
                await self._shared.render(
                    result,
                    channel=channel,
                    thread_ts=thread_ts,
                    user_id=msg.user_id,
                    live=live,
                    entry=entry.id,
                    locale=message.locale,
                )

            try:
                result = await self._engine.handle_message(message, live, deliver, entry)
            except Exception as exc:
                log_failure(log, "slack turn failed; left to recovery", exc, workspace=team)
                return
            log.info(
                "slack message handled",
                extra={
                    "workspace": team,
                    "origin": msg.origin.value,
                    "status": result.status.value,
                    "reply": live.mode or "post",
                },
            )
        finally:
            ticket.leave()

    async def _turn(self, msg: SlackMessage, who: Requester, attempt: int = 0) -> None:
        # Most thread replies in a busy channel are not ours: settle that before asking who wrote it.
        if msg.origin is Origin.THREAD_REPLY and not await self._engine.owns_thread(msg.thread):
            return
        try:
            await self._answer_message(msg, who, attempt)
        except Exception as exc:
            exc.haven_ours = True  # type: ignore[attr-defined]  # Haven's conversation: answer the failure
            raise

    async def _answer_message(self, msg: SlackMessage, who: Requester, attempt: int) -> None:
        team = who.team
        # The author translate found in the event (the one the reply is for), not just Bolt's guess.
        person = await who.person(msg.user_id)
        channel, thread_ts = msg.thread.channel, msg.thread.thread
        live = self._shared.live(channel, thread_ts, team, msg.user_id)

        async def deliver(result: TurnResult) -> None:
            # Called by the engine while it still holds the thread's lock: replies keep turn order
            # even when another process takes the thread's next turn.
            await self._shared.render(
                result,
                channel=channel,
                thread_ts=thread_ts,
                user_id=msg.user_id,
                live=live,
                locale=person.locale,
            )

        result = await self._shared.answer(
            live,
            self._engine.handle_message(msg.incoming(person.author, person.locale), live, deliver),
            person.locale,
        )
        log.log(
            logging.WARNING if attempt else logging.INFO,
            "slack message handled" + (" on a later attempt" if attempt else ""),
            extra={
                "workspace": team,
                "origin": msg.origin.value,
                "status": result.status.value,
                "reply": live.mode or "post",
                "attempt": attempt + 1,
            },
        )

    async def start(
        self, who: Requester, channel: str, model_text: str, shown_text: str, private: Private
    ) -> None:
        """``/haven new``: a top-level message carries the person's words; the conversation is its thread."""
        person = await who.person()
        if not model_text.strip():
            await private(strings_for(person.locale)("slack.new_needs_text"))
            return
        team, user = who.team, who.user
        # Before the post: where Haven does not answer, nothing appears. A DM ("D…") is always answered.
        if not channel.startswith("D") and (
            note := await self._engine.not_here(PLATFORM, team, channel, person.locale)
        ):
            await private(note)
            return
        # A public post, in the language of the person who started the conversation.
        t = strings_for(person.locale)
        header = t("slack.started", user=f"<@{user}>")
        ts = await self._api.post(channel, f"{header}\n{quote(shown_text)}")
        if ts is None:
            await private(t.localise(CANNOT_POST))
            return
        msg = IncomingMessage(
            thread_ref(team, channel, ts),
            person.author,
            model_text,
            ts,
            origin=Origin.NEW_COMMAND,
            dedupe_key=f"{channel}:{ts}",
            locale=person.locale,
        )
        live = self._shared.live(channel, ts, team, user)
        try:
            result = await self._shared.answer(live, self._engine.handle_message(msg, live), person.locale)
        except StorageUnavailable:
            # The database went away after the post: take it back rather than leave a conversation
            # that never started (the caller tells the person to try again).
            if not live.started:
                await self._api.delete(channel, ts)
            raise
        await self._shared.render(
            result,
            channel=channel,
            thread_ts=ts,
            user_id=user,
            private=private,
            live=live,
            locale=person.locale,
        )
