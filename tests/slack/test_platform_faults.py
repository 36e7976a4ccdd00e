"""Slack Web API faults: 429 with Retry-After, 5xx, dropped connections — retried without double posts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientConnectorError, ServerDisconnectedError
from aiohttp.client_reqrep import ConnectionKey
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import SlackConnector
from adapters.slack.retry import ConnectionRetry, RateLimitRetry, ServerErrorRetry, install_retry_handlers
from fakes.fake_anthropic import text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import MockSlack
from fakes.slack_harness import BOT_TOKEN, SlackHarness
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
    assert post["text"] == "After the rate limit."
    assert len(slept) == 1 and 1.0 <= slept[0] < 1.5  # Retry-After honoured (plus a little jitter)


async def test_a_500_on_post_is_retried_once_and_posts_once(lite: SlackHarness) -> None:
    slept = instant_sleeps(lite)
    lite.slack.fail_http("chat.postMessage", 500)
    lite.anthropic.enqueue(text("After the server error."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert len(lite.slack.rejected) == 1 and len(slept) == 1
    assert [p["text"] for p in lite.posts(thread_ts=root)] == ["After the server error."]


async def test_a_post_is_not_retried_twice_on_5xx(lite: SlackHarness) -> None:
    """Slack has no idempotency key: one retry on a 5xx is the most a post risks (see retry.py)."""
    instant_sleeps(lite)
    lite.slack.fail_http("chat.postMessage", 503, times=2)
    lite.anthropic.enqueue(text("Lost, logged."), text("Next one arrives."))
    root = lite.ts()

    await lite.mention("hello", ts=root)
    assert len(lite.slack.rejected) == 2 and lite.posts() == []

    await lite.reply("still there?", thread_ts=root)
    assert [p["text"] for p in lite.posts(thread_ts=root)] == ["Next one arrives."]


async def test_reads_and_updates_are_retried_on_5xx(lite: SlackHarness) -> None:
    slept = instant_sleeps(lite)
    lite.slack.fail_http("users.info", 503, times=2)
    lite.anthropic.enqueue(text("Hello, alice."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert len(slept) == 2 and lite.slack.count("users.info") == 1
    assert "alice" in str(lite.model_requests()[0]["messages"])


async def test_a_stream_append_is_never_retried_on_5xx_the_message_is_rewritten(lite: SlackHarness) -> None:
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


# -- the database going away under a turn ----------------------------------------------------------------


def _db_down() -> Exception:
    from bot.ports import StorageUnavailable

    return StorageUnavailable("AdminShutdown")


async def test_a_turn_that_failed_on_a_passing_database_fault_runs_again(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = lite.services.engine
    real = engine.handle_message
    failures = [_db_down()]

    async def flaky(msg: Any, stream: Any = None, deliver: Any = None) -> Any:
        if failures:
            raise failures.pop()
        return await real(msg, stream, deliver)

    monkeypatch.setattr(engine, "handle_message", flaky)
    lite.anthropic.enqueue(text("Answered on the second attempt."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert [p["text"] for p in lite.posts(thread_ts=root)] == ["Answered on the second attempt."]
    assert len(lite.model_requests()) == 1


async def test_a_failure_after_the_reply_started_is_not_run_again_and_the_message_is_finished(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = lite.services.engine
    real = engine.handle_message
    calls: list[int] = []

    async def breaks_after_streaming(msg: Any, stream: Any = None, deliver: Any = None) -> Any:
        calls.append(1)
        await real(msg, stream, deliver)  # the reply streams …
        raise _db_down()  # … and then storing it fails

    monkeypatch.setattr(engine, "handle_message", breaks_after_streaming)
    lite.anthropic.enqueue(text(long_reply()))
    root = lite.ts()

    await lite.mention("hello", ts=root)  # Bolt logs the listener's exception

    assert calls == [1]
    [message] = lite.shown(root)
    assert not message["streaming"]
    assert message["text"].endswith(
        "Sorry — something went wrong while I was answering. Please send your message again."
    )


async def test_a_programming_error_is_not_retried_gets_a_note_and_its_text_is_not_logged(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[int] = []

    async def broken(msg: Any, stream: Any = None, deliver: Any = None) -> Any:
        calls.append(1)
        raise KeyError("my very private words")

    monkeypatch.setattr(lite.services.engine, "handle_message", broken)
    root = lite.ts()
    await lite.mention("hello", ts=root)
    assert calls == [1]
    # Never silence (as on Discord): the person is told to send the message again.
    assert [p["text"] for p in lite.posts()] == [
        "Sorry — something went wrong while I was answering. Please send your message again."
    ]
    assert lite.posts(thread_ts=root)
    [failed] = [r for r in caplog.records if r.getMessage() == "slack turn failed"]
    assert failed.levelname == "ERROR" and failed.error == "KeyError"  # type: ignore[attr-defined]
    assert "test_platform_faults.py:broken" in failed.where  # type: ignore[attr-defined]
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


async def test_a_short_reply_that_could_not_be_stored_is_not_silent(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model answered but storing the turn failed: a retry would be a duplicate, so tell the person."""
    repo = lite.services.repo

    async def store_fails(*args: Any, **kwargs: Any) -> Any:
        raise _db_down()  # after the storage layer's own retries ran out

    monkeypatch.setattr(repo, "finish_turn", store_fails)
    lite.anthropic.enqueue(text("Short answer."))
    root = lite.ts()

    await lite.mention("hello", ts=root)

    assert [p["text"] for p in lite.posts(thread_ts=root)] == [
        "Sorry — something went wrong while I was answering. Please send your message again."
    ]
    assert len(lite.model_requests()) == 1
