"""Haven in many Slack workspaces, over real HTTP: Bolt's OAuth install flow against the mock Slack
(``oauth.v2.access``, the state store in Haven's database), a second workspace's events answered with
that workspace's own token (also when recovery draws without a request), and ``app_uninstalled`` /
``tokens_revoked`` removing the installation, after which the workspace is not answered.

Built the way ``haven run`` builds it (``bot.connectors.build_connectors`` from the settings), on SQLite
and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import func, select

from adapters.slack import SlackConnector
from adapters.slack.app import build_app
from bot.app import Services
from bot.connectors import build_connectors
from bot.types import Digest
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import CLIENT_ID, CLIENT_SECRET, MockSlack
from fakes.ports import free_port
from fakes.slack_harness import BOT_TOKEN, SIGNING_SECRET, TEAM, SlackHarness, signed_headers
from storage.departures import Departures
from storage.models import BOTS, INBOX, INSTALLATIONS, STATES
from tests.slack.test_connector import eventually

SECOND = "T0SECOND1"
SECOND_TOKEN = "xoxb-second-workspace-token"
SECOND_BOT = "USECONDBOT"
CAROL = "UCAROL001"  # a person in the second workspace
ROOM = "CROOM0001"
RECOVERY = 0.5  # HAVEN_RECOVERY_SECONDS


@dataclass
class Site:
    services: Services
    connector: SlackConnector
    base: str
    http: aiohttp.ClientSession

    async def rows(self, table: Any, *where: Any) -> int:
        async with self.services.repo.database.connect() as conn:
            result = await conn.execute(select(func.count()).select_from(table).where(*where))
        return int(result.scalar() or 0)

    async def post_event(self, envelope: dict[str, Any]) -> int:
        body = json.dumps(envelope)
        async with self.http.post(
            f"{self.base}/slack/events", data=body, headers=signed_headers(body)
        ) as resp:
            return resp.status

    async def install(self, code: str) -> tuple[int, str]:
        """The installer's browser: the install page, Slack's authorize page (played here), the redirect;
        the redirect's status and its query string."""
        async with self.http.get(f"{self.base}/slack/install") as resp:
            assert resp.status == 200
            page = await resp.text()
            # Bolt's state cookie is Secure (https); over the test's http, hand it back as a browser would.
            [cookie] = [c.split(";")[0] for c in resp.headers.getall("Set-Cookie")]
            self.http.cookie_jar.update_cookies(SimpleCookie(cookie))
        link = re.search(r'href="([^"]+/oauth/v2/authorize[^"]*)"', page)
        assert link is not None, page
        query = parse_qs(urlparse(link.group(1).replace("&amp;", "&")).query)
        assert query["client_id"] == [CLIENT_ID]
        assert set(query["scope"][0].split(",")) >= {"app_mentions:read", "chat:write", "commands"}
        state = query["state"][0]
        # The state is in Haven's database until the redirect consumes it.
        assert await self.rows(STATES, STATES.c.state == state) == 1
        return await self.redirect(code, state), state

    async def redirect(self, code: str, state: str) -> int:
        async with self.http.get(
            f"{self.base}/slack/oauth_redirect", params={"code": code, "state": state}
        ) as r:
            return r.status


def second_envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    envelope = SlackHarness.envelope(event, event_id=event_id)
    envelope["team_id"] = SECOND
    envelope["authorizations"] = [{"team_id": SECOND, "user_id": SECOND_BOT, "is_bot": True}]
    return envelope


def mention(ts: str, words: str) -> dict[str, Any]:
    event = SlackHarness.message(
        f"<@{SECOND_BOT}> {words}", ts=ts, user=CAROL, channel=ROOM, kind="app_mention"
    )
    event["team"] = SECOND
    return event


def uninstalled() -> dict[str, Any]:
    return second_envelope(
        {"type": "app_uninstalled", "event_ts": f"{time.time():.6f}"}, event_id="EvUninstall"
    )


@pytest.fixture
async def site(database_url: str, slack_mock: MockSlack, anthropic: FakeAnthropic) -> AsyncIterator[Site]:
    port = free_port()
    settings = make_settings(
        database_url,
        anthropic.url,
        SLACK_CLIENT_ID=CLIENT_ID,
        SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_mock.api_url,
        PORT=port,
        HAVEN_BIND_ADDRESS="127.0.0.1",
        # A turn that could not draw its reply is drawn by the next recovery round: soon, not in 5 s.
        HAVEN_RECOVERY_SECONDS=RECOVERY,
    )
    slack_mock.add_user(CAROL, "carol", team_id=SECOND)
    async with services_for(settings) as services:
        [connector] = build_connectors(services)
        assert isinstance(connector, SlackConnector) and connector.mode == "http"
        await connector.connect()
        # The installer's browser (aiohttp keeps no cookies of an IP address by default).
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            try:
                yield Site(services, connector, f"http://127.0.0.1:{port}", http)
            finally:
                await connector.disconnect()


def tokens_logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records if r.levelno >= logging.INFO)


async def test_install_then_answer_with_the_workspaces_own_token_then_uninstall(
    site: Site, slack_mock: MockSlack, anthropic: FakeAnthropic, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    code = slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)

    status, state = await site.install(code)
    assert status == 200
    # Haven's own calls share the connector's keep-alive session (opened at connect).
    base, own = site.connector._client, site.connector.bot.api.client
    assert own is not base and base.session is not None and own.session is base.session
    [access] = [c for c in slack_mock.calls if c.method == "oauth.v2.access"]
    assert access.args["code"] == code and access.headers["Authorization"].startswith("Basic ")
    # The state was consumed, and the installation (with its bot token) is stored.
    assert await site.rows(STATES) == 0
    assert await site.rows(BOTS, BOTS.c.team_id == SECOND) == 1
    assert await site.rows(INSTALLATIONS, INSTALLATIONS.c.team_id == SECOND) == 1
    # The same redirect again (a replayed link): its state is gone, so Slack is not asked again.
    assert await site.redirect(code, state) == 401  # invalid_state
    assert slack_mock.count("oauth.v2.access") == 1

    # A signed event from the new workspace is answered there, with that workspace's token.
    anthropic.enqueue(text("Hello, second workspace."))
    slack_mock.reset()
    root = "1700000500.000001"
    assert await site.post_event(second_envelope(mention(root, "hello"))) == 200
    await eventually(lambda: slack_mock.thread(ROOM, root))
    [shown] = slack_mock.thread(ROOM, root)
    assert shown["text"].strip() == "Hello, second workspace."
    made = [c for c in slack_mock.calls if c.method != "auth.test"]
    assert made and {slack_mock.token_of(c) for c in made} == {SECOND_TOKEN}
    # Slack delivers it again: authorized from the cache (no second auth.test), answered once.
    checks = slack_mock.count("auth.test")
    assert await site.post_event(second_envelope(mention(root, "hello"))) == 200
    assert slack_mock.count("auth.test") == checks and len(slack_mock.thread(ROOM, root)) == 1

    # Uninstalled: the installation goes, the workspace is recorded as departed.
    assert await site.post_event(uninstalled()) == 200
    await eventually(lambda: "slack app uninstalled" in caplog.text)
    assert await site.rows(BOTS, BOTS.c.team_id == SECOND) == 0
    assert await site.rows(INSTALLATIONS, INSTALLATIONS.c.team_id == SECOND) == 0
    departed = await Departures(site.services.repo.database).get("slack", SECOND)
    assert departed is not None and departed.reason == "app_uninstalled"

    # A later event from it is not recorded or answered, and the log says why.
    slack_mock.reset()
    later = "1700000600.000001"
    assert await site.post_event(second_envelope(mention(later, "still there?"))) == 200
    await eventually(lambda: "no installation" in caplog.text)
    await asyncio.sleep(0.3)
    assert slack_mock.calls_to("chat.postMessage") == [] and slack_mock.thread(ROOM, later) == []
    assert await site.rows(INBOX, INBOX.c.workspace == SECOND, INBOX.c.thread == later) == 0
    line = next(r for r in caplog.records if "no installation" in r.getMessage())
    assert getattr(line, "workspace", None) == SECOND

    logged = tokens_logged(caplog)
    for secret in (SECOND_TOKEN, CLIENT_SECRET, SIGNING_SECRET, code):
        assert secret not in logged


async def test_recovery_draws_with_the_workspaces_token_from_the_installation_store(
    site: Site, slack_mock: MockSlack, anthropic: FakeAnthropic, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _ = await site.install(
        slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)
    )
    assert status == 200
    bot, engine = site.connector.bot, site.services.engine
    real_render = bot._shared.render

    async def dies_while_drawing(*_: Any, **__: Any) -> None:
        raise ConnectionError("the process lost Slack while drawing the reply")

    # The answer is stored but not drawn: recovery must draw it, without any request to take a token from.
    anthropic.enqueue(text("Answered by recovery."))
    monkeypatch.setattr(bot._shared, "render", dies_while_drawing)
    root = "1700000700.000001"
    assert await site.post_event(second_envelope(mention(root, "plan my week"))) == 200
    await eventually(lambda: anthropic.model_requests())
    await asyncio.sleep(0.3)
    monkeypatch.setattr(bot._shared, "render", real_render)
    bot.tokens.forget(SECOND) if bot.tokens is not None else None  # no token left from the request
    slack_mock.reset()

    await eventually(lambda: slack_mock.thread(ROOM, root), seconds=15)
    await engine.recover({"slack": bot.recovery})
    [shown] = slack_mock.thread(ROOM, root)
    assert "Answered by recovery." in shown["text"]
    made = [c for c in slack_mock.calls if c.method != "auth.test"]
    assert made and {slack_mock.token_of(c) for c in made} == {SECOND_TOKEN}


async def test_revoking_the_bot_token_removes_the_installation(
    site: Site, slack_mock: MockSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    status, _ = await site.install(
        slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)
    )
    assert status == 200
    revoked = {"type": "tokens_revoked", "tokens": {"bot": [SECOND_BOT]}, "event_ts": f"{time.time():.6f}"}
    assert await site.post_event(second_envelope(revoked, event_id="EvRevoked")) == 200
    await eventually(lambda: "slack tokens revoked" in caplog.text)
    assert await site.rows(BOTS, BOTS.c.team_id == SECOND) == 0
    departed = await Departures(site.services.repo.database).get("slack", SECOND)
    assert departed is not None and departed.reason == "tokens_revoked"
    assert SECOND_TOKEN not in tokens_logged(caplog)

    # Installing again clears the departure.
    status, _ = await site.install(
        slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)
    )
    assert status == 200
    assert await Departures(site.services.repo.database).get("slack", SECOND) is None


async def test_the_weekly_digest_goes_out_with_its_workspaces_token(
    site: Site, slack_mock: MockSlack
) -> None:
    status, _ = await site.install(
        slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)
    )
    assert status == 200
    slack_mock.reset()
    # The scheduler's task, not a request: the digest names its workspace, and that picks the token.
    digest = Digest("slack", SECOND, "CALERTS02", datetime.now(UTC), reported=((ROOM, "1700000800.000001"),))
    await site.connector.send_digest(digest)
    [post] = [c for c in slack_mock.calls if c.method == "chat.postMessage"]
    assert post.args["channel"] == "CALERTS02" and slack_mock.token_of(post) == SECOND_TOKEN
    # No workspace URL from a start-up auth.test here: the link is asked for, with the same token.
    [link] = [c for c in slack_mock.calls if c.method == "chat.getPermalink"]
    assert slack_mock.token_of(link) == SECOND_TOKEN


async def test_single_token_mode_is_unchanged_and_records_an_uninstall(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/haven.db", anthropic.url)
    async with services_for(settings) as services:
        departures = Departures(services.repo.database)
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack_mock.api_url)
        app = build_app(
            services,
            client,
            signing_secret=SIGNING_SECRET,
            process_before_response=True,
            departed=departures.mark,
        )
        h = SlackHarness(app, slack_mock, anthropic, services)
        anthropic.enqueue(text("Hello from the one workspace."))
        root = h.ts()
        await h.mention("hello", ts=root)
        assert [m["text"].strip() for m in h.shown(root)] == ["Hello from the one workspace."]
        assert {slack_mock.token_of(c) for c in slack_mock.calls} == {BOT_TOKEN}

        assert (await h.event({"type": "app_uninstalled", "event_ts": "1.1"})).status == 200
        departed = await departures.get("slack", TEAM)
        assert departed is not None and departed.reason == "app_uninstalled"
