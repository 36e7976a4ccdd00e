"""What every listener group shares: the core, the Web API wrapper, and the state of running turns.

One small object (``Shared``) instead of module globals, so two apps in one process (the tests build
several) never see each other's in-flight turns or streaming memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from adapters.slack import blocks as bk
from adapters.slack.api import SlackApi
from adapters.slack.render import SlackRenderer, hints, send_alert
from adapters.slack.reply import LiveReply
from adapters.slack.translate import PLATFORM
from bot.failures import log_failure
from bot.i18n import strings_for
from bot.notices import DATABASE_UNAVAILABLE, TURN_FAILED
from bot.ports import CoreServices, StorageUnavailable
from bot.presentation import CrisisResources, render
from bot.types import AdminAlert, CrisisCard, TurnResult

log = logging.getLogger(__name__)

# A workspace whose chat.startStream said "not available" is asked again after this long.
NO_STREAM_SECONDS = 3600.0
# How long the note that the database is away waits for the person's locale (then it is English).
LOCALE_LOOKUP_SECONDS = 3.0

NOT_FORKABLE = "Only your own messages in a Haven conversation can be forked."
CANNOT_POST = (
    "Haven can't post in this conversation. Invite it first (`/invite @Haven`), or send it a direct message."
)

# Answers the person who acted, privately (a command's ``respond``, or an ephemeral message / DM).
Private = Callable[[str], Awaitable[None]]


class Shared:
    def __init__(self, services: CoreServices, api: SlackApi, *, streaming: bool = True) -> None:
        self.services = services
        self.engine = services.engine
        self.api = api
        self._streaming = streaming
        self._no_stream: dict[str, float] = {}  # workspace → until when it is not asked to stream
        self._inflight: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        """Remember the running listener, so shutdown can let it finish its reply."""
        task = asyncio.current_task()
        if task is not None:
            self._inflight.add(task)
        try:
            yield
        finally:
            if task is not None:
                self._inflight.discard(task)

    async def drain(self, seconds: float) -> None:
        pending = [t for t in self._inflight if t is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=seconds)

    # -- commands and interactions --------------------------------------------------------------------

    async def once(
        self,
        team: str,
        trigger_id: str | None,
        private: Private,
        work: Callable[[], Awaitable[None]],
        *,
        user: str | None = None,
    ) -> None:
        """Run a command's or interaction's ``work`` (after its ack): once per delivery, and with a
        private note instead of anything half-done while the database is away (in the language of
        ``user``, the person who acted: ``unavailable_note``).

        Slack gives every command, shortcut, button press and form submission its own ``trigger_id``;
        the same signed request delivered again (a replay, a proxy's retry) carries the same one, and
        the engine lets it act only once, in any process.
        """
        with self.track():
            try:
                if trigger_id and not await self.engine.first_delivery(PLATFORM, team, trigger_id):
                    log.info("slack interaction replay dropped", extra={"workspace": team})
                    return
                await work()
            except StorageUnavailable as exc:
                log_failure(log, "slack interaction: database unavailable", exc, workspace=team)
                await private(await self.unavailable_note(team, user))

    async def unavailable_note(self, team: str, user: str | None) -> str:
        """``DATABASE_UNAVAILABLE`` in ``user``'s language. Their locale comes from the cache, else from
        ``users.info`` (Slack's, there while the database is away), briefly; on any failure, or with no
        user, the note is said in English rather than not at all."""
        if user:
            try:
                person = await asyncio.wait_for(self.api.person(team, user), LOCALE_LOOKUP_SECONDS)
                return strings_for(person.locale).localise(DATABASE_UNAVAILABLE)
            except Exception as exc:  # the note must go out whatever the lookup did
                log_failure(log, "slack locale lookup failed", exc, level=logging.WARNING, workspace=team)
        return DATABASE_UNAVAILABLE

    # -- replies while the model writes ----------------------------------------------------------------

    def live(
        self,
        channel: str,
        thread_ts: str,
        team: str,
        user_id: str,
        *,
        reply_ts: str | None = None,
        on_ref: Callable[[str], Awaitable[None]] | None = None,
        entry: str | None = None,
    ) -> LiveReply:
        """The reply to one message, written while the model writes; ``reply_ts`` continues a message
        an earlier attempt left, ``on_ref`` hears the reply's ts once it exists (``LiveReply``);
        ``entry`` marks the posts it makes (``SlackRenderer``)."""
        until = self._no_stream.get(team)
        stream = self._streaming and (until is None or until <= time.monotonic())

        def unavailable(error: str) -> None:
            log.info("slack streaming unavailable in workspace", extra={"workspace": team, "error": error})
            self._no_stream[team] = time.monotonic() + NO_STREAM_SECONDS

        async def help_first(card: CrisisCard) -> None:
            renderer = SlackRenderer(self.api, channel=channel, thread_ts=thread_ts, entry=entry)
            await renderer.crisis_card(CrisisResources(card))

        return LiveReply(
            self.api.client,
            help_first=help_first,
            channel=channel,
            thread_ts=thread_ts,
            team=team,
            user=user_id,
            stream=stream,
            on_stream_unavailable=unavailable,
            reply_ts=reply_ts,
            on_ref=on_ref,
        )

    async def answer(
        self, live: LiveReply, turn: Awaitable[TurnResult], locale: str | None = None
    ) -> TurnResult:
        """Run one engine turn that writes into ``live``; a shown reply is never left unfinished (the
        note in the language of ``locale``, the person's)."""
        try:
            return await turn
        except BaseException as exc:
            if live.has_text:
                # The model answered, so this process owned the turn and the message is stored: a
                # redelivery would be a duplicate. Say so in the thread instead of going silent.
                exc.haven_reply_shown = True  # type: ignore[attr-defined]  # do not run the turn again
                await asyncio.shield(live.fail(strings_for(locale).localise(TURN_FAILED)))
            raise

    # -- rendering ------------------------------------------------------------------------------------

    async def render(
        self,
        result: TurnResult,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        private: Private | None = None,
        live: LiveReply | None = None,
        end_command: bool = False,
        entry: str | None = None,
        drawn: frozenset[str] = frozenset(),
        locale: str | None = None,
    ) -> None:
        """Draw a result with the core's presentation (``bot.presentation``): nothing decided here.
        ``entry`` and ``drawn``: see ``SlackRenderer``; ``locale``: Slack's for ``user_id``
        (``SlackApi.person``), whose language the notices are in."""
        renderer = SlackRenderer(
            self.api,
            channel=channel,
            thread_ts=thread_ts,
            private=private,
            live=live,
            entry=entry,
            drawn=drawn,
        )
        shown = live is not None and live.started
        strings = strings_for(locale)
        await render(
            renderer,
            result,
            user_id=user_id,
            hints=hints(strings),
            strings=strings,
            reply_shown=shown,
            end_command=end_command,
        )

    async def alert(self, alert: AdminAlert) -> None:
        await send_alert(self.api, alert)


def input_value(view: Mapping[str, Any]) -> str:
    """The text a person typed into one of Haven's modals (``blocks`` gives each one input)."""
    values = ((view.get("state") or {}).get("values") or {}).get(bk.INPUT) or {}
    return str((values.get(bk.INPUT) or {}).get("value") or "")
