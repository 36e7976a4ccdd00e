"""Slack fixtures over ``fakes.slack_harness``: a real Bolt app, signed requests, the mock Web API and the
fake Anthropic server, fresh per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fakes.fake_anthropic import FakeAnthropic
from fakes.mock_slack import MockSlack
from fakes.slack_harness import ADA, ALICE, BOB, SlackHarness, harness_on, verdict


@pytest.fixture
async def slack_mock() -> AsyncIterator[MockSlack]:
    async with MockSlack() as slack:
        slack.add_user(ALICE, "alice")
        slack.add_user(BOB, "bob")
        slack.add_user(ADA, "ada", is_admin=True)
        yield slack


@pytest.fixture
async def anthropic() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        server.responder = verdict
        yield server


@pytest.fixture
async def harness(
    database_url: str, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[SlackHarness]:
    """The core flows: once on SQLite, once on PostgreSQL."""
    async for h in harness_on(database_url, slack_mock, anthropic):
        yield h


@pytest.fixture
async def lite(
    sqlite_url: str, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[SlackHarness]:
    """The same harness on SQLite only, for the many edge cases."""
    async for h in harness_on(sqlite_url, slack_mock, anthropic):
        yield h
