"""The ``/haven`` command and the modals it opens: help, new, end, fork, and the admin subcommands.

Parsing only: ``new`` is a conversation turn (``Conversation.start``), ``fork`` a fork
(``Fork.from_command``), ``end`` the engine's ``end_by_command``; the admin subcommands ask
``bot.admin.Admin``, which checks the permission on every call.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack import blocks as bk
from adapters.slack.listeners.context import Requester, requester
from adapters.slack.listeners.shared import Private, Shared, input_value
from adapters.slack.translate import (
    PLATFORM,
    escape,
    ids_in,
    link_or_channel,
    parse_command,
    slack_to_text,
    split_link_and_text,
    thread_ref,
)
from bot.admin import (
    MAX_CRISIS_CHARS,
    MAX_INSTRUCTIONS_CHARS,
    SETTINGS,
    BadSetting,
    NotAllowed,
    describe_settings,
)
from bot.i18n import strings_for
from bot.notices import ADMIN_ONLY, DATABASE_UNAVAILABLE, DEFAULT_CRISIS_MESSAGE, reason_phrase
from bot.ports import StorageUnavailable
from bot.types import Author, CrisisCard

log = logging.getLogger(__name__)

# The slash command this group answers; manifest.yml must declare the same (a test checks it).
COMMAND = "/haven"

# The English help (``help.slack`` in ``bot/locales``); people get it in their language.
HELP = """\
*Haven* talks with you in threads.
• *Start:* mention @Haven in a channel (it answers in a thread under your message), send it a direct \
message, or `/haven new <message>`. Reply in the thread to continue; no mention needed.
• *End:* `/haven end <thread link>` closes a conversation (⋯ → *Copy link* on any message in the thread; \
Slack doesn't tell apps which thread a command was typed in).
• *Fork:* ⋯ → *Edit & fork* on one of your earlier messages, or `/haven fork <message link> <new text>`, \
continues from that point with new text in a new thread.
• *Admins:* `/haven resources show|set|reset|preview [locale]`, `/haven settings [name value]` (among \
them `allow-channels` and `deny-channels`: where Haven answers), `/haven instructions [clear]` (a persona \
for Haven here), `/haven endings`, `/haven feedback`."""

END_USAGE = (
    "Usage: `/haven end <thread link>` — use ⋯ → *Copy link* on any message in the Haven thread you want "
    "to close. You can also just ask Haven in the thread to end the conversation."
)

# The turns other groups own, handed in so this one stays parsing only.
Start = Callable[[Requester, str, str, str, Private], Awaitable[None]]
ForkCommand = Callable[[Requester, str, str | None, Private], Awaitable[None]]


class Commands:
    def __init__(self, shared: Shared, *, start: Start, fork: ForkCommand) -> None:
        self._shared = shared
        self._api = shared.api
        self._admin = shared.services.admin
        self._start = start
        self._fork = fork

    def register(self, app: AsyncApp) -> None:
        app.command(COMMAND)(self.on_command)
        app.view(bk.VIEW_NEW)(self.on_new_submit)
        app.view(bk.VIEW_RESOURCES)(self.on_resources_submit)
        app.view(bk.VIEW_INSTRUCTIONS)(self.on_instructions_submit)

    async def on_command(
        self, ack: Any, command: dict[str, Any], respond: Any, context: AsyncBoltContext
    ) -> None:
        await ack()
        who = requester(context)

        async def private(text: str) -> None:
            await respond(text=text)

        async def work() -> None:
            await self._command(who, command, respond, private, context.bot_user_id)

        await self._shared.once(who.team, command.get("trigger_id"), private, work, user=who.user)

    async def _command(
        self, who: Requester, command: dict[str, Any], respond: Any, private: Private, bot_user_id: str | None
    ) -> None:
        channel = command["channel_id"]
        sub, rest = parse_command(command.get("text") or "")
        log.info("slack command", extra={"workspace": who.team, "subcommand": sub or "help"})
        if sub in ("", "help"):
            await private(strings_for((await who.person()).locale)("help.slack"))
        elif sub == "new":
            if rest:
                await self._start(who, channel, slack_to_text(rest, bot_user_id), rest, private)
            else:
                strings = strings_for((await who.person()).locale)
                modal = bk.new_conversation_modal({"c": channel}, strings)
                await self._api.open(command["trigger_id"], modal)
        elif sub == "end":
            await self._end(who, rest, private)
        elif sub == "fork":
            await self._fork(who, rest, bot_user_id, private)
        elif sub in ("resources", "settings", "instructions", "endings", "feedback"):
            await self._cmd_admin(who, channel, sub, rest, command["trigger_id"], respond)
        else:
            help_text = strings_for((await who.person()).locale)("help.slack")
            await private(f"Unknown subcommand `{escape(sub)}`.\n\n{help_text}")

    async def on_new_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        text = input_value(view)
        if not text.strip():
            await ack(response_action="errors", errors={bk.INPUT: "Write your message to Haven."})
            return
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        who = requester(context)
        user = who.user

        async def private(message: str) -> None:
            await self._api.tell(user, meta.get("c"), message)

        async def work() -> None:
            await self._start(who, meta["c"], text, escape(text), private)

        await self._shared.once(who.team, body.get("trigger_id"), private, work, user=who.user)

    async def _end(self, who: Requester, rest: str, private: Private) -> None:
        link, _ = split_link_and_text(rest)
        if link is None:
            await private(strings_for((await who.person()).locale).localise(END_USAGE))
            return
        person = await who.person()
        thread = thread_ref(who.team, link.channel, link.thread)
        result = await self._shared.engine.end_by_command(thread, person.author)
        await self._shared.render(
            result,
            channel=thread.channel,
            thread_ts=thread.thread,
            user_id=who.user,
            private=private,
            end_command=True,
            locale=person.locale,
        )

    # -- admin ----------------------------------------------------------------------------------------

    async def _cmd_admin(
        self, who: Requester, channel: str, sub: str, rest: str, trigger_id: str, respond: Any
    ) -> None:
        """Admin subcommands; ``bot.admin.Admin`` checks the permission on every call."""
        admin, team = self._admin, who.team
        actor = (await who.person(fresh=True)).author
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
            elif sub == "instructions":
                if action == "clear":
                    await admin.change(actor, PLATFORM, team, "instructions", "")
                    await respond(text="Haven's instructions for this workspace were removed.")
                else:
                    current = (await admin.settings(actor, PLATFORM, team)).instructions
                    modal = bk.instructions_modal(current, {"c": channel}, MAX_INSTRUCTIONS_CHARS)
                    await self._api.open(trigger_id, modal)
            elif sub == "endings":
                endings = await admin.endings(actor, PLATFORM, team, 15)
                links = await asyncio.gather(
                    *(self._api.permalink(e.thread.channel, e.thread.thread) for e in endings)
                )
                lines = [
                    f"• {_when(e.ended_at)} — ended {reason_phrase(e.reason)}, {e.warnings} "
                    f"warning(s){' (a fork)' if e.forked_from else ''} — {link_or_channel(link, e.thread)}"
                    for e, link in zip(endings, links, strict=True)
                ]
                await respond(text="Recent endings:\n" + "\n".join(lines) if lines else "No endings yet.")
            else:
                reports = await admin.feedback(actor, PLATFORM, team, 15)
                links = await asyncio.gather(
                    *(self._api.permalink(r.thread.channel, r.thread.thread) for r in reports)
                )
                lines = [
                    f"• {_when(r.created_at)} — <@{r.user_id}> on {link_or_channel(link, r.thread)}"
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
        admin = self._admin
        settings = await admin.settings(actor, PLATFORM, team)
        current = settings.crisis_locales.get(locale) if locale else settings.crisis_message
        text = current or (settings.crisis_message if locale else None) or DEFAULT_CRISIS_MESSAGE
        if action == "set":
            meta = {"c": channel, "l": locale or None}
            await self._api.open(trigger_id, bk.resources_modal(text, locale or None, meta, MAX_CRISIS_CHARS))
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

    async def on_resources_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def save(actor: Author, team: str, text: str, meta: dict[str, Any]) -> str:
            await self._admin.set_crisis_message(actor, PLATFORM, team, text, meta.get("l"))
            return "Crisis resources saved. `/haven resources preview` shows them as people will."

        await self._submit_admin_form(ack, body, view, context, save)

    async def on_instructions_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        async def save(actor: Author, team: str, text: str, meta: dict[str, Any]) -> str:
            saved = await self._admin.change(actor, PLATFORM, team, "instructions", text)
            done = "saved" if saved.instructions else "removed"
            return f"Haven's instructions for this workspace were {done}."

        await self._submit_admin_form(ack, body, view, context, save)

    async def _submit_admin_form(
        self,
        ack: Any,
        body: dict[str, Any],
        view: dict[str, Any],
        context: AsyncBoltContext,
        save: Callable[[Author, str, str, dict[str, Any]], Awaitable[str]],
    ) -> None:
        """An admin's form (crisis resources, instructions): checked again on submit and acknowledged
        last, so that a refusal (not an admin, too long, the database away) shows in the form; saved once
        per submission; the admin is then told privately what ``save`` says."""
        with self._shared.track():
            meta = json.loads(view.get("private_metadata") or "{}")
            who = requester(context)
            actor = (await who.person(fresh=True)).author
            try:
                trigger_id, engine = body.get("trigger_id"), self._shared.engine
                if trigger_id and not await engine.first_delivery(PLATFORM, who.team, trigger_id):
                    await ack()  # this very submission was saved already
                    return
                told = await save(actor, who.team, input_value(view), meta)
            except NotAllowed:
                await ack(response_action="errors", errors={bk.INPUT: ADMIN_ONLY})
                return
            except BadSetting as exc:
                await ack(response_action="errors", errors={bk.INPUT: str(exc)})
                return
            except StorageUnavailable:
                # An admin form (resources, settings): its notes stay English, as admin texts do.
                await ack(response_action="errors", errors={bk.INPUT: DATABASE_UNAVAILABLE})
                return
            await ack()
            await self._api.tell(who.user, meta.get("c"), told)


def _settings_help() -> str:
    return "\n".join(f"• `{name}` — {escape(help_)}" for name, (_, _, help_) in SETTINGS.items())


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "?"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
