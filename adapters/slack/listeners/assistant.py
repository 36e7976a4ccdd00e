"""Slack's AI-app surface: assistant threads, through Bolt's ``AsyncAssistant`` middleware.

An assistant thread is a thread in the person's DM with Haven (``message.im`` with a ``thread_ts``), so
its messages take the same way as every other message: the inbox records them before Slack is
acknowledged (``listeners.inbox`` runs before this middleware), ``translate`` makes them ``DIRECT``
messages of the thread's conversation, and ``Conversation`` answers them through the engine and
``LiveReply``. Endings, closure notice and silence, fork, feedback and crisis resources are therefore the
ones of channel threads. What this group adds is what the split view shows around them:

- ``assistant_thread_started``: a greeting (``bot.starters``) and the suggested prompts (the
  workspace's own list, else ``Settings.suggested_prompts``; an empty list shows none: Slack refuses
  one; the database away, the process-wide list rather than none);
- a person's message: the thread's title from its first message. The "thinking…" status is the one
  every Slack reply shows (``LiveReply.thinking``), which the engine asks for just before the model,
  so an ended thread stays silent;
- ``assistant_thread_context_changed`` (the person moved to another channel with the view open):
  remembered where Bolt keeps it, in the metadata of Haven's first message in the thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.save_thread_context.async_save_thread_context import AsyncSaveThreadContext
from slack_bolt.context.say.async_say import AsyncSay
from slack_bolt.context.set_suggested_prompts.async_set_suggested_prompts import AsyncSetSuggestedPrompts
from slack_bolt.context.set_title.async_set_title import AsyncSetTitle
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    is_assistant_event,
    is_other_message_sub_event_in_assistant_thread,
)
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from adapters.slack.listeners.context import requester
from adapters.slack.listeners.conversation import Conversation
from adapters.slack.listeners.shared import Shared
from adapters.slack.translate import PLATFORM, message_from_event, thread_title
from bot.ports import StorageUnavailable
from bot.starters import GREETING, PROMPTS_TITLE, prompts_for

log = logging.getLogger(__name__)

# The events this group listens to; manifest.yml must subscribe to them (a test checks it). A person's
# messages come as ``message.im``, which the conversation group already subscribes to.
EVENTS = ("assistant_thread_started", "assistant_thread_context_changed")


class _Assistant(AsyncAssistant):
    """Bolt's middleware, except that edits and deletions in an assistant thread go on to the app's
    ``message`` listener: Bolt acknowledges them and stops, but an edit in an ended thread is how a
    person is offered a fork there, as in a channel thread (``Conversation.on_message``).

    Every other event passes straight on: Bolt's middleware would match each of its listeners against
    it, on the acknowledgement's path of every channel message (``is_assistant_event`` says at once)."""

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt calls it by this name
    ) -> BoltResponse | None:
        if not is_assistant_event(req.body) or is_other_message_sub_event_in_assistant_thread(req.body):
            return await next()
        return await super().async_process(req=req, resp=resp, next=next)


class AssistantThreads:
    def __init__(self, shared: Shared, conversation: Conversation) -> None:
        self._shared = shared
        self._engine = shared.engine
        self._api = shared.api
        self._conversation = conversation

    def register(self, app: AsyncApp) -> None:
        assistant = _Assistant(logger=app.logger)
        assistant.thread_started(self.on_thread_started)
        assistant.user_message(self.on_user_message)
        assistant.thread_context_changed(self.on_context_changed)
        app.assistant(assistant)

    async def on_thread_started(
        self,
        context: AsyncBoltContext,
        say: AsyncSay,
        set_suggested_prompts: AsyncSetSuggestedPrompts,
    ) -> None:
        with self._shared.track():
            team = requester(context).team
            # Bolt's say() puts the thread's context into the greeting's metadata, where its default
            # thread context store looks for it later (``on_context_changed``).
            await self._api.safe("chat.postMessage", say(text=GREETING))
            default = self._shared.services.settings.suggested_prompts
            try:
                own = await self._engine.suggested_prompts(PLATFORM, team)
            except StorageUnavailable:
                own = None
            prompts = prompts_for(own, default)
            if prompts:
                await self._api.safe(
                    "assistant.threads.setSuggestedPrompts",
                    set_suggested_prompts(list(prompts), title=PROMPTS_TITLE),
                )
            log.info("slack assistant thread started", extra={"workspace": team, "prompts": len(prompts)})

    async def on_user_message(
        self, event: dict[str, Any], context: AsyncBoltContext, set_title: AsyncSetTitle
    ) -> None:
        with self._shared.track():
            who = requester(context)
            msg = message_from_event(
                event, event_type="message", team_id=who.team, bot_user_id=context.bot_user_id
            )
            titled: asyncio.Task[Any] | None = None
            if msg is not None and msg.text:
                try:
                    first = await self._engine.thread_status(msg.thread) is None
                except StorageUnavailable:
                    first = False  # unknown: an untitled thread rather than a second title
                if first:  # the thread's first message names it, beside the turn rather than before it
                    titled = asyncio.ensure_future(
                        self._api.safe("assistant.threads.setTitle", set_title(thread_title(msg.text)))
                    )
            try:
                # The turn of any other thread, "thinking…" status included (``LiveReply.thinking``,
                # just before the model is asked, so never in an ended thread); the inbox entry is in
                # ``context``.
                await self._conversation.on_message(event, context)
            finally:
                if titled is not None:
                    await asyncio.wait({titled})

    async def on_context_changed(
        self, event: Mapping[str, Any], context: AsyncBoltContext, save_thread_context: AsyncSaveThreadContext
    ) -> None:
        with self._shared.track():
            thread = event.get("assistant_thread")
            new = thread.get("context") if isinstance(thread, Mapping) else None
            # Which channel the person is looking at is theirs: logged as having changed, nothing more.
            log.info("slack assistant thread context changed", extra={"workspace": requester(context).team})
            if isinstance(new, Mapping):
                try:
                    await save_thread_context(dict(new))
                except (SlackApiError, aiohttp.ClientError, TimeoutError) as exc:
                    # Only the view's context is lost, and the conversation never depended on it.
                    log.warning(
                        "slack assistant thread context not saved",
                        extra={"workspace": requester(context).team, "error": type(exc).__name__},
                    )
