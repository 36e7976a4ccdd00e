"""Feedback listeners: the "This ending was a mistake" button on a closure notice, and its modal.

The engine records the report and says whether the admins are to be told; this group only asks for the
optional comment, thanks the person and posts the content-free alert.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext

from adapters.slack import blocks as bk
from adapters.slack.listeners.context import requester
from adapters.slack.listeners.shared import Shared, input_value
from adapters.slack.translate import PLATFORM
from bot.i18n import strings_for
from bot.notices import FEEDBACK_THANKS


class Feedback:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared
        self._api = shared.api

    def register(self, app: AsyncApp) -> None:
        app.action(bk.ACTION_MISTAKE)(self.on_mistake)
        app.view(bk.VIEW_FEEDBACK)(self.on_submit)

    async def on_mistake(
        self, ack: Any, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        who = requester(context)
        message = body.get("message") or {}
        container = body.get("container") or {}
        channel = (body.get("channel") or {}).get("id")
        thread_ts = message.get("thread_ts") or container.get("thread_ts") or message.get("ts")
        meta = {"v": action.get("value"), "c": channel, "t": thread_ts}

        async def private(text: str) -> None:
            await self._api.tell(who.user, channel, text)

        async def work() -> None:
            # Block actions carry no locale; the person's comes from users.info (briefly cached).
            strings = strings_for((await who.person()).locale)
            await self._api.open(body["trigger_id"], bk.feedback_modal(meta, strings))

        await self._shared.once(who.team, body.get("trigger_id"), private, work, user=who.user)

    async def on_submit(
        self, ack: Any, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        who = requester(context)
        team, user = who.team, who.user

        async def private(text: str) -> None:
            await self._api.tell(user, meta.get("c"), text)

        async def work() -> None:
            comment = input_value(view).strip() or None
            try:
                # One record per person and ending: a repeat edits it, and only the first alerts.
                alert = await self._shared.engine.record_feedback(
                    PLATFORM, team, str(meta.get("v")), user, comment
                )
            except LookupError:
                await private("Haven couldn't find that conversation any more.")
                return
            if meta.get("c"):
                thanks = strings_for((await who.person()).locale).localise(FEEDBACK_THANKS)
                await self._api.ephemeral(meta["c"], user, thanks, meta.get("t"))
            if alert is not None:
                await self._shared.alert(alert)

        await self._shared.once(team, body.get("trigger_id"), private, work, user=user)
