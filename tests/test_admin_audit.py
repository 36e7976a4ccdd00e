"""The admin audit (``haven admin audit``): every change made from Slack, Discord or the CLI is recorded
with its actor, old and new value and time, and the CLI reads them all back.

Slack runs as in ``tests/slack`` (a real Bolt app, signed requests, the mock Web API), Discord as in
``tests/discord`` (the real connector against the fake gateway), the CLI in this process as in
``tests/test_cli.py``; all three share one SQLite file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.admin import AUDIT_TEXT_START, Admin, text_summary
from bot.app import Services
from bot.types import Author, WorkspaceSettings
from fakes import MemoryStore
from fakes.fake_anthropic import FakeAnthropic
from fakes.mock_slack import MockSlack
from fakes.slack_harness import ADA, ALICE, TEAM, SlackHarness, harness_on
from storage.db import open_database, upgrade
from storage.repository import Repository

# The Discord fixtures (a fake Discord, the connector, services on ``db_url``) and the in-process CLI.
from tests.discord.conftest import World, anthropic, bot, db_url, services, world  # noqa: F401
from tests.test_cli import Haven, haven, logging_restored  # noqa: F401

CRISIS = "*Acme Wellbeing:* call *0800 123 456* (24/7)\n• Or write to care@acme.example, any hour"


@pytest.fixture
async def slack(tmp_path: Path, anthropic: FakeAnthropic) -> AsyncIterator[SlackHarness]:  # noqa: F811
    """Slack on the SQLite file the CLI fixture points DATABASE_URL at."""
    async with MockSlack() as mock:
        mock.add_user(ALICE, "alice")
        mock.add_user(ADA, "ada", is_admin=True)
        async for h in harness_on(f"sqlite:///{tmp_path}/haven.db", mock, anthropic):
            yield h


async def run(haven: Haven, *argv: str) -> Any:  # noqa: F811
    """One ``haven`` command, off this test's event loop (``main`` runs its own)."""
    return await asyncio.to_thread(haven, *argv)


def _at(record: dict[str, Any]) -> datetime:
    assert record["created_at"].endswith("Z"), record
    return datetime.fromisoformat(record["created_at"])


async def test_audit_json_shows_a_slack_modal_change_and_a_cli_change(
    slack: SlackHarness,
    haven: Haven,  # noqa: F811
) -> None:
    started = datetime.now().astimezone()
    where = ("admin", "--platform", "slack", "--workspace", TEAM)
    # Through Slack's modal: /haven resources set opens it, the admin submits the new text.
    await slack.command("resources set", user=ADA)
    assert (await slack.submit(slack.last_view(), CRISIS, user=ADA)).status == 200
    # Through the slash command, and a refused attempt that changes (and records) nothing.
    await slack.command("settings warnings 3", user=ADA)
    await slack.command("settings warnings 5", user=ALICE)
    # Through the CLI, on the same database.
    assert (await run(haven, *where, "settings", "set", "ending", "off")).returncode == 0

    audit = (await run(haven, *where, "audit", "--json")).json()
    assert [(r["actor_id"], r["action"], r["setting"]) for r in audit] == [
        ("cli", "settings.set", "ending"),
        (ADA, "settings.set", "warnings"),
        (ADA, "resources.set", "crisis-message"),
    ]
    cli_change, command, modal = audit
    assert (cli_change["old"], cli_change["new"]) == (True, False)
    assert cli_change["actor_name"]  # the shell's login (or "operator")
    assert (command["old"], command["new"], command["actor_name"]) == (2, 3, "ada")
    # The crisis text: from the built-in default (None) to a bounded summary of the new text.
    assert modal["old"] is None
    assert modal["new"] == text_summary(CRISIS)
    assert modal["new"]["chars"] == len(CRISIS) and modal["new"]["start"].startswith("*Acme Wellbeing:* call")
    assert all(r["platform"] == "slack" and r["workspace"] == TEAM for r in audit)
    # Newest first, in UTC, stamped while this test ran.
    stamps = [_at(r) for r in audit]
    assert stamps == sorted(stamps, reverse=True)
    assert all(s.utcoffset() == timedelta(0) and s >= started - timedelta(seconds=5) for s in stamps)

    # The same, for people: an aligned table naming the workspace.
    lines = (await run(haven, *where, "audit")).stdout.splitlines()
    assert lines[0] == f"Admin changes in slack workspace {TEAM}, newest first (times in UTC):"
    header, rule, first = lines[1], lines[2], lines[3]
    assert header.split() == ["created_at", "actor", "action", "setting", "old", "new"]
    assert set(rule) <= {"-", " "}
    assert first.startswith(cli_change["created_at"]) and first.index("settings.set") == header.index(
        "action"
    )
    assert f"{ADA} (ada)" in lines[4] and "2" in lines[4] and "3" in lines[4]
    assert "“*Acme Wellbeing:*" in lines[5] and f"{len(CRISIS)} chars" in lines[5]
    assert len((await run(haven, *where, "audit", "--limit", "1", "--json")).json()) == 1
    # Another workspace saw none of it.
    assert (await run(haven, "admin", "--json", "audit")).json() == []
    other = await run(haven, "admin", "--platform", "slack", "--workspace", "T-OTHER", "audit")
    assert other.stdout.strip() == "(no admin changes in slack workspace T-OTHER)"


async def test_audit_shows_discord_admin_changes(
    world: World,  # noqa: F811
    bot: Any,  # noqa: F811
    services: Services,  # noqa: F811
    haven: Haven,  # noqa: F811
) -> None:
    api = world.api
    ix = await api.slash(world.admin, world.channel, "haven-admin", "settings", warnings=4, ending="off")
    await api.wait_until(lambda: ix.complete, what="the interaction response")
    guild = str(world.guild.id)
    audit = (
        await run(haven, "admin", "--platform", "discord", "--workspace", guild, "audit", "--json")
    ).json()
    assert sorted((r["setting"], r["old"], r["new"]) for r in audit) == [
        ("ending", True, False),
        ("warnings", 2, 4),
    ]
    assert {(r["actor_id"], r["action"]) for r in audit} == {(str(world.admin.id), "settings.set")}


async def test_a_reset_records_what_it_removed() -> None:
    store = MemoryStore()
    admin = Admin(store)
    actor = Author("U7", "ada", is_platform_admin=True)
    await admin.set_crisis_message(actor, "slack", "T1", "Main line " + "x" * 400)
    await admin.set_crisis_message(actor, "slack", "T1", "Ruf an", locale="de")
    await admin.reset_crisis_message(actor, "slack", "T1")
    reset, german, main = await admin.audit(actor, "slack", "T1")
    assert (german.setting, german.old, german.new) == ("crisis-message:de", None, text_summary("Ruf an"))
    summary = main.new
    assert summary["chars"] == 410 and len(summary["start"]) == AUDIT_TEXT_START  # bounded
    assert summary["start"].endswith("…")
    assert (reset.action, reset.setting) == ("resources.reset", "crisis-resources")
    assert reset.old == {"message": summary, "locales": {"de": text_summary("Ruf an")}}
    assert reset.new == {"message": None, "locales": {}}


async def test_only_admins_read_the_audit_and_a_refused_change_records_nothing() -> None:
    from bot.admin import NotAllowed

    store = MemoryStore()
    admin = Admin(store)
    nobody = Author("U9", "bob")
    with pytest.raises(NotAllowed):
        await admin.change(nobody, "slack", "T1", "warnings", "4")
    with pytest.raises(NotAllowed):
        await admin.audit(nobody, "slack", "T1")
    root = Author("U1", "ada", is_platform_admin=True)
    assert await admin.audit(root, "slack", "T1") == []


async def test_settings_and_their_audit_are_saved_together(tmp_path: Path) -> None:
    """One transaction: when the audit record cannot be written, the change is not saved either."""
    url = f"sqlite:///{tmp_path}/haven.db"
    await upgrade(url)
    repo = Repository(open_database(url))
    try:
        admin = Admin(repo, clock=lambda: None)  # type: ignore[arg-type,return-value]  # NOT NULL fails
        actor = Author("U1", "ada", is_platform_admin=True)
        with pytest.raises(Exception, match=r"(?i)not null"):
            await admin.change(actor, "slack", "T1", "warnings", "4")
        assert await repo.get_settings("slack", "T1") == WorkspaceSettings("slack", "T1")
        assert await repo.list_admin_audit("slack", "T1") == []
    finally:
        await repo.close()


def test_migration_0007_downgrades_and_upgrades_again(empty_database_url: str) -> None:
    from alembic import command
    from sqlalchemy import inspect

    from storage.db import alembic_config, create_sync_engine, upgrade_sync

    upgrade_sync(empty_database_url)
    engine = create_sync_engine(empty_database_url)
    try:
        assert "admin_audit" in inspect(engine).get_table_names()
        command.downgrade(alembic_config(empty_database_url), "0006")
        assert "admin_audit" not in inspect(engine).get_table_names()
        upgrade_sync(empty_database_url)
        assert "admin_audit" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
