"""The weekly digest on Slack: one post to the alert channel with counts and links, never content."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.slack import SlackConnector
from bot.ports import DigestSink
from bot.types import Digest
from fakes.harness import make_settings, services_for
from fakes.mock_slack import TEAM_ID, MockSlack
from fakes.slack_harness import ALERTS, BOT_TOKEN, CHANNEL, SIGNING_SECRET

DIGEST = Digest(
    platform="slack",
    workspace=TEAM_ID,
    channel=ALERTS,
    since=datetime(2026, 11, 16, 9, tzinfo=UTC),
    endings_by_reason={"abuse": 2, "user_request": 3, "user_command": 0},
    vetoes=4,
    warnings=7,
    feedback=2,
    reported=((CHANNEL, "1700000000.000100"), ("CPRIVATE01", "1700000500.000200")),
)


@pytest.fixture
async def connector(tmp_path: Path, slack_mock: MockSlack) -> AsyncIterator[SlackConnector]:
    settings = make_settings(
        f"sqlite:///{tmp_path}/haven.db",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.api_url,
    )
    async with services_for(settings) as services:
        yield SlackConnector(services)


async def test_the_digest_is_one_post_with_counts_and_thread_links(
    connector: SlackConnector, slack_mock: MockSlack
) -> None:
    assert isinstance(connector, DigestSink)  # what `haven run` hands the scheduler, keyed "slack"
    connector.bot.workspace_url = "https://haven-test.slack.com/"  # what connect() learns from auth.test

    await connector.send_digest(DIGEST)

    [post] = slack_mock.calls_to("chat.postMessage")
    assert post["channel"] == ALERTS and "thread_ts" not in post
    body = post["text"]
    assert "since 2026-11-16" in body
    assert "Conversations ended: *5* (3 at the user's request, 2 after repeated warnings about abuse)" in body
    assert "with the end command" not in body  # a reason with no endings is left out
    assert "at risk: *4*" in body and "Warnings given before an ending: *7*" in body
    assert "reported as a mistake: *2*" in body
    assert f"<https://haven-test.slack.com/archives/{CHANNEL}/p1700000000000100|thread>" in body
    assert "<https://haven-test.slack.com/archives/CPRIVATE01/p1700000500000200|thread>" in body
    assert slack_mock.count("chat.getPermalink") == 0
    assert [c.method for c in slack_mock.calls] == ["chat.postMessage"]


async def test_without_the_workspace_url_links_come_from_get_permalink(
    connector: SlackConnector, slack_mock: MockSlack
) -> None:
    many = Digest(
        "slack",
        TEAM_ID,
        ALERTS,
        DIGEST.since,
        reported=tuple((CHANNEL, f"17000000{i:02d}.000100") for i in range(25)),
    )
    await connector.send_digest(many)

    assert slack_mock.count("chat.getPermalink") == 20
    [post] = slack_mock.calls_to("chat.postMessage")
    assert "and 5 more" in post["text"]
    assert "Conversations ended: *0*" in post["text"]


async def test_a_digest_that_cannot_be_posted_raises_for_the_scheduler_to_log(
    connector: SlackConnector, slack_mock: MockSlack
) -> None:
    slack_mock.fail("chat.postMessage", "channel_not_found")
    with pytest.raises(RuntimeError):
        await connector.send_digest(DIGEST)
