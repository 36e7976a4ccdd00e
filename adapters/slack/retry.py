"""Retries for Slack Web API faults (429, 5xx, dropped connections), without posting anything twice.

slack_sdk retries through handlers on the ``AsyncWebClient``; Haven installs three, each of which knows
which methods are safe to repeat:

- **429 Too Many Requests** — retried (up to ``RATE_LIMIT_RETRIES`` times), after the ``Retry-After``
  Slack sent. Slack did nothing with a rate-limited request, so a retry cannot duplicate it. A wait
  longer than ``MAX_RETRY_AFTER`` is not sat out: the call fails instead. The calls a reply makes while
  the model writes (``NOT_WAITED``, and updates sent with ``NO_WAIT_HEADER``) are never retried after a
  wait: waiting there would stop Haven reading the model's stream, and the reply has another way
  (``reply.LiveReply``).
- **Connection errors** — a connection that never opened (``ClientConnectorError``: refused, DNS,
  unreachable) is retried for every method: the request was never sent. A connection that broke
  *after* the request went out (server disconnected, reset by peer) is retried only for methods that
  are safe to repeat (reads, ``chat.update``, ``chat.delete``, …), since Slack may have done the work.
- **500 / 503** — retried for the methods that are safe to repeat, and *once* for ``chat.postMessage``
  and ``chat.postEphemeral``. Slack has no idempotency key: if Slack stored the message and then
  failed to answer, the retry posts it a second time. Haven accepts that rare duplicate rather than
  leaving a person without their reply. The streaming methods are never retried on a 5xx: a repeated
  ``chat.appendStream`` would show text twice, so the reply switches to ``chat.update`` instead, which
  rewrites the whole message and so repairs whatever state Slack is in.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import ClientConnectorError, ClientOSError, ServerConnectionError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.ports import MetricsSink

RATE_LIMIT_RETRIES = 2
SERVER_ERROR_RETRIES = 2
CONNECTION_RETRIES = 2
MAX_RETRY_AFTER = 30.0

# Repeating these cannot change what people see twice: reads, and writes that set a final state.
SAFE_TO_REPEAT = frozenset(
    {
        "auth.test",
        "apps.connections.open",
        "users.info",
        "chat.getPermalink",
        "chat.update",
        "chat.delete",
        "conversations.open",
        "views.open",  # a trigger_id works once: a repeat fails instead of opening a second modal
        "chat.stopStream",  # a second stop fails (the stream is no longer open) instead of adding text
    }
)
# A 429 on these fails at once instead of being waited out: they are made while the model's stream is
# being read. A rate-limited start makes that reply post + update, a rate-limited append is caught up by
# the next append or the stop, the stop falls back to chat.update, and the thinking status is only a hint.
NOT_WAITED = frozenset(
    {"chat.startStream", "chat.appendStream", "chat.stopStream", "assistant.threads.setStatus"}
)
# A call that carries this header is not waited out on a 429 either, whatever its method: the chat.update
# calls a reply makes while the model writes (the final update, made good by nothing later, waits).
NO_WAIT_HEADER = "X-Haven-No-Wait"
NO_WAIT = {NO_WAIT_HEADER: "1"}
# Retried once on 500/503 although a duplicate is possible (see the module docstring).
POST_ONCE = frozenset({"chat.postMessage", "chat.postEphemeral"})

Sleep = Callable[[float], Awaitable[Any]]


def method_of(request: HttpRequest) -> str:
    """``https://slack.com/api/chat.postMessage?x=1`` → ``chat.postMessage``."""
    return request.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]


def retry_after(response: HttpResponse | None) -> float | None:
    return None if response is None else retry_after_of(response.headers)


def retry_after_of(headers: Mapping[str, Any]) -> float | None:
    """The seconds in a ``Retry-After`` header (a retry handler's or a ``SlackApiError``'s response)."""
    for key, values in headers.items():
        if key.lower() == "retry-after":
            value = values[0] if isinstance(values, list) else values
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


class _Sleeps(AsyncRetryHandler):
    """A handler whose waits go through ``self.sleep`` (tests make it instant and record it)."""

    sleep: Sleep = staticmethod(asyncio.sleep)  # type: ignore[assignment]

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        return float(self.interval_calculator.calculate_sleep_duration(state.current_attempt))

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        await self.sleep(self._delay(state, response))
        state.increment_current_attempt()


class RateLimitRetry(_Sleeps, AsyncRateLimitErrorRetryHandler):
    def __init__(self, max_retry_count: int = RATE_LIMIT_RETRIES, max_wait: float = MAX_RETRY_AFTER) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        # (method, kind) of every failed attempt: installed first, this handler sees each outcome.
        self.observe: Callable[[str, str], None] | None = None

    async def can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if self.observe is not None and (kind := failure_kind(response, error)) is not None:
            self.observe(method_of(request), kind)
        return await super().can_retry_async(state=state, request=request, response=response, error=error)

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429 or method_of(request) in NOT_WAITED:
            return False
        if any(key.lower() == NO_WAIT_HEADER.lower() for key in request.headers):
            return False
        wait = retry_after(response)
        return wait is None or wait <= self.max_wait

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        wait = retry_after(response)
        # A little jitter, so the workers Slack throttled together do not come back together.
        return (1.0 if wait is None else wait) + random.uniform(0.0, 0.25)


class _Backoff(_Sleeps):
    """Exponential backoff from half a second, shared by the 5xx and connection handlers."""

    default_retries = 2

    def __init__(self, max_retry_count: int | None = None) -> None:
        super().__init__(
            max_retry_count=self.default_retries if max_retry_count is None else max_retry_count,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=0.5),
        )


class ServerErrorRetry(_Backoff, AsyncServerErrorRetryHandler):
    default_retries = SERVER_ERROR_RETRIES

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code not in (500, 503):
            return False
        method = method_of(request)
        if method in SAFE_TO_REPEAT:
            return True
        return method in POST_ONCE and state.current_attempt == 0


class ConnectionRetry(_Backoff, AsyncConnectionErrorRetryHandler):
    default_retries = CONNECTION_RETRIES

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if error is None:
            return False
        if isinstance(error, ClientConnectorError):
            return True  # never connected: nothing was sent
        return (
            isinstance(error, ServerConnectionError | ClientOSError) and method_of(request) in SAFE_TO_REPEAT
        )


def failure_kind(response: HttpResponse | None, error: Exception | None) -> str | None:
    """How an attempt failed (an HTTP status, ``rate_limited``, ``connection``, Slack's ``ok: false``
    error code), or None when it did not."""
    if error is not None:
        return "connection"
    if response is None:
        return None
    if response.status_code >= 400:
        return "rate_limited" if response.status_code == 429 else str(response.status_code)
    if isinstance(response.body, dict) and response.body.get("ok") is False:
        return str(response.body.get("error") or "error")[:40]
    return None


def count_api_errors(client: AsyncWebClient, sink: Callable[[], MetricsSink]) -> None:
    """Count ``client``'s failed attempts by method in ``sink()`` (read at each call): the first of
    Haven's handlers sees every attempt's outcome (see ``install_retry_handlers``)."""
    for handler in client.retry_handlers:
        if isinstance(handler, RateLimitRetry):
            handler.observe = lambda method, kind: sink().platform_error("slack", method, kind)


_REPLACED = (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)


def install_retry_handlers(client: AsyncWebClient) -> AsyncWebClient:
    """Give ``client`` Haven's handlers in place of slack_sdk's built-in ones (idempotent)."""
    kept = [h for h in client.retry_handlers if not isinstance(h, _REPLACED)]
    client.retry_handlers = [*kept, RateLimitRetry(), ServerErrorRetry(), ConnectionRetry()]
    return client
