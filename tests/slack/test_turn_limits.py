"""Admission control and the turn deadline on whole Slack turns: the real Bolt app, the mock Web API and
the scripted model, which counts the model calls in flight."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.slack.translate import thread_ref
from bot.admission import TOO_SLOW_NOTE
from fakes.fake_anthropic import Delay, delay, text
from fakes.mock_slack import TEAM_ID, MockSlack
from fakes.slack_harness import CHANNEL, harness_on, verdict
from tests.slack.counting_model import CountingAnthropic


@pytest.fixture
async def counting() -> AsyncIterator[CountingAnthropic]:
    async with CountingAnthropic() as server:
        server.responder = verdict
        yield server


async def test_with_a_limit_of_two_five_threads_share_two_model_slots_and_all_are_answered(
    tmp_path: Path, slack_mock: MockSlack, counting: CountingAnthropic
) -> None:
    counting.default = lambda body: Delay(0.4, text("Answered in turn."))
    async for h in harness_on(
        f"sqlite:///{tmp_path}/haven.db", slack_mock, counting, HAVEN_MAX_CONCURRENT_TURNS=2
    ):
        roots = [h.ts() for _ in range(5)]
        await asyncio.gather(*(h.mention(f"question {n}", ts=ts) for n, ts in enumerate(roots)))
        assert counting.peak == 2, f"{counting.peak} model calls ran at once"
        assert h.services.engine.admission.peak == 2
        for ts in roots:
            assert [m["text"] for m in h.shown(ts)] == ["Answered in turn."]
        assert len(h.model_requests()) == 5


async def test_without_the_limit_the_same_five_run_at_once(
    tmp_path: Path, slack_mock: MockSlack, counting: CountingAnthropic
) -> None:
    """The control for the test above: the scripted server does see concurrency when nothing limits it."""
    counting.default = lambda body: Delay(0.4, text("Answered at once."))
    async for h in harness_on(f"sqlite:///{tmp_path}/haven.db", slack_mock, counting):
        await asyncio.gather(*(h.mention(f"question {n}", ts=h.ts()) for n in range(5)))
        assert counting.peak == 5


async def test_a_model_slower_than_the_deadline_gets_the_note_and_the_thread_goes_on(
    tmp_path: Path, slack_mock: MockSlack, counting: CountingAnthropic
) -> None:
    counting.enqueue(delay(3.0, text("Far too late.")), text("Back to normal."))
    async for h in harness_on(
        f"sqlite:///{tmp_path}/haven.db", slack_mock, counting, HAVEN_TURN_DEADLINE_SECONDS=1.0
    ):
        root = h.ts()
        loop = asyncio.get_running_loop()
        began = loop.time()
        await h.mention("first question", ts=root)
        assert loop.time() - began < 2.5
        assert [m["text"] for m in h.shown(root)] == [TOO_SLOW_NOTE]

        await h.reply("second question", thread_ts=root)
        assert [m["text"] for m in h.shown(root)] == [TOO_SLOW_NOTE, "Back to normal."]
        # The stopped turn stored nothing of the model's: the next request carries both of the person's
        # messages (the first stayed stored, as on any model failure) and no reply to the first.
        retry = h.model_requests()[-1]
        words = json.dumps(retry["messages"])
        assert "first question" in words and "second question" in words
        assert "Far too late" not in words
        assert [m["role"] for m in retry["messages"]][-1] == "user"
        history = await h.services.engine.history(thread_ref(TEAM_ID, CHANNEL, root))
        assert [m.role for m in history] == ["user", "user", "assistant"]
