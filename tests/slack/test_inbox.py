"""The durable inbox through the real Bolt app (signed requests, the mock Web API, the fake Anthropic
server, real storage): a message is acknowledged only once recorded, answered once, and a recovered
entry continues the message its first attempt left instead of posting a second one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import SlackBot
from adapters.slack.listeners.inbox import recorded
from adapters.slack.translate import message_from_event
from bot.ports import StorageUnavailable
from bot.types import Accepted, Author
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import MockSlack
from fakes.slack_harness import ALICE, BOT, BOT_TOKEN, SIGNING_SECRET, TEAM, SlackHarness, post_words


async def harness_with_inbox(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic, *, process_before_response: bool
) -> AsyncIterator[tuple[SlackHarness, SlackBot]]:
    settings = make_settings(f"sqlite:///{tmp_path}/haven.db", anthropic.url)
    async with services_for(settings) as services:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_mock.api_url)
        bot = SlackBot(
            services,
            client,
            signing_secret=SIGNING_SECRET,
            process_before_response=process_before_response,
            inbox=True,
        )
        yield SlackHarness(bot.app, slack_mock, anthropic, services), bot


@pytest.fixture
async def inboxed(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[tuple[SlackHarness, SlackBot]]:
    """The harness with the inbox middleware on (SQLite: one process); a dispatch returns once the
    listeners ran."""
    async for found in harness_with_inbox(tmp_path, slack_mock, anthropic, process_before_response=True):
        yield found


def mention_event(h: SlackHarness, words: str, ts: str) -> dict[str, Any]:
    return h.message(f"<@{BOT}> {words}", ts=ts, kind="app_mention")


async def test_with_the_database_away_the_event_gets_503_and_is_answered_once_when_delivered_again(
    inboxed: tuple[SlackHarness, SlackBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, _ = inboxed
    h.anthropic.enqueue(text("Answered after the outage."))
    root = h.ts()
    database = h.services.repo.database
    real_run = database.run

    async def unreachable(*_: Any, **__: Any) -> Any:
        raise StorageUnavailable("OperationalError")

    monkeypatch.setattr(database, "run", unreachable)
    refused = await h.event(mention_event(h, "are you there?", root))
    assert refused.status == 503  # not acknowledged: Slack delivers it again
    assert h.posts() == [] and h.model_requests() == []

    monkeypatch.setattr(database, "run", real_run)
    again = await h.event(mention_event(h, "are you there?", root), retry=1)
    assert again.status == 200
    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["Answered after the outage."]
    assert await h.services.engine.pending() == 0


async def test_the_mention_and_message_pair_and_slacks_retry_are_answered_once(
    inboxed: tuple[SlackHarness, SlackBot],
) -> None:
    h, _ = inboxed
    h.anthropic.enqueue(text("One answer."))
    root = h.ts()
    await h.mention("hello", ts=root)  # app_mention, then its message copy
    reply_ts = h.ts()
    h.anthropic.enqueue(text("Reply answered."))
    event = h.message("and then?", ts=reply_ts, thread_ts=root)
    assert (await h.event(event)).status == 200
    assert (await h.event(event, retry=1)).status == 200
    assert (
        await h.event(h.message("and then?", ts=reply_ts, thread_ts=root, kind="app_mention"))
    ).status == 200

    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["One answer.", "Reply answered."]
    assert len(h.model_requests()) == 2


async def test_a_recovered_answer_updates_the_message_its_first_attempt_left(
    inboxed: tuple[SlackHarness, SlackBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    h, bot = inboxed
    engine = h.services.engine
    reply = "Here is a long plan. " * 20  # long enough to be shown while it is written
    h.anthropic.enqueue(text(reply))
    root = h.ts()
    real_render = bot._shared.render

    async def dies_while_drawing(*_: Any, **__: Any) -> None:
        raise ConnectionError("the process lost Slack while finishing the reply")

    # The answer is stored and its reply already in Slack (its stream is stopped as the model finishes,
    # before the turn is stored: LiveReply.settle); drawing the result fails.
    monkeypatch.setattr(bot._shared, "render", dies_while_drawing)
    assert (await h.event(mention_event(h, "plan my week", root))).status == 200
    [started] = h.shown(root)
    assert started["text"].strip() == reply.strip()

    monkeypatch.setattr(bot._shared, "render", real_render)
    assert await engine.recover({"slack": bot.recovery}) == 1
    assert await engine.recover({"slack": bot.recovery}) == 0

    [shown] = h.shown(root)  # the same message, finished: not a second one
    assert shown["text"].strip() == reply.strip() and not shown["streaming"]
    assert h.slack.count("chat.postMessage") == 0 and h.slack.count("chat.startStream") == 1
    assert len(h.model_requests()) == 1  # redrawn from the stored result, not asked again
    assert await engine.pending() == 0


@pytest.fixture
async def acknowledging(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[tuple[SlackHarness, SlackBot]]:
    """As ``inboxed``, but Bolt answers Slack before the listeners run (``process_before_response``
    off, as in production): a dispatch returns when the event is acknowledged."""
    async for found in harness_with_inbox(tmp_path, slack_mock, anthropic, process_before_response=False):
        yield found


async def test_an_acknowledgement_never_waits_for_users_info_and_the_turn_looks_the_author_up(
    acknowledging: tuple[SlackHarness, SlackBot],
) -> None:
    h, _ = acknowledging
    h.slack.add_user(ALICE, "ana", locale="es-ES")
    h.slack.delays["users.info"] = 2.0  # Slack slow (or rate-limiting) on users.info
    h.anthropic.enqueue(text("Hello, Ana."))
    root = h.ts()
    started = time.monotonic()
    assert (await h.event(mention_event(h, "hello", root))).status == 200
    assert time.monotonic() - started < 1.5  # recorded and acknowledged without asking who wrote it
    stored = await h.services.repo.get_entry("1")
    assert stored is not None and stored.message.author == Author(ALICE, ALICE)  # only the id so far

    for _ in range(200):  # the turn runs after the acknowledgement, as a task of its own
        if h.posts(thread_ts=root):
            break
        await asyncio.sleep(0.05)
    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["Hello, Ana."]
    [request] = h.model_requests()
    # Looked up by the turn: Slack's name for her and her language.
    assert request["messages"][0]["content"][-1]["text"] == "[ana · locale es-ES] hello"
    assert h.slack.count("users.info") == 1


async def test_a_recovered_entry_recorded_with_only_its_authors_id_gets_the_author_looked_up(
    inboxed: tuple[SlackHarness, SlackBot],
) -> None:
    h, bot = inboxed
    h.slack.add_user(ALICE, "ana")
    h.anthropic.enqueue(text("Still here, Ana."))
    root = h.ts()
    # Another process recorded the mention while Slack waited, and died before its turn (lease over).
    event = mention_event(h, "are you still there?", root)
    msg = message_from_event(event, event_type="app_mention", team_id=TEAM, bot_user_id=BOT)
    assert msg is not None
    accepted, entry = await h.services.repo.accept(recorded(msg, None), "a-process-that-died", 0.0)
    assert accepted is Accepted.NEW and entry is not None

    assert await h.services.engine.recover({"slack": bot.recovery}) == 1
    assert [post_words(p) for p in h.posts(thread_ts=root)] == ["Still here, Ana."]
    [request] = h.model_requests()
    assert request["messages"][0]["content"][-1]["text"] == "[ana · locale en-US] are you still there?"
