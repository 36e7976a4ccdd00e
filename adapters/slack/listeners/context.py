"""Haven's Bolt global middleware: who a request is from, resolved once, read by every listener.

It runs before any listener (and before Bolt acknowledges the request), so it only reads the payload
and awaits nothing: the workspace is known at once, and looking the person up (``users.info``) stays
lazy — most thread messages in a busy channel are not Haven's, and a message must take its thread's
lock before its first await to keep arrival order.

Like Bolt's ``Assistant`` it is an ``AsyncMiddleware`` object rather than a function: Bolt builds a
function's arguments from the payload, and that building itself fails on some malformed payloads.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.payload_utils import (
    to_action,
    to_command,
    to_event,
    to_message,
    to_options,
    to_shortcut,
    to_step,
    to_view,
)
from slack_bolt.response import BoltResponse

from adapters.slack.api import Person, SlackApi
from adapters.slack.workspaces import act_for

log = logging.getLogger(__name__)

_KEY = "haven_requester"

# What Bolt reads from every payload to inject listener (and error handler) arguments.
_BOLT_READS = (to_options, to_shortcut, to_action, to_view, to_command, to_event, to_message, to_step)


@dataclass(frozen=True, slots=True)
class Requester:
    """The workspace a request belongs to and the person who sent it."""

    team: str
    user_id: str | None
    _api: SlackApi

    @property
    def user(self) -> str:
        """The person who acted; a payload without one is malformed (the error handler's case)."""
        if not self.user_id:
            raise LookupError("the request names no user")
        return self.user_id

    async def person(self, user_id: str | None = None, *, fresh: bool = False) -> Person:
        """Who ``user_id`` (by default the person who acted) is; cached briefly unless ``fresh``."""
        return await self._api.person(self.team, user_id or self.user, fresh=fresh)


class WorkspaceContext(AsyncMiddleware):
    """The global middleware (``app.use``) that puts a ``Requester`` into every request's context."""

    def __init__(self, api: SlackApi) -> None:
        self._api = api

    async def async_process(
        self,
        *,
        req: AsyncBoltRequest,
        resp: BoltResponse,
        next: Callable[[], Awaitable[BoltResponse]],  # Bolt calls it by this name
    ) -> BoltResponse | None:
        if not bolt_can_read(req.body):
            # Bolt would fail building the listener's arguments, and then the error handler's: refuse
            # it here instead (the type of the failure only; the body may hold people's words).
            log.warning("slack request rejected", extra={"error": "unreadable payload"})
            return BoltResponse(status=400, body="")
        context = req.context
        user = context.user_id
        team = _team(context, req.body)
        context[_KEY] = Requester(team, str(user) if user else None, self._api)
        # Serving many workspaces, every call made for this request uses its workspace's token. Bolt runs
        # the middleware one after another (``next`` only marks this one done), not nested, so this sets
        # it for the rest of the request's task and the listener tasks it starts, not for a ``with``.
        act_for(self._api.client, team, context.token)
        return await next()


def requester(context: AsyncBoltContext) -> Requester:
    """The ``Requester`` the middleware resolved for this request."""
    found = context.get(_KEY)
    if not isinstance(found, Requester):
        raise LookupError("Haven's workspace middleware did not run")
    return found


def workspace_of(context: AsyncBoltContext) -> str | None:
    """The workspace the middleware resolved, if it ran (the error handler also sees refused requests)."""
    found = context.get(_KEY)
    return found.team if isinstance(found, Requester) else None


def bolt_can_read(body: dict[str, Any]) -> bool:
    """Whether Bolt can build its listener arguments from ``body`` (else the middleware answers 400)."""
    try:
        for read in _BOLT_READS:
            read(body)
    except (LookupError, TypeError, AttributeError):
        return False
    return True


def _team(context: AsyncBoltContext, body: Mapping[str, Any]) -> str:
    # The installation's workspace, not the clicker's: a Slack Connect guest acts in ours. Never raises
    # (a middleware failure answers Slack 500, even for a payload no listener would use).
    auth = context.authorize_result
    team = (auth.team_id if auth is not None else None) or context.team_id or body.get("team_id")
    if not team:
        named = body.get("team")
        team = named.get("id") if isinstance(named, Mapping) else None
    return str(team or "")
