"""Slack Web API faults (429 with Retry-After, 5xx, dropped connections — retried without double posts),
and the database failing under a turn (recovered through the durable inbox: answered once, or noted)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientConnectorError, ServerDisconnectedError
from aiohttp.client_reqrep import ConnectionKey
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import SlackConnector
from adapters.slack import reply as live_reply
from adapters.slack.app import SlackBot
from adapters.slack.retry import (
    NO_WAIT,
    ConnectionRetry,
    RateLimitRetry,
    ServerErrorRetry,
    install_retry_handlers,
)
from bot.engine import MAX_ATTEMPTS, Engine, EngineOptions
from bot.ports import StorageUnavailable
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import MockSlack
from fakes.slack_harness import BOT, BOT_TOKEN, SIGNING_SECRET, SlackHarness, post_words
from tests.slack.test_streaming import long_reply


def instant_sleeps(h: SlackHarness) -> list[float]:
    """Make the client's retry waits instant; returns the list the requested waits are recorded in."""
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    for handler in h.app.client.retry_handlers:
        handler.sleep = sleep  # type: ignore[attr-defined]
    return slept


async def test_a_rate_limited_post_waits_for_retry_after_and_posts_once(lite: SlackHarness) -> None:
    slept = instant_sleeps(lite)
    lite.slack.fail_http("chat.postMessage", 429, retry_after=1)
    lite.anthropic.enqueue(text("After the rate limit."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert [c.method for c in lite.slack.rejected] == ["chat.postMessage"]
    [post] = lite.posts(thread_ts=root)
    assert post_words(post) == "After the rate limit."
    assert len(slept) == 1 and 1.0 <= slept[0] < 1.5  # Retry-After honoured (plus a little jitter)


async def test_a_500_on_post_is_retried_once_and_posts_once(lite: SlackHarness) -> None:
    slept = instant_sleeps(lite)
    lite.slack.fail_http("chat.postMessage", 500)
    lite.anthropic.enqueue(text("After the server error."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert len(lite.slack.rejected) == 1 and len(slept) == 1
    assert [post_words(p) for p in lite.posts(thread_ts=root)] == ["After the server error."]


async def test_a_post_is_not_retried_twice_on_5xx(lite: SlackHarness) -> None:
    """Slack has no idempotency key: one retry on a 5xx is the most a post risks (see retry.py)."""
    instant_sleeps(lite)
    lite.slack.fail_http("chat.postMessage", 503, times=2)
    lite.anthropic.enqueue(text("Lost, logged."), text("Next one arrives."))
    root = lite.ts()

    await lite.mention("hello", ts=root)
    assert len(lite.slack.rejected) == 2 and lite.posts() == []

    await lite.reply("still there?", thread_ts=root)
    assert [post_words(p) for p in lite.posts(thread_ts=root)] == ["Next one arrives."]


async def test_reads_and_updates_are_retried_on_5xx(lite: SlackHarness) -> None:
    slept = instant_sleeps(lite)
    lite.slack.fail_http("users.info", 503, times=2)
    lite.anthropic.enqueue(text("Hello, alice."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert len(slept) == 2 and lite.slack.count("users.info") == 1
    assert "alice" in str(lite.model_requests()[0]["messages"])


async def test_a_stream_append_is_never_retried_on_5xx_the_message_is_rewritten(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_reply, "APPEND_EVERY", (0.0,))  # append each piece the model streams
    instant_sleeps(lite)
    lite.slack.fail_http("chat.appendStream", 500)
    reply = long_reply(5)
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("plan please", ts=root)

    assert [c.method for c in lite.slack.rejected] == ["chat.appendStream"]
    assert lite.slack.count("chat.appendStream") == 0
    [message] = lite.shown(root)
    assert message["text"] == reply and not message["streaming"]


def _request(method: str) -> HttpRequest:
    return HttpRequest(method="POST", url=f"http://127.0.0.1:1/api/{method}", headers={})


Check = Callable[..., Awaitable[bool]]


@pytest.mark.parametrize(
    ("method", "error", "retried"),
    [
        ("chat.postMessage", "refused", True),  # never connected: nothing was sent
        ("chat.postMessage", "disconnected", False),  # it may have been posted
        ("chat.appendStream", "disconnected", False),
        ("chat.update", "disconnected", True),  # rewriting the same text twice is harmless
        ("users.info", "disconnected", True),
    ],
)
async def test_connection_errors_are_retried_only_where_a_repeat_is_harmless(
    method: str, error: str, retried: bool
) -> None:
    exc: Exception
    if error == "refused":
        key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
        exc = ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
    else:
        exc = ServerDisconnectedError()
    check: Check = ConnectionRetry().can_retry_async
    assert await check(state=RetryState(), request=_request(method), error=exc) is retried


@pytest.mark.parametrize(
    ("method", "status", "attempt", "retried"),
    [
        ("chat.postMessage", 500, 0, True),
        ("chat.postMessage", 500, 1, False),
        ("chat.startStream", 503, 0, False),
        ("chat.appendStream", 500, 0, False),
        ("chat.update", 503, 1, True),
        ("chat.postMessage", 502, 0, False),
    ],
)
async def test_server_errors_are_retried_with_care(
    method: str, status: int, attempt: int, retried: bool
) -> None:
    state = RetryState(current_attempt=attempt)
    response = HttpResponse(status_code=status, headers={})
    check: Check = ServerErrorRetry().can_retry_async
    assert await check(state=state, request=_request(method), response=response) is retried


@pytest.mark.parametrize(
    ("method", "headers", "retried"),
    [
        ("chat.postMessage", {}, True),
        ("chat.update", {}, True),  # the final update of a reply waits for Slack
        ("chat.update", NO_WAIT, False),  # an edit while the model writes does not
        ("chat.startStream", {}, False),
        ("chat.appendStream", {}, False),
        ("chat.stopStream", {}, False),
        ("assistant.threads.setStatus", {}, False),
    ],
)
async def test_a_rate_limit_is_not_waited_out_while_the_model_writes(
    method: str, headers: dict[str, str], retried: bool
) -> None:
    request = HttpRequest(method="POST", url=f"http://127.0.0.1:1/api/{method}", headers=dict(headers))
    response = HttpResponse(status_code=429, headers={"Retry-After": ["30"]})
    check: Check = RateLimitRetry().can_retry_async
    assert await check(state=RetryState(), request=request, response=response) is retried


async def test_a_very_long_retry_after_is_not_sat_out() -> None:
    response = HttpResponse(status_code=429, headers={"Retry-After": ["120"]})
    check: Check = RateLimitRetry().can_retry_async
    assert not await check(state=RetryState(), request=_request("chat.postMessage"), response=response)


def test_handlers_replace_the_sdk_defaults_once() -> None:
    client = AsyncWebClient(token="xoxb-x")
    install_retry_handlers(install_retry_handlers(client))
    kinds: list[Any] = [type(h) for h in client.retry_handlers]
    assert kinds == [RateLimitRetry, ServerErrorRetry, ConnectionRetry]


async def test_the_connector_installs_them_on_its_own_client(tmp_path: Any, slack_mock: MockSlack) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="s",
        SLACK_API_URL=slack_mock.api_url,
    )
    async with services_for(settings) as services:
        connector = SlackConnector(services)
        kinds = {type(h) for h in connector.bot.app.client.retry_handlers}
        assert kinds == {RateLimitRetry, ServerErrorRetry, ConnectionRetry}


# -- the database going away under a turn -----------------------------------------------------------------
#
# With the durable inbox (on by default), a turn that fails is not retried in memory: its entry is let
# go, and recovery (``Engine.recover``, every ``RECOVERY`` seconds here) finishes it from the state it
# reached: answered once, in the message an earlier attempt left, or after the retry budget
# (``MAX_ATTEMPTS``) with the failure note. Never silence, never twice.

RECOVERY = 0.1
LEASE = 10.0  # a failed turn lets its entry go at once: recovery does not wait for the lease
FAILED_NOTE = "Sorry — something went wrong while I was answering. Please send your message again."


@pytest.fixture
async def recovering(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[SlackHarness]:
    """The harness as ``haven run`` composes it (inbox on, recovery attached), recovering every 0.1 s."""
    settings = make_settings(f"sqlite:///{tmp_path}/haven.db", anthropic.url, HAVEN_INBOX_LEASE_SECONDS=LEASE)
    async with services_for(settings) as built:
        options = EngineOptions(inbox_lease_seconds=LEASE, recovery_seconds=RECOVERY)
        engine = Engine(built.repo, built.model, options, inbox=built.repo, owner="test-process")
        services = replace(built, engine=engine)
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_mock.api_url)
        bot = SlackBot(services, client, signing_secret=SIGNING_SECRET, process_before_response=True)
        engine.attach("slack", bot.recovery)
        try:
            yield SlackHarness(bot.app, slack_mock, anthropic, services)
        finally:
            engine.begin_shutdown(0)
            await engine.aclose()


def _db_down() -> Exception:
    return StorageUnavailable("AdminShutdown")


def _fails(times: int | None, real: Callable[..., Awaitable[Any]], error: Callable[[], Exception]) -> Any:
    """``real``, failing its first ``times`` calls (every call: None) with ``error()``."""
    calls: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if times is None or len(calls) <= times:
            raise error()
        return await real(*args, **kwargs)

    flaky.calls = calls  # type: ignore[attr-defined]
    return flaky


async def until(check: Callable[[], Any], seconds: float = 5.0) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := check()):
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
    return found


async def settled(h: SlackHarness) -> None:
    """Recovery has had several more looks: anything it would still draw is drawn."""
    for _ in range(50):
        if await h.services.engine.pending() == 0:
            break
        await asyncio.sleep(RECOVERY)
    await asyncio.sleep(5 * RECOVERY)
    assert await h.services.engine.pending() == 0


async def test_a_turn_that_failed_on_a_passing_database_fault_is_recovered_and_answered_once(
    recovering: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, repo = recovering, recovering.services.repo
    flaky = _fails(1, repo.begin_turn, _db_down)
    monkeypatch.setattr(repo, "begin_turn", flaky)
    h.anthropic.enqueue(text("Answered after the fault."))
    root = h.ts()

    started = time.monotonic()
    assert (await h.event(h.message(f"<@{BOT}> hello", ts=root, kind="app_mention"))).status == 200
    await until(lambda: h.posts(thread_ts=root))
    assert time.monotonic() - started < LEASE / 2  # by the next recovery look, not after a lease
    await settled(h)

    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["Answered after the fault."]
    assert len(flaky.calls) == 2 and len(h.model_requests()) == 1


async def test_a_reply_that_started_but_could_not_be_stored_is_finished_in_its_own_message_once(
    recovering: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, repo = recovering, recovering.services.repo
    monkeypatch.setattr(repo, "finish_turn", _fails(1, repo.finish_turn, _db_down))
    first, again = long_reply(tag="a"), long_reply(tag="b")
    h.anthropic.enqueue(text(first), text(again))
    root = h.ts()

    await h.mention("plan please", ts=root)  # the reply streams, then storing the turn fails
    await until(lambda: [m for m in h.shown(root) if not m["streaming"]])
    await settled(h)

    # The same message, finished with the recovered answer (the model is asked again from the stored
    # history): one reply in the thread, no second post, no failure note.
    [message] = h.shown(root)
    assert message["text"].strip() == again.strip() and not message["streaming"]
    assert h.slack.count("chat.startStream") == 1 and h.slack.count("chat.postMessage") == 0
    assert len(h.model_requests()) == 2


async def test_a_short_reply_that_could_not_be_stored_is_answered_once_by_recovery(
    recovering: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model answered but storing the turn failed before anything showed: recovery answers it."""
    h, repo = recovering, recovering.services.repo
    monkeypatch.setattr(repo, "finish_turn", _fails(1, repo.finish_turn, _db_down))
    h.anthropic.enqueue(text("Short answer."), text("Short answer, stored."))
    root = h.ts()

    await h.mention("hello", ts=root)
    await until(lambda: h.posts(thread_ts=root))
    await settled(h)

    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["Short answer, stored."]
    assert len(h.model_requests()) == 2


async def test_a_reply_that_can_never_be_stored_gets_the_note_after_the_retry_budget_not_silence(
    recovering: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, repo = recovering, recovering.services.repo
    monkeypatch.setattr(repo, "finish_turn", _fails(None, repo.finish_turn, _db_down))
    root = h.ts()

    await h.mention("hello", ts=root)
    await until(lambda: h.posts(thread_ts=root))
    await settled(h)

    assert [p["text"] for p in h.posts(thread_ts=root)] == [FAILED_NOTE]
    assert len(h.model_requests()) == MAX_ATTEMPTS  # tried within the budget, then told


async def test_a_programming_error_is_not_retried_forever_gets_the_note_and_its_text_is_not_logged(
    recovering: SlackHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    h = recovering
    calls: list[int] = []

    def broken(text: str) -> Any:
        calls.append(1)
        raise KeyError("my very private words")

    monkeypatch.setattr("bot.engine.assess_risk", broken)
    root = h.ts()
    await h.mention("hello", ts=root)
    await until(lambda: h.posts(thread_ts=root))
    await settled(h)

    # Tried once live and by recovery up to the retry budget, then the person is told to send it
    # again, once (as on Discord): never silence, and never a loop.
    assert len(calls) == MAX_ATTEMPTS
    assert [p["text"] for p in h.posts()] == [FAILED_NOTE]
    [live] = [r for r in caplog.records if r.getMessage() == "slack turn failed; left to recovery"]
    assert live.levelname == "ERROR" and live.error == "KeyError"  # type: ignore[attr-defined]
    assert "test_platform_faults.py:broken" in live.where  # type: ignore[attr-defined]
    recovered = [r for r in caplog.records if r.getMessage() == "inbox entry not recovered"]
    assert len(recovered) == MAX_ATTEMPTS - 1
    assert all(r.error == "KeyError" for r in recovered)  # type: ignore[attr-defined]
    assert "private words" not in caplog.text


async def test_bolt_logs_a_listener_failure_without_the_exception_text(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("my very private words")

    monkeypatch.setattr(lite.services.engine, "end_by_command", broken)
    await lite.command("end https://haven-test.slack.com/archives/C1/p1700000000000100")
    assert "listener failed: ValueError at" in caplog.text
    assert "private words" not in caplog.text
