"""The durable inbox on Slack: a person's message is recorded before Slack gets its acknowledgement.

``AcceptMessages`` is a Bolt global middleware registered after ``WorkspaceContext``. Middleware runs
before Bolt acknowledges (in HTTP mode and in Socket Mode alike), so for every ``message`` and
``app_mention`` event with words it translates the event, asks ``Engine.accept``, and:

- ``NEW``: puts the entry (and the message's place in its thread's queue) into Bolt's context; the
  conversation listener runs the turn with it.
- ``DUPLICATE`` (the ``app_mention`` + ``message`` pair, Slack's retries): acknowledges, runs nothing.
- ``NOT_OURS`` (a thread reply in a thread that is not Haven's): acknowledges, runs nothing.
- ``ELSEWHERE`` (a channel where the workspace's admins do not let Haven answer): nothing recorded; the
  person gets the engine's private note (``Engine.gate``: once per person and channel) as an ephemeral
  message, and nothing is posted in the channel.
- ``StorageUnavailable``: answers ``503`` and acknowledges nothing: Slack's HTTP delivery tries again
  later, and in Socket Mode Bolt sends no ack for a non-200 (``slack_bolt.adapter.socket_mode``), so
  Slack redelivers the event. Nothing is answered that was not recorded, nothing recorded is forgotten.

``Arrivals`` keeps a thread's messages in arrival order although accepting them awaits the database:
each takes its place in its thread's queue before its first await, and its turn waits for the one
before it (at most ``Engine.lock_wait_seconds``; after that the message is the inbox's to recover).

``SlackRecovery`` is Slack's ``bot.ports.RecoverySink``: a recovered turn streams into the entry's
thread, continuing the message an earlier attempt left (``entry.reply_ref``, by ``chat.update``)
instead of posting a second one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from adapters.slack.api import Person
from adapters.slack.listeners.context import requester
from adapters.slack.listeners.shared import Shared
from adapters.slack.reply import LiveReply
from adapters.slack.translate import SlackMessage, drawn_items, message_from_event
from adapters.slack.workspaces import act_for
from bot.failures import log_failure
from bot.ports import ReplyStream, StorageUnavailable
from bot.types import Accepted, Author, InboxEntry, IncomingMessage, Origin, TurnResult

log = logging.getLogger(__name__)

_ACCEPTED = "haven_inbox_entry"
ACCEPTED_EVENTS = ("app_mention", "message")


class Ticket:
    """One message's place in its thread's queue (``Arrivals``)."""

    def __init__(self, arrivals: Arrivals, key: str, before: asyncio.Future[None] | None) -> None:
        self._arrivals = arrivals
        self._key = key
        self._before = before
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def wait(self, seconds: float) -> None:
        """Until the message before this one in its thread is done; ``TimeoutError`` after ``seconds``."""
        if self._before is not None and not self._before.done():
            async with asyncio.timeout(seconds):
                await asyncio.shield(self._before)

    def leave(self) -> None:
        """Done (answered, left to recovery, or not to be answered here): the next one may go."""
        if not self._done.done():
            self._done.set_result(None)
        self._arrivals.forget(self._key, self._done)


class Arrivals:
    """Per thread, the order in which its messages reached this process."""

    def __init__(self) -> None:
        self._last: dict[str, asyncio.Future[None]] = {}

    def enter(self, key: str) -> Ticket:
        """Take the next place in ``key``'s queue; call before any await to keep arrival order."""
        ticket = Ticket(self, key, self._last.get(key))
        self._last[key] = ticket._done
        return ticket

    def forget(self, key: str, done: asyncio.Future[None]) -> None:
        if self._last.get(key) is done:
            del self._last[key]


@dataclass(frozen=True, slots=True)
class Admitted:
    """What the middleware leaves the listener: the inbox entry and the message's place in line."""

    entry: InboxEntry
    ticket: Ticket


def admitted(context: AsyncBoltContext) -> Admitted | None:
    found = context.get(_ACCEPTED)
    return found if isinstance(found, Admitted) else None


def admitted_context(entry: Admitted) -> dict[str, Any]:
    """A Bolt request's starting context for a message already recorded (``AcceptMessages.admit``
    before Bolt's dispatch): the middleware then passes it on to the listeners as it is."""
    return {_ACCEPTED: entry}


class AcceptMessages(AsyncMiddleware):
    """Bolt global middleware: record a person's message in the inbox before Slack is acknowledged."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self.arrivals = Arrivals()

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt calls it by this name
    ) -> BoltResponse | None:
        context = req.context
        if admitted(context) is not None:
            return await next()  # recorded before Bolt's dispatch (``adapters.slack.intake``)
        outcome = await self.admit(req.body, requester(context).team, context.bot_user_id)
        if isinstance(outcome, BoltResponse):
            return outcome
        if outcome is not None:
            context[_ACCEPTED] = outcome
        return await next()

    async def admit(
        self, body: dict[str, Any], team: str, bot_user_id: str | None
    ) -> Admitted | BoltResponse | None:
        """Record the person's message in ``body`` (a verified request's payload) for ``team``: the
        ``Admitted`` entry when it is new, the response that acknowledges (or refuses: 503) it when
        nothing is to run, None when it is no person's message for the inbox (the listeners decide)."""
        event = body.get("event") if body.get("type") == "event_callback" else None
        if not isinstance(event, dict) or event.get("type") not in ACCEPTED_EVENTS:
            return None
        try:
            msg = message_from_event(
                event, event_type=str(event["type"]), team_id=team, bot_user_id=bot_user_id
            )
        except (TypeError, ValueError, AttributeError):
            msg = None  # a malformed payload (a forger's, a fuzzer's) is no person's message: not recorded
        if msg is None or not msg.has_content:
            return None  # not a person's words for Haven, or an empty mention (the listener's)
        ticket = self.arrivals.enter(msg.thread.key)  # before the first await
        engine = self._shared.engine
        try:
            if msg.origin is Origin.THREAD_REPLY and not await engine.owns_thread(msg.thread):
                ticket.leave()
                return BoltResponse(status=200, body="")
            incoming = recorded(msg, self._shared.api.known_person(team, msg.user_id))
            accepted, entry = await engine.accept(incoming)
            if accepted is Accepted.ELSEWHERE:
                await self._elsewhere(msg, incoming)
        except StorageUnavailable as exc:
            ticket.leave()
            log_failure(log, "slack event not accepted: database unavailable", exc, workspace=team)
            # Not acknowledged: Slack delivers it again (HTTP retries; Socket Mode gets no ack).
            return BoltResponse(status=503, body="")
        except BaseException:
            ticket.leave()
            raise
        if entry is None:
            ticket.leave()
            if accepted is Accepted.DUPLICATE:
                log.info("slack duplicate delivery acknowledged", extra={"workspace": team})
            return BoltResponse(status=200, body="")
        return Admitted(entry, ticket)

    async def _elsewhere(self, msg: SlackMessage, incoming: IncomingMessage) -> None:
        # The note is in the person's language, so they are looked up here (only in a channel Haven
        # does not answer in, and cached): the one users.info an acknowledgement may wait for.
        person = await self._shared.api.person(msg.thread.workspace, msg.user_id)
        incoming = with_author(incoming, person)
        gated = await self._shared.engine.gate(incoming)
        if gated is None:
            return  # allowed again between the two questions: the next message is answered
        channel, thread_ts = msg.thread.channel, msg.thread.thread
        # In the thread the person wrote in; for a top-level mention, in the channel, where they look.
        where = thread_ts if thread_ts != msg.ts else None

        async def private(text: str) -> None:
            await self._shared.api.ephemeral(channel, msg.user_id, text, where)

        await self._shared.render(
            gated,
            channel=channel,
            thread_ts=thread_ts,
            user_id=msg.user_id,
            private=private,
            locale=incoming.locale,
        )


def recorded(msg: SlackMessage, person: Person | None) -> IncomingMessage:
    """The message as the inbox records it while Slack waits: its author as far as this process knows
    without asking Slack (``SlackApi.known_person``), else only their id (as their name too) until the
    turn looks them up (``with_author``)."""
    if person is None:
        return msg.incoming(Author(msg.user_id, msg.user_id))
    return msg.incoming(person.author, person.locale)


def with_author(message: IncomingMessage, person: Person) -> IncomingMessage:
    """``message`` with its author (name, admin standing, locale) as Slack says now."""
    return dataclasses.replace(message, author=person.author, locale=person.locale or message.locale)


class SlackRecovery:
    """Slack's ``bot.ports.RecoverySink``: answers recovered inbox entries in their threads."""

    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    async def message(self, entry: InboxEntry) -> IncomingMessage:
        # Recorded while Slack waited, perhaps with only the author's id (``recorded``): look them up.
        thread = entry.message.thread
        act_for(self._shared.api.client, thread.workspace)
        person = await self._shared.api.person(thread.workspace, entry.message.author.id)
        return with_author(entry.message, person)

    def reply_stream(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]]) -> ReplyStream:
        # No request to take the workspace from: the entry's workspace's token, for this task's calls.
        act_for(self._shared.api.client, entry.message.thread.workspace)
        return self._live(entry, on_ref)

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        act_for(self._shared.api.client, entry.message.thread.workspace)
        # In the reader's language: their locale as recorded, else as Slack says (cached by ``message``).
        locale = (await self.message(entry)).locale
        live = stream if isinstance(stream, LiveReply) else None
        if live is None and entry.reply_ref:
            live = self._live(entry, None)
        thread = entry.message.thread
        drawn: frozenset[str] = frozenset()
        if live is None:
            # A stored result drawn again: its first drawing may have reached Slack while the database
            # was away (the entry never heard it was delivered). Look before posting twice.
            api, since = self._shared.api, entry.message.message_id
            shown = await api.thread_replies(thread.channel, thread.thread, since)
            drawn = drawn_items(shown or [], entry.id)
        await self._shared.render(
            result,
            channel=thread.channel,
            thread_ts=thread.thread,
            user_id=entry.message.author.id,
            live=live,
            entry=entry.id,
            drawn=drawn,
            locale=locale,
        )
        log.info(
            "slack recovered turn drawn",
            extra={
                "workspace": thread.workspace,
                "status": result.status.value,
                "updated": bool(entry.reply_ref),
                "already_shown": len(drawn),
            },
        )

    def _live(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]] | None) -> LiveReply:
        thread = entry.message.thread
        return self._shared.live(
            thread.channel,
            thread.thread,
            thread.workspace,
            entry.message.author.id,
            reply_ts=entry.reply_ref,
            on_ref=on_ref,
            entry=entry.id,
        )
