"""SlackConnector in both modes, in-process: Socket Mode against the mock's WebSocket, HTTP over real TCP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.slack import SlackConnector
from adapters.slack.connector import SlackConfigError
from bot.app import Services
from fakes.fake_anthropic import FakeAnthropic, delay, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import TEAM_ID, MockSlack
from fakes.ports import free_port
from fakes.slack_harness import (
    ALICE,
    BOT,
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    SlackHarness,
    post_words,
    signed_headers,
)


async def eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


def http_settings(tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic, port: int) -> Any:
    """A process in HTTP mode on ``port``, against the mock Slack and the scripted model."""
    return make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.api_url,
        PORT=port,
    )


@asynccontextmanager
async def http_connector(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[tuple[Services, SlackConnector, str]]:
    """A connected HTTP-mode connector on a free port, and its events URL; disconnected on the way out."""
    port = free_port()
    async with services_for(http_settings(tmp_path, slack_mock, anthropic, port)) as services:
        connector = SlackConnector(services, host="127.0.0.1")
        await connector.connect()
        try:
            yield services, connector, f"http://127.0.0.1:{port}/slack/events"
        finally:
            await connector.disconnect()


def mention_envelope(ts: str, words: str = "hello") -> dict[str, Any]:
    event = SlackHarness.message(f"<@{BOT}> {words}", ts=ts, kind="app_mention")
    return SlackHarness.envelope(event)


async def test_socket_mode_receives_events_and_commands(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN="xapp-1-A0-test",
        SLACK_API_URL=slack_mock.api_url,
    )
    anthropic.enqueue(text("Hello over Socket Mode."))
    async with services_for(settings) as services:
        connector = SlackConnector(services)
        assert connector.mode == "socket"
        await connector.connect()
        listening = asyncio.create_task(connector.listen())
        try:
            await slack_mock.wait_connected()
            ack = await slack_mock.wait_ack(
                await slack_mock.push("events_api", mention_envelope("1700000100.000001"))
            )
            assert "payload" not in ack or not ack["payload"]
            post = await eventually(lambda: slack_mock.calls_to("chat.postMessage"))
            assert post[0]["thread_ts"] == "1700000100.000001"
            assert post_words(post[0]) == "Hello over Socket Mode."

            command = {
                "team_id": TEAM_ID,
                "channel_id": CHANNEL,
                "user_id": ALICE,
                "command": "/haven",
                "text": "help",
                "response_url": slack_mock.response_url("socket-cmd"),
                "trigger_id": "t.1",
            }
            await slack_mock.wait_ack(await slack_mock.push("slash_commands", command))
            reply = await eventually(lambda: slack_mock.responses)
            assert "/haven new" in reply[0].args["text"]
        finally:
            await connector.disconnect()
            await asyncio.wait_for(listening, 5)
        await connector.disconnect()  # twice is fine
    # The app token was checked once up front, then used for the socket.
    assert slack_mock.count("apps.connections.open") >= 2


async def test_http_mode_acks_before_the_model_answers_and_verifies_signatures(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    port = free_port()
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        anthropic.url,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.api_url.rstrip("/"),  # the setting adds the slash slack_sdk needs
        PORT=port,
    )
    anthropic.enqueue(delay(1.5, text("Slow but sure.")))
    async with services_for(settings) as services:
        connector = SlackConnector(services, host="127.0.0.1")
        assert connector.mode == "http"
        await connector.connect()
        url = f"http://127.0.0.1:{port}/slack/events"
        try:
            async with aiohttp.ClientSession() as http:
                body = json.dumps(mention_envelope("1700000200.000001", "take your time"))
                started = time.monotonic()
                async with http.post(url, data=body, headers=signed_headers(body)) as resp:
                    assert resp.status == 200
                assert time.monotonic() - started < 1.0  # Slack wants its 200 within 3 s
                assert slack_mock.calls_to("chat.postMessage") == []

                async with http.post(url, data=body, headers=signed_headers(body, secret="wrong")) as resp:
                    assert resp.status == 401
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200

                post = await eventually(lambda: slack_mock.calls_to("chat.postMessage"))
                assert post_words(post[0]) == "Slow but sure."
        finally:
            await connector.disconnect()
    assert len([r for r in anthropic.model_requests() if not r.get("tool_choice")]) == 1


async def test_disconnect_lets_an_in_flight_turn_post_its_reply(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    port = free_port()
    settings = http_settings(tmp_path, slack_mock, anthropic, port)
    anthropic.enqueue(delay(0.5, text("Finished before shutdown.")))
    async with services_for(settings) as services:
        connector = SlackConnector(services, host="127.0.0.1")
        await connector.connect()
        async with aiohttp.ClientSession() as http:
            body = json.dumps(mention_envelope("1700000300.000001"))
            async with http.post(
                f"http://127.0.0.1:{port}/slack/events", data=body, headers=signed_headers(body)
            ):
                pass
        # Disconnect while the model is still answering (its request has arrived, its reply has not).
        for _ in range(100):
            if anthropic.model_requests():
                break
            await asyncio.sleep(0.02)
        assert anthropic.model_requests() and not slack_mock.calls_to("chat.postMessage")
        await connector.disconnect()
        assert [post_words(p) for p in slack_mock.calls_to("chat.postMessage")] == [
            "Finished before shutdown."
        ]


async def test_rejected_credentials_fail_connect_with_a_clear_error(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    base = {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_API_URL": slack_mock.api_url}
    db = f"sqlite:///{tmp_path}/haven.db"
    async with services_for(make_settings(db, anthropic.url, SLACK_APP_TOKEN="xapp-bad", **base)) as services:
        slack_mock.fail("apps.connections.open", "invalid_auth")
        with pytest.raises(SlackConfigError, match="SLACK_APP_TOKEN"):
            await SlackConnector(services).connect()
        slack_mock.fail("auth.test", "invalid_auth")
        with pytest.raises(SlackConfigError, match="SLACK_BOT_TOKEN"):
            await SlackConnector(services).connect()
    async with services_for(make_settings(db, anthropic.url, SLACK_BOT_TOKEN=BOT_TOKEN)) as services:
        with pytest.raises(SlackConfigError, match="SLACK_APP_TOKEN"):
            SlackConnector(services)


async def test_web_api_calls_share_one_keep_alive_session(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    """slack_sdk opens a connection per call unless given a session: the connector gives its client one
    at connect, Bolt's per-request clients take it, and disconnect closes it."""
    anthropic.enqueue(text("Kept alive."))
    async with http_connector(tmp_path, slack_mock, anthropic) as (_, connector, url):
        session = connector._client.session
        assert isinstance(session, aiohttp.ClientSession) and not session.closed
        async with aiohttp.ClientSession() as http:
            body = json.dumps(mention_envelope("1700000300.000001", "stay connected"))
            async with http.post(url, data=body, headers=signed_headers(body)) as resp:
                assert resp.status == 200
        await eventually(lambda: slack_mock.calls_to("chat.postMessage"))
        # The turn's calls went through the session: its pool keeps their connection open.
        pooled = session.connector._conns if session.connector is not None else {}  # type: ignore[attr-defined]
        assert sum(len(c) for c in pooled.values()) >= 1
    assert session.closed and connector._client.session is None


async def test_a_burst_of_first_events_makes_no_auth_test_of_its_own(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    """Bolt's single-workspace authorization calls ``auth.test`` at the first request, and once more for
    every request that arrives before that answered; the connector hands it the one it made at
    connect, so a burst's acknowledgements make none."""
    async with http_connector(tmp_path, slack_mock, anthropic) as (_, _, url):
        assert slack_mock.count("auth.test") == 1  # the connector's check of the token
        slack_mock.delays["auth.test"] = 0.5  # were Bolt to ask, the burst would overlap its call
        async with aiohttp.ClientSession() as http:

            async def send(i: int) -> int:
                body = json.dumps(mention_envelope(f"1700000400.{i:06d}", "hello"))
                async with http.post(url, data=body, headers=signed_headers(body)) as resp:
                    return resp.status

            assert await asyncio.gather(*(send(i) for i in range(20))) == [200] * 20
        await eventually(lambda: len(slack_mock.calls_to("chat.postMessage")) == 20)
    assert slack_mock.count("auth.test") == 1


async def test_http_mode_records_a_persons_message_before_bolt_and_leaves_the_rest_to_bolt(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``adapters.slack.intake``: a verified @mention is recorded and acknowledged before Bolt's dispatch
    (its message copy is a duplicate there too), then answered once through Bolt's listeners; a wrong
    signature, Haven's own message and a payload that is not a person's message go through Bolt as
    before; with the database away, the short path answers 503 and records nothing."""
    from bot.ports import StorageUnavailable

    anthropic.enqueue(text("Answered once."))
    async with http_connector(tmp_path, slack_mock, anthropic) as (services, connector, url):
        dispatched: list[str] = []
        bolt_dispatch = connector.bot.app.async_dispatch

        async def counting(req: Any) -> Any:
            dispatched.append(str(req.body.get("type")))
            return await bolt_dispatch(req)

        monkeypatch.setattr(connector.bot.app, "async_dispatch", counting)
        async with aiohttp.ClientSession() as http:

            async def post(payload: dict[str, Any], secret: str = SIGNING_SECRET) -> tuple[int, str]:
                body = json.dumps(payload)
                async with http.post(url, data=body, headers=signed_headers(body, secret=secret)) as r:
                    return r.status, await r.text()

            ts = "1700000500.000001"
            mention = mention_envelope(ts, "hello there")
            copy = SlackHarness.envelope(
                SlackHarness.message(f"<@{BOT}> hello there", ts=ts, kind="message"), event_id="EvCopy"
            )
            assert (await post(mention, secret="wrong"))[0] == 401  # Bolt's verification, as ever
            assert dispatched == ["event_callback"]
            assert (await post(mention))[0] == 200
            assert (await post(copy))[0] == 200  # left to its app_mention: acknowledged, not dispatched
            post_ = await eventually(lambda: slack_mock.calls_to("chat.postMessage"))
            assert [post_words(p) for p in post_] == ["Answered once."]
            # The mention was dispatched to Bolt once, after it was recorded; the copy never.
            assert dispatched == ["event_callback", "event_callback"]
            own = SlackHarness.message("a reply of Haven's", ts="1700000500.000009", kind="message")
            own.update(user=BOT, bot_id="B-HAVEN")
            assert (await post(SlackHarness.envelope(own)))[0] == 200
            status, answer = await post({"type": "url_verification", "challenge": "c-123"})
            assert (status, json.loads(answer)) == (200, {"challenge": "c-123"})
            assert len(dispatched) == 4  # both through Bolt

            async def unavailable(msg: Any) -> Any:
                raise StorageUnavailable("OperationalError")

            monkeypatch.setattr(services.engine, "accept", unavailable)
            later = mention_envelope("1700000600.000001", "are you there")
            assert (await post(later))[0] == 503  # Slack delivers it again later
            assert len(dispatched) == 4
    assert len(slack_mock.calls_to("chat.postMessage")) == 1
