"""HTTP mode's short path for a person's message: verified, recorded and acknowledged before Bolt's dispatch.

An acknowledgement through Bolt costs about twice what recording the message does: Bolt builds its
request, a per-request Web API client, its context and every listener argument (three times for an
@mention: matcher, listener middleware, listener) before it answers. In a burst of new threads that is
what keeps the last events from Slack's 3 s (``bench/burst.py``). So for the two events the inbox
records (``app_mention`` and ``message``) the events route:

1. checks the request's signature with slack_sdk's ``SignatureVerifier``, as Bolt's own verification
   does (the same call, the same five minutes): nothing unverified is read further, let alone recorded;
2. hands the payload to ``AcceptMessages.admit``, the same code Bolt's middleware runs, with the team and
   bot user of the connector's ``auth.test`` (what Bolt's single-workspace authorization gives it);
3. answers what ``admit`` answers: ``200`` for a duplicate, a reply in a thread not Haven's, a channel
   Haven does not answer in; ``503`` when the database is away; and ``200`` for a new message once it is
   recorded, whose Bolt dispatch (the listeners, which start its turn) then runs as a task after the
   acknowledgements in progress (``Admission.after_intake``), with the entry already in its context;
4. answers ``200`` at once for a ``message`` event no listener acts on
   (``listeners.conversation.ignored_message``: above all the ``message`` copy of every top-level
   @mention, half of a burst of new threads).

Everything else — another payload, another event, a bot's or Haven's own message (Bolt ignores those),
an event ``admit`` leaves to the listeners, a request whose signature does not verify (Bolt answers it
401) — goes through Bolt as before. Only for one workspace (a bot token): with many, the workspace's
installation is Bolt's authorization to look up, and every event goes through Bolt.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from adapters.slack.listeners.context import bolt_can_read
from adapters.slack.listeners.conversation import ignored_message
from adapters.slack.listeners.inbox import ACCEPTED_EVENTS, AcceptMessages, Admitted, admitted_context
from bot.failures import log_failure

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class EarlyAccept:
    """The ``/slack/events`` handler: the short path above, else ``bolt`` (Bolt's aiohttp handler)."""

    def __init__(
        self,
        app: AsyncApp,
        accept: AcceptMessages,
        *,
        signing_secret: str,
        auth: Mapping[str, Any],
        bolt: Handler,
        after_intake: Callable[[], Awaitable[None]],
        track: Callable[[], contextlib.AbstractContextManager[None]],
    ) -> None:
        self._app, self._accept, self._bolt = app, accept, bolt
        self._verifier = SignatureVerifier(signing_secret)
        self._team = str(auth.get("team_id") or "")
        self._bot_user = str(auth.get("user_id") or "") or None
        self._after_intake, self._track = after_intake, track
        self._tasks: set[asyncio.Task[None]] = set()  # the dispatches not yet done (kept referenced)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.text()
        payload = self._payload(request, body)
        if payload is None:
            return await self._bolt(request)
        outcome = await self._accept.admit(payload, self._team, self._bot_user)
        if outcome is None:
            if ignored_message(payload, self._team, self._bot_user):
                return web.Response(status=200, text="")  # what the listener would do: nothing
            return await self._bolt(request)  # the listeners' to decide, through Bolt as ever
        if isinstance(outcome, BoltResponse):
            return web.Response(status=outcome.status, text=outcome.body)
        headers = {k: request.headers.getall(k) for k in request.headers}
        task = asyncio.create_task(self._dispatch(body, headers, outcome), name="slack-dispatch")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.Response(status=200, text="")

    def _payload(self, request: web.Request, body: str) -> dict[str, Any] | None:
        """The payload when this request is a verified event of a person's for the short path."""
        if not self._team or request.content_type != "application/json":
            return None
        headers = request.headers
        timestamp, signature = headers.get("X-Slack-Request-Timestamp"), headers.get("X-Slack-Signature")
        if not self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
            return None  # Bolt's verification answers it (401) and logs it, as it always did
        try:
            payload = json.loads(body)
        except ValueError:
            return None
        if not isinstance(payload, dict) or payload.get("type") != "event_callback":
            return None
        event = payload.get("event")
        if not isinstance(event, dict):
            return None
        if event.get("type") not in ACCEPTED_EVENTS or event.get("bot_id") is not None:
            return None  # a bot's message (Haven's own among them): Bolt's self-event rule decides
        if self._bot_user is None or event.get("user") == self._bot_user:
            return None
        if not bolt_can_read(payload):
            return None  # Haven's workspace middleware refuses it (400) before anything is recorded
        return payload

    async def _dispatch(self, body: str, headers: dict[str, Any], entry: Admitted) -> None:
        """Bolt's dispatch of a recorded message: its middleware passes the entry to the listeners."""
        try:
            # Tracked like a listener: a shutdown lets it start the turn and finish it, or release it.
            with self._track():
                # The acknowledgements in progress first: this message is durable already, theirs not.
                await self._after_intake()
                request = AsyncBoltRequest(body=body, headers=headers, context=admitted_context(entry))
                response = await self._app.async_dispatch(request)
        except Exception as exc:
            entry.ticket.leave()
            log_failure(log, "slack dispatch of a recorded message failed; left to recovery", exc)
            return
        if response.status != 200:
            # No listener took it: the entry lapses to recovery, which answers it; the thread goes on.
            entry.ticket.leave()
            log.warning("slack recorded message not dispatched", extra={"status": response.status})
