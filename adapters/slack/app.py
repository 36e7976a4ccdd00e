"""Haven's Slack app: one Bolt ``AsyncApp`` whose listeners translate Slack ⇄ engine and nothing else.

Policy lives in the engine and ``bot.admin``; this module parses Slack payloads (via ``translate``),
asks the core, and renders the answer with Block Kit (via ``blocks``). Every listener acknowledges
first, so in HTTP mode Slack gets its 200 long before a model call finishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks as bk
from adapters.slack.api import SlackApi
from adapters.slack.render import HINTS, SlackRenderer, send_alert
from adapters.slack.reply import LiveReply
from adapters.slack.retry import install_retry_handlers
from adapters.slack.translate import (
    PLATFORM,
    SlackMessage,
    edit_from_event,
    escape,
    ids_in,
    is_workspace_admin,
    message_from_event,
    parse_command,
    quote,
    slack_to_text,
    split_link_and_text,
    thread_ref,
    user_display,
)
from bot.admin import MAX_CRISIS_CHARS, SETTINGS, BadSetting, NotAllowed, describe_settings
from bot.failures import log_failure, retry_turn, where
from bot.locks import KeyedLocks
from bot.notices import (
    ADMIN_ONLY,
    DEFAULT_CRISIS_MESSAGE,
    FEEDBACK_THANKS,
    NOT_AUTHOR,
    TURN_FAILED,
    reason_phrase,
)
from bot.ports import CoreServices
from bot.presentation import CrisisResources, render
from bot.types import (
    AdminAlert,
    Author,
    CrisisCard,
    Digest,
    ForkRequest,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

log = logging.getLogger(__name__)

# What the app registers; manifest.yml must declare the same (a test checks both directions).
COMMAND = "/haven"
SHORTCUT_EDIT_FORK = "haven_edit_fork"
EVENTS = ("app_mention", "message")

USER_CACHE_SECONDS = 60.0
_USER_CACHE_MAX = 5000
# A workspace whose chat.startStream said "not available" is asked again after this long.
NO_STREAM_SECONDS = 3600.0
DIGEST_LINKS = 20  # reported threads linked in one digest; the rest are counted

HELP = """\
*Haven* talks with you in threads.
• *Start:* mention @Haven in a channel (it answers in a thread under your message), send it a direct \
message, or `/haven new <message>`. Reply in the thread to continue; no mention needed.
• *End:* `/haven end <thread link>` closes a conversation (⋯ → *Copy link* on any message in the thread; \
Slack doesn't tell apps which thread a command was typed in).
• *Fork:* ⋯ → *Edit & fork* on one of your earlier messages, or `/haven fork <message link> <new text>`, \
continues from that point with new text in a new thread.
• *Admins:* `/haven resources show|set|reset|preview [locale]`, `/haven settings [name value]`, \
`/haven endings`, `/haven feedback`."""

NOT_FORKABLE = "Only your own messages in a Haven conversation can be forked."
CANNOT_POST = (
    "Haven can't post in this conversation. Invite it first (`/invite @Haven`), or send it a direct message."
)
END_USAGE = (
    "Usage: `/haven end <thread link>` — use ⋯ → *Copy link* on any message in the Haven thread you want "
    "to close. You can also just ask Haven in the thread to end the conversation."
)
FORK_USAGE = (
    "Usage: `/haven fork <message link> <new text>` — ⋯ → *Copy link* on your message. Or use ⋯ → "
    "*Edit & fork* on the message itself."
)
EMPTY_MENTION = "Hi! Write your message after @Haven and I'll answer in a thread."

Private = Callable[[str], Awaitable[None]]


class _NoPayloads(logging.Filter):
    """Bolt puts request bodies (people's words) into a few log lines; keep only what happened."""

    _REWRITES = (
        ("Invalid request signature", "Invalid request signature detected (request refused)"),
        ("Unhandled request", "Unhandled request (no listener matched; payload not logged)"),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        if "`token` will be unused" in message:
            return False  # Bolt reads SLACK_BOT_TOKEN itself; we hand it the client that uses it
        for start, replacement in self._REWRITES:
            if message.startswith(start):
                record.msg, record.args = replacement, ()
        if message.startswith("Failed to run listener function") and record.exc_info:
            # An exception's text can carry people's words (a database error quotes its parameters):
            # keep its type and where it happened, not its message.
            exc = record.exc_info[1]
            if exc is not None:
                record.msg, record.args = f"listener failed: {type(exc).__name__} at {where(exc)}", ()
                record.exc_info, record.exc_text = None, None
        return True


def bolt_logger() -> logging.Logger:
    """The base logger Bolt derives its component loggers from (they copy its filters)."""
    logger = logging.getLogger("adapters.slack.bolt")
    if not any(isinstance(f, _NoPayloads) for f in logger.filters):
        logger.addFilter(_NoPayloads())
    return logger


@dataclass(frozen=True, slots=True)
class _Person:
    author: Author
    locale: str | None


def build_app(
    services: CoreServices,
    client: AsyncWebClient,
    *,
    signing_secret: str = "",
    process_before_response: bool = False,
    user_cache_seconds: float = USER_CACHE_SECONDS,
    streaming: bool = True,
) -> AsyncApp:
    """The Bolt app for ``services``; ``client`` decides where Web API calls go (Slack, GovSlack, a mock)."""
    return SlackBot(
        services,
        client,
        signing_secret=signing_secret,
        process_before_response=process_before_response,
        user_cache_seconds=user_cache_seconds,
        streaming=streaming,
    ).app


class SlackBot:
    def __init__(
        self,
        services: CoreServices,
        client: AsyncWebClient,
        *,
        signing_secret: str = "",
        process_before_response: bool = False,
        user_cache_seconds: float = USER_CACHE_SECONDS,
        streaming: bool = True,
    ) -> None:
        self._services = services
        self._engine = services.engine
        # 429s (after Retry-After), 5xx and dropped connections are retried where that cannot post twice.
        self._client = install_retry_handlers(client)
        self.api = SlackApi(self._client)
        self._safe, self._post, self._ephemeral = self.api.safe, self.api.post, self.api.ephemeral
        self._tell, self._permalink, self._open = self.api.tell, self.api.permalink, self.api.open
        self._cache_seconds = user_cache_seconds
        self._streaming = streaming
        self._no_stream: dict[str, float] = {}  # workspace → until when it is not asked to stream
        self.workspace_url: str | None = None  # from auth.test, for links without chat.getPermalink
        self._people: dict[tuple[str, str], tuple[float, _Person]] = {}
        self._inflight: set[asyncio.Task[Any]] = set()
        # Slack delivers events concurrently; a lock per thread keeps them (and our replies) in arrival
        # order even when one needs a users.info round trip and the next does not.
        self._thread_lock = KeyedLocks()
        self.app = AsyncApp(
            name="haven",
            logger=bolt_logger(),
            client=client,
            signing_secret=signing_secret,
            process_before_response=process_before_response,
        )
        self._register(self.app)

    def _register(self, app: AsyncApp) -> None:
        app.event("app_mention")(self._on_mention)
        # One listener for every message subtype: we decide what to ignore, and Bolt never logs an
        # "unhandled request" with the payload in it.
        app.event("message")(self._on_message)
        app.command(COMMAND)(self._on_command)
        app.shortcut(SHORTCUT_EDIT_FORK)(self._on_edit_fork_shortcut)
        app.action(bk.ACTION_MISTAKE)(self._on_mistake)
        app.action(bk.ACTION_FORK_EDIT)(self._on_fork_edit)
        app.view(bk.VIEW_FEEDBACK)(self._on_feedback_submit)
        app.view(bk.VIEW_FORK)(self._on_fork_submit)
        app.view(bk.VIEW_NEW)(self._on_new_submit)
        app.view(bk.VIEW_RESOURCES)(self._on_resources_submit)

    # -- lifecycle ------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _track(self) -> Iterator[None]:
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

    # -- Slack calls ----------------------------------------------------------------------------------

    async def _person(self, team: str, user_id: str, *, fresh: bool = False) -> _Person:
        """Who wrote this, and are they an admin of this workspace?

        Cached briefly per (team, user) for conversation turns; ``fresh`` (admin commands) always asks
        Slack, so a demoted admin loses access at once.
        """
        key, now = (team, user_id), time.monotonic()
        hit = self._people.get(key)
        if hit is not None and hit[0] > now and not fresh:
            return hit[1]
        resp = await self._safe("users.info", self._client.users_info(user=user_id, include_locale=True))
        user = resp.get("user") if resp is not None else None
        if not isinstance(user, dict):
            # Not cached: a passing failure must not refuse an admin for the whole TTL.
            return _Person(Author(user_id, user_id), None)
        locale = user.get("locale")
        person = _Person(
            Author(user_id, user_display(user), is_workspace_admin(user, team)),
            str(locale) if locale else None,
        )
        if len(self._people) >= _USER_CACHE_MAX:
            live = [(k, v) for k, v in self._people.items() if v[0] > now]
            self._people = dict(live[-_USER_CACHE_MAX // 2 :])
        self._people[key] = (now + self._cache_seconds, person)
        return person

    @staticmethod
    def _team(context: AsyncBoltContext, body: Mapping[str, Any]) -> str:
        # The installation's workspace, not the clicker's: a Slack Connect guest acts in ours.
        auth = context.authorize_result
        team = (auth.team_id if auth is not None else None) or context.team_id or body.get("team_id")
        return str(team or (body.get("team") or {}).get("id") or "")

    # -- rendering ------------------------------------------------------------------------------------

    # -- replies while the model writes ----------------------------------------------------------------

    def _live(self, channel: str, thread_ts: str, team: str, user_id: str) -> LiveReply:
        until = self._no_stream.get(team)
        stream = self._streaming and (until is None or until <= time.monotonic())

        def unavailable(error: str) -> None:
            log.info("slack streaming unavailable in workspace", extra={"workspace": team, "error": error})
            self._no_stream[team] = time.monotonic() + NO_STREAM_SECONDS

        async def help_first(card: CrisisCard) -> None:
            renderer = SlackRenderer(self.api, channel=channel, thread_ts=thread_ts)
            await renderer.crisis_card(CrisisResources(card))

        return LiveReply(
            self._client,
            help_first=help_first,
            channel=channel,
            thread_ts=thread_ts,
            team=team,
            user=user_id,
            stream=stream,
            on_stream_unavailable=unavailable,
        )

    async def _answer(self, live: LiveReply, turn: Awaitable[TurnResult]) -> TurnResult:
        """Run one engine turn that writes into ``live``; a shown reply is never left unfinished."""
        try:
            return await turn
        except BaseException as exc:
            if live.has_text:
                # The model answered, so this process owned the turn and the message is stored: a
                # redelivery would be a duplicate. Say so in the thread instead of going silent.
                exc.haven_reply_shown = True  # type: ignore[attr-defined]  # do not run the turn again
                await asyncio.shield(live.fail(TURN_FAILED))
            raise

    # -- rendering ------------------------------------------------------------------------------------

    async def _render(
        self,
        result: TurnResult,
        *,
        channel: str,
        thread_ts: str,
        user_id: str,
        private: Private | None = None,
        live: LiveReply | None = None,
        end_command: bool = False,
    ) -> None:
        """Draw a result with the core's presentation (``bot.presentation``): nothing decided here."""
        renderer = SlackRenderer(self.api, channel=channel, thread_ts=thread_ts, private=private, live=live)
        shown = live is not None and live.started
        await render(
            renderer, result, user_id=user_id, hints=HINTS, reply_shown=shown, end_command=end_command
        )

    async def _alert(self, alert: AdminAlert) -> None:
        await send_alert(self.api, alert)

    async def send_digest(self, digest: Digest) -> None:
        """The weekly digest for a workspace's alert channel: counts and links only, never content.

        One ``chat.postMessage``. Links to reported threads are built from the workspace URL that
        ``auth.test`` gave (no call per link); without it each link costs a ``chat.getPermalink``.
        """
        total = sum(digest.endings_by_reason.values())
        reasons = ", ".join(
            f"{n} {reason_phrase(reason, 'for another reason')}"
            for reason, n in sorted(digest.endings_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
            if n
        )
        lines = [
            f":bar_chart: *Haven weekly digest* (since {digest.since.strftime('%Y-%m-%d')})",
            f"• Conversations ended: *{total}*" + (f" ({reasons})" if reasons else ""),
            f"• Endings held back because someone may be at risk: *{digest.vetoes}*",
            f"• Warnings given before an ending: *{digest.warnings}*",
            f"• Endings reported as a mistake: *{digest.feedback}*",
        ]
        reported = list(dict.fromkeys(digest.reported))
        if reported:
            shown = reported[:DIGEST_LINKS]
            links = [await self._thread_link(channel, ts) for channel, ts in shown]
            more = f" and {len(reported) - len(shown)} more" if len(reported) > len(shown) else ""
            lines.append("• Reported threads: " + ", ".join(links) + more)
        lines.append("`/haven endings` and `/haven feedback` list the details.")
        text = "\n".join(lines)
        if await self._post(digest.channel, text) is None:
            raise RuntimeError("the Slack digest could not be posted")
        log.info("slack digest posted", extra={"workspace": digest.workspace, "endings": total})

    async def _thread_link(self, channel: str, ts: str) -> str:
        if self.workspace_url:
            link: str | None = f"{self.workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"
        else:
            link = await self._permalink(channel, ts)
        return _thread_link(link, thread_ref("", channel, ts))

    # -- events ---------------------------------------------------------------------------------------

    async def _on_mention(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        with self._track():
            await self._on_words(event, "app_mention", self._team(context, body), context.bot_user_id)

    async def _on_message(
        self, event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        with self._track():
            team = self._team(context, body)
            if event.get("subtype") == "message_changed":
                await self._on_edit(event, team, context.bot_user_id)
            else:
                await self._on_words(event, "message", team, context.bot_user_id)

    async def _on_words(
        self, event: Mapping[str, Any], event_type: str, team: str, bot_user_id: str | None
    ) -> None:
        msg = message_from_event(event, event_type=event_type, team_id=team, bot_user_id=bot_user_id)
        if msg is None:
            return
        if not msg.text:
            if msg.origin in (Origin.MENTION, Origin.DIRECT):
                in_thread = msg.thread.thread if msg.thread.thread != msg.ts else None
                await self._ephemeral(msg.thread.channel, msg.user_id, EMPTY_MENTION, in_thread)
            return
        # Taken before the first await, so this process handles a thread's messages in arrival order.
        async with self._thread_lock(msg.thread.key):
            # Slack got its 200 long ago and will not deliver this again: a passing outage (the database
            # restarting) is waited out (bot.failures.retry_turn). A turn that already stored the message
            # comes back as a duplicate and stays silent (see docs/slack.md).
            try:
                await retry_turn(
                    lambda attempt: self._turn(msg, team, attempt),
                    shown=lambda exc: getattr(exc, "haven_reply_shown", False),
                    logger=log,
                    event="slack turn failed",
                    workspace=team,
                )
            except Exception as exc:
                log_failure(log, "slack turn failed", exc, workspace=team)
                if getattr(exc, "haven_ours", False) and not getattr(exc, "haven_reply_shown", False):
                    # A message of Haven's conversation that cannot be answered gets a note, not silence.
                    await self._post(msg.thread.channel, escape(TURN_FAILED), thread_ts=msg.thread.thread)

    async def _turn(self, msg: SlackMessage, team: str, attempt: int = 0) -> None:
        # Most thread replies in a busy channel are not ours: settle that before asking who wrote it.
        if msg.origin is Origin.THREAD_REPLY and not await self._engine.owns_thread(msg.thread):
            return
        try:
            await self._answer_message(msg, team, attempt)
        except Exception as exc:
            exc.haven_ours = True  # type: ignore[attr-defined]  # Haven's conversation: answer the failure
            raise

    async def _answer_message(self, msg: SlackMessage, team: str, attempt: int) -> None:
        person = await self._person(team, msg.user_id)
        channel, thread_ts = msg.thread.channel, msg.thread.thread
        live = self._live(channel, thread_ts, team, msg.user_id)

        async def deliver(result: TurnResult) -> None:
            # Called by the engine while it still holds the thread's lock: replies keep turn order
            # even when another process takes the thread's next turn.
            await self._render(result, channel=channel, thread_ts=thread_ts, user_id=msg.user_id, live=live)

        result = await self._answer(
            live, self._engine.handle_message(msg.incoming(person.author, person.locale), live, deliver)
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

    async def _on_edit(self, event: Mapping[str, Any], team: str, bot_user_id: str | None) -> None:
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
        await self._ephemeral(
            edit.thread.channel,
            edit.user_id,
            "This conversation has ended. Continue from your edited message in a new thread?",
            edit.thread.thread,
            blocks=bk.fork_offer_blocks(value),
        )

    # -- fork -----------------------------------------------------------------------------------------

    async def _fork(
        self,
        team: str,
        user_id: str,
        thread: ThreadRef,
        message_ts: str,
        *,
        model_text: str,
        shown_text: str,
        private: Private,
    ) -> bool:
        """Post "Forked from … by …" at the top level, then let the engine open and answer its thread."""
        source = await self._engine.fork_source(thread, message_id=message_ts)
        if source is None:
            await private(NOT_FORKABLE)
            return False
        person = await self._person(team, user_id)
        if not await self._engine.may_fork(person.author, source):
            await private(NOT_AUTHOR)
            return False
        if not model_text.strip():
            await private("The new text is empty; nothing to fork.")
            return False
        link = await self._permalink(thread.channel, message_ts)
        origin = f"<{link}|this message>" if link else "an earlier message"
        ts = await self._post(thread.channel, f"Forked from {origin} by <@{user_id}>:\n{quote(shown_text)}")
        if ts is None:
            await private(CANNOT_POST)
            return False
        request = ForkRequest(
            source.conversation_id,
            source.message_id,
            thread_ref(team, thread.channel, ts),
            person.author,
            model_text,
            new_message_id=ts,
        )
        live = self._live(thread.channel, ts, team, user_id)
        result = await self._answer(live, self._engine.fork(request, live))
        if result.status is TurnStatus.IGNORED:
            # Refused after all (e.g. the rights changed meanwhile): take the header back.
            await self._safe("chat.delete", self._client.chat_delete(channel=thread.channel, ts=ts))
            for reply in result.replies:
                await private(reply)
            return False
        log.info("slack fork", extra={"workspace": team, "status": result.status.value})
        await self._render(
            result, channel=thread.channel, thread_ts=ts, user_id=user_id, private=private, live=live
        )
        return True

    async def _on_edit_fork_shortcut(
        self, ack: Any, shortcut: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        with self._track():
            team, user = self._team(context, shortcut), shortcut["user"]["id"]
            channel, message = shortcut["channel"]["id"], shortcut.get("message") or {}
            ts = str(message.get("ts") or "")
            thread_ts = str(message.get("thread_ts") or ts)
            source = await self._engine.fork_source(thread_ref(team, channel, thread_ts), message_id=ts)
            if source is None:
                await self._tell(user, channel, NOT_FORKABLE)
                return
            person = await self._person(team, user)
            if not await self._engine.may_fork(person.author, source):
                await self._tell(user, channel, NOT_AUTHOR)
                return
            meta = {"c": channel, "t": thread_ts, "m": ts}
            await self._open(shortcut["trigger_id"], bk.fork_modal(source.text, meta))

    async def _on_fork_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        text = _input_value(view)
        if not text.strip():
            await ack(response_action="errors", errors={bk.INPUT: "Write the message to continue from."})
            return
        await ack()
        with self._track():
            meta = json.loads(view.get("private_metadata") or "{}")
            team, user = self._team(context, body), body["user"]["id"]

            async def private(message: str) -> None:
                await self._tell(user, meta["c"], message)

            await self._fork(
                team,
                user,
                thread_ref(team, meta["c"], meta["t"]),
                meta["m"],
                model_text=text,
                shown_text=escape(text),
                private=private,
            )

    async def _on_fork_edit(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any, context: AsyncBoltContext
    ) -> None:
        await ack()
        with self._track():
            data = json.loads(action.get("value") or "{}")
            team, user = self._team(context, body), body["user"]["id"]

            async def private(message: str) -> None:
                await respond(text=message, replace_original=False)

            forked = await self._fork(
                team,
                user,
                thread_ref(team, data["c"], data["t"]),
                data["m"],
                model_text=slack_to_text(data["x"], context.bot_user_id),
                shown_text=data["x"],
                private=private,
            )
            if forked:
                await respond(delete_original=True)

    # -- feedback -------------------------------------------------------------------------------------

    async def _on_mistake(self, ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        with self._track():
            message = body.get("message") or {}
            container = body.get("container") or {}
            thread_ts = message.get("thread_ts") or container.get("thread_ts") or message.get("ts")
            meta = {"v": action.get("value"), "c": (body.get("channel") or {}).get("id"), "t": thread_ts}
            await self._open(body["trigger_id"], bk.feedback_modal(meta))

    async def _on_feedback_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        with self._track():
            meta = json.loads(view.get("private_metadata") or "{}")
            team, user = self._team(context, body), body["user"]["id"]
            comment = _input_value(view).strip() or None
            try:
                alert = await self._engine.record_feedback(PLATFORM, team, str(meta.get("v")), user, comment)
            except LookupError:
                await self._tell(user, meta.get("c"), "Haven couldn't find that conversation any more.")
                return
            if meta.get("c"):
                await self._ephemeral(meta["c"], user, FEEDBACK_THANKS, meta.get("t"))
            if alert is not None:
                await self._alert(alert)

    # -- the /haven command ---------------------------------------------------------------------------

    async def _on_command(
        self, ack: Any, command: dict[str, Any], respond: Any, context: AsyncBoltContext
    ) -> None:
        await ack()
        with self._track():
            team, user, channel = self._team(context, command), command["user_id"], command["channel_id"]
            sub, rest = parse_command(command.get("text") or "")

            async def private(text: str) -> None:
                await respond(text=text)

            log.info("slack command", extra={"workspace": team, "subcommand": sub or "help"})
            if sub in ("", "help"):
                await private(HELP)
            elif sub == "new":
                if rest:
                    await self._start(
                        team,
                        user,
                        channel,
                        slack_to_text(rest, context.bot_user_id),
                        rest,
                        private,
                    )
                else:
                    await self._open(command["trigger_id"], bk.new_conversation_modal({"c": channel}))
            elif sub == "end":
                await self._cmd_end(team, user, rest, private)
            elif sub == "fork":
                await self._cmd_fork(team, user, rest, context.bot_user_id, private)
            elif sub in ("resources", "settings", "endings", "feedback"):
                await self._cmd_admin(team, user, channel, sub, rest, command["trigger_id"], respond)
            else:
                await private(f"Unknown subcommand `{escape(sub)}`.\n\n{HELP}")

    async def _start(
        self, team: str, user: str, channel: str, model_text: str, shown_text: str, private: Private
    ) -> None:
        """``/haven new``: a top-level message carries the person's words; the conversation is its thread."""
        if not model_text.strip():
            await private("Write your message after `/haven new`.")
            return
        person = await self._person(team, user)
        ts = await self._post(channel, f"<@{user}> started a conversation with Haven:\n{quote(shown_text)}")
        if ts is None:
            await private(CANNOT_POST)
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
        live = self._live(channel, ts, team, user)
        result = await self._answer(live, self._engine.handle_message(msg, live))
        await self._render(result, channel=channel, thread_ts=ts, user_id=user, private=private, live=live)

    async def _on_new_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        text = _input_value(view)
        if not text.strip():
            await ack(response_action="errors", errors={bk.INPUT: "Write your message to Haven."})
            return
        await ack()
        with self._track():
            meta = json.loads(view.get("private_metadata") or "{}")
            team, user = self._team(context, body), body["user"]["id"]

            async def private(message: str) -> None:
                await self._tell(user, meta.get("c"), message)

            await self._start(team, user, meta["c"], text, escape(text), private)

    async def _cmd_end(self, team: str, user: str, rest: str, private: Private) -> None:
        link, _ = split_link_and_text(rest)
        if link is None:
            await private(END_USAGE)
            return
        person = await self._person(team, user)
        thread = thread_ref(team, link.channel, link.thread)
        result = await self._engine.end_by_command(thread, person.author)
        await self._render(
            result,
            channel=thread.channel,
            thread_ts=thread.thread,
            user_id=user,
            private=private,
            end_command=True,
        )

    async def _cmd_fork(
        self, team: str, user: str, rest: str, bot_user_id: str | None, private: Private
    ) -> None:
        link, text = split_link_and_text(rest)
        if link is None or not text:
            await private(FORK_USAGE)
            return
        await self._fork(
            team,
            user,
            thread_ref(team, link.channel, link.thread),
            link.ts,
            model_text=slack_to_text(text, bot_user_id),
            shown_text=text,
            private=private,
        )

    # -- admin ----------------------------------------------------------------------------------------

    async def _cmd_admin(
        self, team: str, user: str, channel: str, sub: str, rest: str, trigger_id: str, respond: Any
    ) -> None:
        """Admin subcommands; ``bot.admin.Admin`` checks the permission on every call."""
        admin = self._services.admin
        actor = (await self._person(team, user, fresh=True)).author
        action, _, arg = rest.partition(" ")
        action, arg = action.lower(), arg.strip()
        try:
            if sub == "resources":
                await self._cmd_resources(actor, team, channel, action, arg, trigger_id, respond)
            elif sub == "settings":
                if action and action != "help":
                    name, _, value = rest.partition(" ")
                    if not value.strip():
                        await respond(text=f"Usage: `/haven settings <name> <value>`\n{_settings_help()}")
                        return
                    await admin.change(actor, PLATFORM, team, name.lower(), ids_in(value).strip())
                settings = await admin.settings(actor, PLATFORM, team)
                rows = "\n".join(f"• *{k}*: {escape(v)}" for k, v in describe_settings(settings))
                note = f"\n\n{_settings_help()}" if action == "help" else ""
                head = "Saved. " if action and action != "help" else ""
                await respond(text=f"{head}Haven settings for this workspace:\n{rows}{note}")
            elif sub == "endings":
                endings = await admin.endings(actor, PLATFORM, team, 15)
                links = await asyncio.gather(
                    *(self._permalink(e.thread.channel, e.thread.thread) for e in endings)
                )
                lines = [
                    f"• {_when(e.ended_at)} — ended {reason_phrase(e.reason)}, {e.warnings} "
                    f"warning(s){' (a fork)' if e.forked_from else ''} — {_thread_link(link, e.thread)}"
                    for e, link in zip(endings, links, strict=True)
                ]
                await respond(text="Recent endings:\n" + "\n".join(lines) if lines else "No endings yet.")
            else:
                reports = await admin.feedback(actor, PLATFORM, team, 15)
                links = await asyncio.gather(
                    *(self._permalink(r.thread.channel, r.thread.thread) for r in reports)
                )
                lines = [
                    f"• {_when(r.created_at)} — <@{r.user_id}> on {_thread_link(link, r.thread)}"
                    + (f": “{escape(_clip(r.comment, 300))}”" if r.comment else "")
                    for r, link in zip(reports, links, strict=True)
                ]
                await respond(
                    text="Endings reported as mistakes:\n" + "\n".join(lines) if lines else "No reports."
                )
        except NotAllowed:
            await respond(text=ADMIN_ONLY)
        except BadSetting as exc:
            await respond(text=f"That didn't work: {escape(str(exc))}")

    async def _cmd_resources(
        self, actor: Author, team: str, channel: str, action: str, locale: str, trigger_id: str, respond: Any
    ) -> None:
        admin = self._services.admin
        settings = await admin.settings(actor, PLATFORM, team)
        current = settings.crisis_locales.get(locale) if locale else settings.crisis_message
        text = current or (settings.crisis_message if locale else None) or DEFAULT_CRISIS_MESSAGE
        if action == "set":
            meta = {"c": channel, "l": locale or None}
            await self._open(trigger_id, bk.resources_modal(text, locale or None, meta, MAX_CRISIS_CHARS))
        elif action == "reset":
            await admin.reset_crisis_message(actor, PLATFORM, team)
            await respond(
                text="Crisis resources reset to Haven's built-in default (locale variants removed)."
            )
        elif action == "preview":
            card = CrisisCard(text)
            await respond(text=card.text, blocks=bk.crisis_blocks(card))
        elif action in ("", "show"):
            kind = "custom" if current else "built-in default"
            locales = ", ".join(sorted(settings.crisis_locales)) or "none"
            which = f"{kind}, {locale}" if locale else kind
            await respond(
                text=f"Crisis resources ({which}; locale variants: {locales}):\n```\n{escape(text)}\n```\n"
                "`/haven resources set` changes them, `preview` shows them."
            )
        else:
            await respond(text="Usage: `/haven resources show|set|reset|preview [locale]`")

    async def _on_resources_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        with self._track():
            meta = json.loads(view.get("private_metadata") or "{}")
            team, user = self._team(context, body), body["user"]["id"]
            actor = (await self._person(team, user, fresh=True)).author
            try:
                await self._services.admin.set_crisis_message(
                    actor, PLATFORM, team, _input_value(view), meta.get("l")
                )
            except NotAllowed:
                await ack(response_action="errors", errors={bk.INPUT: ADMIN_ONLY})
                return
            except BadSetting as exc:
                await ack(response_action="errors", errors={bk.INPUT: str(exc)})
                return
            await ack()
            await self._tell(
                user,
                meta.get("c"),
                "Crisis resources saved. `/haven resources preview` shows them as people will.",
            )


# -- helpers --------------------------------------------------------------------------------------------


def _input_value(view: Mapping[str, Any]) -> str:
    values = ((view.get("state") or {}).get("values") or {}).get(bk.INPUT) or {}
    return str((values.get(bk.INPUT) or {}).get("value") or "")


def _settings_help() -> str:
    return "\n".join(f"• `{name}` — {escape(help_)}" for name, (_, _, help_) in SETTINGS.items())


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "?"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _thread_link(link: str | None, thread: ThreadRef) -> str:
    return f"<{link}|thread>" if link else f"a thread in <#{thread.channel}>"
