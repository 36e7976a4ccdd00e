"""The risk detector runs off the event loop: a slow read of one message never stalls other threads.

A crafted 20,000-character message, or the first message of a process (which compiles the rule
tables), can keep the detector busy for milliseconds to seconds. The engine calls it in a worker
thread, so another conversation's turn goes on meanwhile. The detector is replaced here by one that
blocks its thread for a while on a marked message, as a slow read would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

import bot.engine
from bot.app import Services, initialize
from bot.rehearsal import RehearsalModel
from bot.types import Author, IncomingMessage, Origin, RiskAssessment, RiskLevel, ThreadRef, TurnStatus
from fakes.harness import make_settings

SLOW = "[slow]"
BLOCK_SECONDS = 1.0


def blocking_detector(text: str) -> RiskAssessment:
    if SLOW in text:
        time.sleep(BLOCK_SECONDS)  # a synchronous, CPU-bound read holds its thread, not the loop
    return RiskAssessment(RiskLevel.NONE, None, ())


@pytest.fixture
async def services(database_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Services]:
    monkeypatch.setattr(bot.engine, "assess_risk", blocking_detector)
    s = await initialize(make_settings(database_url), model=RehearsalModel())
    try:
        yield s
    finally:
        await s.aclose()


def message(thread: str, text: str) -> IncomingMessage:
    ref = ThreadRef("slack", "T1", "C1", thread)
    return IncomingMessage(ref, Author("U1", "Alice"), text, message_id=f"{thread}.1", origin=Origin.MENTION)


async def test_a_slow_read_does_not_stall_another_thread(services: Services) -> None:
    done: dict[str, float] = {}

    async def turn(name: str, text: str) -> None:
        result = await services.engine.handle_message(message(name, text))
        assert result.status is TurnStatus.REPLIED
        done[name] = time.perf_counter()

    started = time.perf_counter()
    slow = asyncio.create_task(turn("900.1", f"{SLOW} a very long message"))
    await asyncio.sleep(0.05)  # the slow read is under way
    await turn("900.2", "hello")
    # The quick thread was answered while the slow read still held its worker thread.
    assert "900.1" not in done
    assert done["900.2"] - started < BLOCK_SECONDS
    await slow
    assert done["900.1"] - started >= BLOCK_SECONDS
