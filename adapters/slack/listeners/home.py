"""App Home listeners: the Home tab (``app_home_opened`` → ``views.publish``) and its buttons.

``bot.home`` decides what a person's Home holds (the admin part only for admins) and does "forget me";
this group asks it, draws the answer (``home_blocks``) and publishes it. The buttons reuse the flows the
``/haven`` command has: *New conversation* opens the same modal as ``/haven new`` (answered by
``admin.Commands.on_new_submit``), *Edit crisis resources* the same modal as ``/haven resources set``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack import blocks as bk
from adapters.slack import home_blocks as hb
from adapters.slack.listeners.context import Requester, requester
from adapters.slack.listeners.shared import Shared
from adapters.slack.translate import PLATFORM
from bot.admin import MAX_CRISIS_CHARS, NotAllowed
from bot.failures import log_failure
from bot.home import HomeContent
from bot.i18n import strings_for
from bot.notices import ADMIN_ONLY, crisis_card
from bot.ports import StorageUnavailable
from bot.types import ThreadRef

log = logging.getLogger(__name__)

# The events this group answers; manifest.yml must declare them (a test checks it).
HOME_EVENTS = ("app_home_opened",)


class Home:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._api = shared.api
        self._home = shared.services.home

    def register(self, app: AsyncApp) -> None:
        app.event("app_home_opened")(self.on_opened)
        app.action(hb.ACTION_HOME_NEW)(self.on_new)
        app.action(hb.ACTION_FORGET)(self.on_forget)
        app.view(hb.VIEW_FORGET)(self.on_forget_confirmed)
        app.action(hb.ACTION_EDIT_RESOURCES)(self.on_edit_resources)

    async def on_opened(self, event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("tab") != "home":
            return  # the Messages tab opens a DM, not this page
        who = requester(context)
        with self._shared.track():
            try:
                await self.publish(who, event.get("channel"))
            except StorageUnavailable as exc:
                # Nothing to tell anyone: the tab keeps what it showed last, and the next visit retries.
                log_failure(log, "slack home: database unavailable", exc, workspace=who.team)

    async def publish(
        self, who: Requester, channel: str | None, *, forgotten: Mapping[str, int] | None = None
    ) -> None:
        """Draw the requester's Home and publish it. The person is looked up afresh: whether the admin
        part shows follows their current role, like every admin command."""
        person = await who.person(fresh=True)
        content = await self._home.content(person.author, PLATFORM, who.team, forgotten=forgotten)
        links = await self._links(content)
        meta = {"c": channel} if channel else {}
        view = hb.home_view(content, links, meta, strings_for(person.locale))
        await self._api.safe("views.publish", self._api.client.views_publish(user_id=who.user, view=view))

    async def _links(self, content: HomeContent) -> dict[ThreadRef, str | None]:
        threads = {c.thread for c in content.conversations}
        if content.admin is not None:
            threads |= {e.thread for e in content.admin.endings}
            threads |= {r.thread for r in content.admin.feedback}
        ordered = list(threads)
        found = await asyncio.gather(*(self._api.thread_link(t.channel, t.thread) for t in ordered))
        return dict(zip(ordered, found, strict=True))

    async def on_new(self, ack: Any, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """The same modal as ``/haven new``; the conversation starts in the person's DM with Haven."""
        await ack()
        who = requester(context)
        channel = _home_channel(body) or await self._dm(who.user)
        if channel is None:
            return  # conversations.open failed (logged); the button can be pressed again
        strings = strings_for((await who.person()).locale)
        await self._api.open(body["trigger_id"], bk.new_conversation_modal({"c": channel}, strings))

    async def on_forget(self, ack: Any, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        channel = _home_channel(body)
        strings = strings_for((await requester(context).person()).locale)
        await self._api.open(body["trigger_id"], hb.forget_modal({"c": channel} if channel else {}, strings))

    async def on_forget_confirmed(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        who = requester(context)
        meta = json.loads(view.get("private_metadata") or "{}")
        user = who.user

        async def private(text: str) -> None:
            await self._api.tell(user, None, text)

        async def work() -> None:
            actor = (await who.person()).author
            removed = await self._home.forget_me(actor, PLATFORM, who.team)
            log.info("slack forget me", extra={"workspace": who.team, **removed})
            await self.publish(who, meta.get("c"), forgotten=removed)

        # Once per submission (a replayed request forgets nothing twice, and audits it once).
        await self._shared.once(who.team, body.get("trigger_id"), private, work, user=who.user)

    async def on_edit_resources(self, ack: Any, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """The ``/haven resources set`` modal; ``bot.admin`` checks the permission, here and on saving."""
        await ack()
        who = requester(context)
        actor = (await who.person(fresh=True)).author
        try:
            settings = await self._shared.services.admin.settings(actor, PLATFORM, who.team)
        except NotAllowed:
            await self._api.tell(who.user, None, ADMIN_ONLY)  # English: an admin text (``bot.i18n``)
            return
        except StorageUnavailable as exc:
            log_failure(log, "slack home: database unavailable", exc, workspace=who.team)
            await self._api.tell(who.user, None, await self._shared.unavailable_note(who.team, who.user))
            return
        current = crisis_card(settings).text
        modal = bk.resources_modal(current, None, {"c": None, "l": None}, MAX_CRISIS_CHARS)
        await self._api.open(body["trigger_id"], modal)

    async def _dm(self, user: str) -> str | None:
        opened = await self._api.safe("conversations.open", self._api.client.conversations_open(users=user))
        channel = (opened.get("channel") or {}).get("id") if opened is not None else None
        return str(channel) if channel else None


def _home_channel(body: Mapping[str, Any]) -> str | None:
    """The person's DM with Haven, which the Home remembered when it was published."""
    view = body.get("view") or {}
    try:
        meta = json.loads(view.get("private_metadata") or "{}")
    except ValueError:
        return None
    channel = meta.get("c") if isinstance(meta, dict) else None
    return str(channel) if channel else None
