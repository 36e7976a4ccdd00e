"""Hostile text through the engine on both databases: never a crash, never a half-stored turn."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.app import Services
from bot.engine import MAX_INPUT_CHARS, clean_text
from bot.types import Author, IncomingMessage, Origin, ThreadRef, TurnStatus
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for

NASTY = [
    "",
    "   \n\t ",
    "\x00\x00\x00",
    "hello\x00world",
    "\x1b[31mred\x1b[0m \x07 bell",
    "lone surrogate \ud800 here",
    "مرحبا، كيف حالك؟ ‏RTL‏",
    "zero\u200bwidth\u200d\ufeffjoiners",
    "e\u0301 combining and 🧑🏽‍💻 emoji",
    "x" * 100_000,
    "line\r\nbreaks\rmixed\n",
    "'; DROP TABLE messages; --",
]


@pytest.fixture
async def server() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default=text("fine")) as s:
        yield s


@pytest.fixture
async def services(database_url: str, server: FakeAnthropic) -> AsyncIterator[Services]:
    async with services_for(make_settings(database_url, server.url)) as s:
        yield s


@pytest.mark.parametrize("body", NASTY, ids=range(len(NASTY)))
async def test_nasty_text_never_crashes_or_half_stores(services: Services, body: str) -> None:
    thread = ThreadRef("slack", "T1", "C1", "9.9")
    r = await services.engine.handle_message(
        IncomingMessage(thread, Author("U1", "Ann"), body, "9.9", origin=Origin.MENTION)
    )
    cleaned = clean_text(body)
    conv = await services.repo.find_conversation(thread)
    if not cleaned:
        assert r.status is TurnStatus.IGNORED and conv is None
    elif len(cleaned) > MAX_INPUT_CHARS:
        assert r.status is TurnStatus.REPLIED and "too long" in r.replies[0] and conv is None
    else:
        assert r.status is TurnStatus.REPLIED and conv is not None
        history = await services.repo.history(conv.id, "T1")
        assert [(m.role, m.kind) for m in history] == [("user", "text"), ("assistant", "text")]
        assert history[0].text == cleaned
        assert "\x00" not in (history[0].text or "")


@given(st.text(max_size=300))
@settings(max_examples=150, deadline=None)
def test_clean_text_is_safe_and_idempotent(raw: str) -> None:
    cleaned = clean_text(raw)
    assert clean_text(cleaned) == cleaned
    assert "\x00" not in cleaned
    cleaned.encode("utf-8")  # never raises: no lone surrogates survive


@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=400))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_text_is_a_clean_turn(services: Services, raw: str) -> None:
    thread = ThreadRef("slack", "T1", "C2", str(abs(hash(raw))))
    r = await services.engine.handle_message(
        IncomingMessage(thread, Author("U1", "Ann"), raw, thread.thread, origin=Origin.DIRECT)
    )
    assert r.status in (TurnStatus.REPLIED, TurnStatus.IGNORED, TurnStatus.DUPLICATE)
