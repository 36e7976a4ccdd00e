"""Discord's failed API calls, counted by route for ``/metrics`` (``haven_platform_api_errors_total``).

discord.py sends every REST call through one method, ``HTTPClient.request``, and retries rate limits
itself; a call that still fails raises ``discord.HTTPException`` (or a connection error). Wrapping that
method on the client's own ``HTTPClient`` instance (no global patching) sees each failure once, labelled
with the route's template (``POST /channels/{channel_id}/messages``: ids never reach a label).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import discord
from discord.http import HTTPClient, Route

from bot.ports import MetricsSink


def route_label(route: Route) -> str:
    return f"{route.method} {route.path}"


def failure_kind(exc: BaseException) -> str:
    """An HTTP status, ``rate_limited`` or ``connection`` (the Slack counter's vocabulary)."""
    if isinstance(exc, discord.HTTPException):
        return "rate_limited" if exc.status == 429 else str(exc.status)
    return "connection"


def count_api_errors(http: HTTPClient, sink: Callable[[], MetricsSink]) -> None:
    """Count ``http``'s failed calls in ``sink()`` (read at each failure: the engine's sink may be set
    after the client is built). Idempotent."""
    if getattr(http, "_haven_counted", False):
        return
    request = http.request

    async def counted(route: Route, **kwargs: Any) -> Any:
        try:
            return await request(route, **kwargs)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            sink().platform_error("discord", route_label(route), failure_kind(exc))
            raise

    http.request = counted  # type: ignore[method-assign]
    http._haven_counted = True  # type: ignore[attr-defined]
