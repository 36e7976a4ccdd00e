"""``haven admin purge``: a departed workspace's data goes, every other workspace's stays, on SQLite and
PostgreSQL. The data is made the way Haven makes it (engine turns through the inbox, feedback, an
admin's settings change), in three workspaces: the one purged, another Slack team, and a Discord guild
with the same id as the purged team (scoping by workspace alone would take its rows too)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import cli
from bot.app import Services
from bot.types import Author, IncomingMessage, Origin, ThreadRef
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.harness import make_settings, services_for
from storage.departures import PURGE_ACTION, Departures, workspace_tables
from storage.models import ADMIN_AUDIT, BOTS
from tests.test_cli import Ran, _clean_environment, logging_restored  # noqa: F401 (a fixture)

GONE = ("slack", "T0GONE001")
OTHERS = [("slack", "T0STAYS01"), ("discord", "T0GONE001")]
ADMIN = Author("UADMIN", "Ada", is_platform_admin=True)


@pytest.fixture
async def server() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(default=text("ok")) as s:
        yield s


async def populate(services: Services, platform: str, workspace: str) -> None:
    """A conversation of two turns (inbox entries, messages, usage, dedupe keys), a feedback report and
    an admin's settings change (the workspace's settings and its admin audit)."""
    engine, thread = services.engine, ThreadRef(platform, workspace, "C1", "1.0")
    for n, words in enumerate(("hello", "and more"), start=1):
        origin = Origin.MENTION if n == 1 else Origin.THREAD_REPLY
        msg = IncomingMessage(thread, Author("U1", "Ann"), words, f"1.0:{n}", origin=origin)
        _, entry = await engine.accept(msg)
        await engine.handle_message(msg, entry=entry)
    conversation = await services.repo.find_conversation(thread)
    assert conversation is not None
    await services.repo.record_feedback(conversation, "U1", "a comment")
    await services.admin.change(ADMIN, platform, workspace, "alert-channel", "C9")


async def counts(services: Services) -> Counter[tuple[str, str, str]]:
    """Rows per (table, platform, workspace) in every workspace table."""
    found: Counter[tuple[str, str, str]] = Counter()
    async with services.repo.database.connect() as conn:
        for table in workspace_tables():
            stmt = select(table.c.platform, table.c.workspace, func.count()).group_by(
                table.c.platform, table.c.workspace
            )
            for platform, workspace, n in (await conn.execute(stmt)).all():
                found[(table.name, platform, workspace)] = n
    return found


async def test_purge_deletes_only_the_departed_workspaces_rows_and_audits_it(
    database_url: str, server: FakeAnthropic
) -> None:
    async with services_for(make_settings(database_url, server.url)) as services:
        for platform, workspace in (GONE, *OTHERS):
            await populate(services, platform, workspace)
        before = await counts(services)
        gone_tables = {t for (t, p, w) in before if (p, w) == GONE}
        # Haven's rows of every kind are there to be purged.
        assert {"conversations", "messages", "inbox", "workspaces", "admin_audit", "feedback"} <= gone_tables
        assert {"model_usage", "processed_events"} & gone_tables

        departures = Departures(services.repo.database)
        preview = await departures.count(*GONE)
        assert preview == {t: n for (t, p, w), n in before.items() if (p, w) == GONE}
        deleted = await departures.purge(*GONE, actor_id="cli", actor_name="ops")
        assert deleted == preview

        after = await counts(services)
        for (table, platform, workspace), n in before.items():
            if (platform, workspace) != GONE:
                assert after[(table, platform, workspace)] == n, table  # untouched
        left = {key: n for key, n in after.items() if (key[1], key[2]) == GONE}
        assert left == {("admin_audit", *GONE): 1}  # the purge's own record
        [audit] = await services.repo.list_admin_audit(*GONE)
        assert (audit.action, audit.actor_id, audit.actor_name) == (PURGE_ACTION, "cli", "ops")
        assert audit.old == deleted
        # The engine forgets the purged conversation too: a new message starts afresh.
        assert await services.repo.find_conversation(ThreadRef(*GONE, "C1", "1.0")) is None


async def test_departures_are_recorded_once_and_cleared_by_a_new_installation(database_url: str) -> None:
    async with services_for(make_settings(database_url)) as services:
        departures = Departures(services.repo.database)
        await departures.mark("discord", "G1", "guild_remove")
        first = await departures.get("discord", "G1")
        await departures.mark("discord", "G1", "guild_remove")
        assert await departures.get("discord", "G1") == first  # the first departure's time is kept
        assert [d.workspace for d in await departures.all()] == ["G1"]
        await departures.clear("discord", "G1")
        assert await departures.get("discord", "G1") is None


def run_cli(*argv: str) -> Ran:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return Ran(code, "", "")


def test_the_cli_refuses_an_installed_workspace_previews_without_yes_and_purges_with_it(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logging_restored: None,  # noqa: F811
) -> None:
    _clean_environment(monkeypatch, tmp_path)
    url = f"sqlite:///{tmp_path}/haven.db"

    async def setup() -> None:
        async with (
            FakeAnthropic(default=text("ok")) as server,
            services_for(make_settings(url, server.url)) as s,
        ):
            for platform, workspace in (GONE, OTHERS[0]):
                await populate(s, platform, workspace)

    asyncio.run(setup())
    purge = ("admin", "purge", "--platform", "slack", "--workspace", GONE[1])

    # Still installed (no departure recorded): refused, one line, nothing deleted.
    assert run_cli(*purge, "--yes").returncode == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "still Haven's" in err[0] and "--force" in err[0]

    async def depart(installed_again: bool) -> None:
        async with services_for(make_settings(url)) as s:
            await Departures(s.repo.database).mark(*GONE, "app_uninstalled")
            if installed_again:
                async with s.repo.database.begin() as conn:
                    await conn.execute(
                        BOTS.insert().values(
                            client_id="1.2",
                            app_id="A1",
                            team_id=GONE[1],
                            bot_token="xoxb-x",
                            is_enterprise_install=False,
                            installed_at=func.now(),
                        )
                    )

    asyncio.run(depart(installed_again=True))
    assert run_cli(*purge, "--yes").returncode == 1
    assert "installed there again" in capsys.readouterr().err

    # Departed and not back: without --yes, a preview and exit 2; with it, gone.
    asyncio.run(depart(installed_again=False))

    async def drop_bot() -> None:
        async with services_for(make_settings(url)) as s, s.repo.database.begin() as conn:
            await conn.execute(BOTS.delete())

    asyncio.run(drop_bot())
    assert run_cli(*purge).returncode == 2
    shown = capsys.readouterr()
    assert f"Would delete from slack workspace {GONE[1]}:" in shown.out and "messages" in shown.out
    assert "nothing deleted: add --yes" in shown.err
    assert run_cli(*purge, "--json").returncode == 2
    preview = json.loads(capsys.readouterr().out)
    assert preview["deleted"] == {} and preview["would_delete"]["messages"] > 0
    assert run_cli(*purge, "--yes", "--json").returncode == 0
    done = json.loads(capsys.readouterr().out)
    assert done["deleted"] == preview["would_delete"]
    assert run_cli("admin", "audit", "--platform", "slack", "--workspace", GONE[1], "--json").returncode == 0
    [audit] = json.loads(capsys.readouterr().out)
    assert audit["action"] == PURGE_ACTION and audit["actor_id"] == "cli"

    async def remaining() -> tuple[int, int]:
        async with services_for(make_settings(url)) as s, s.repo.database.connect() as conn:
            mine = select(func.count()).select_from(ADMIN_AUDIT)
            stays = await counts(s)
            return int((await conn.execute(mine)).scalar() or 0), sum(
                n for (t, p, w), n in stays.items() if (p, w) == OTHERS[0]
            )

    audits, others = asyncio.run(remaining())
    assert audits == 2 and others > 0  # the other team's settings change and the purge's record
