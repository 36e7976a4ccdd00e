"""The repository on SQLite and PostgreSQL: migrations, dedupe, atomic endings, tenant scoping."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text

from bot.types import (
    Accepted,
    Author,
    Decision,
    IncomingMessage,
    NewMessage,
    Origin,
    StateChange,
    ThreadRef,
    WorkspaceSettings,
)
from fakes.postgres import PostgresServer
from storage.db import Database, normalize_url, open_database, upgrade
from storage.maintenance import Maintenance
from storage.repository import Repository

T = ThreadRef("slack", "T1", "C1", "1.0")


def user(text: str, mid: str) -> NewMessage:
    return NewMessage("user", "text", ({"type": "text", "text": text},), "U1", "Ann", mid, text)


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[Repository]:
    await upgrade(database_url)
    r = Repository(open_database(database_url))
    try:
        yield r
    finally:
        await r.close()


async def test_migrations_create_every_table(repo: Repository) -> None:
    async with repo.database.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {
        "workspaces",
        "conversations",
        "messages",
        "processed_events",
        "decisions",
        "feedback",
        "ended_reminders",
        "alembic_version",
    } <= tables


async def test_dedupe_is_insert_or_ignore(repo: Repository) -> None:
    a = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
    b = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
    assert not a.duplicate and a.stored and b.duplicate
    # The same key in another workspace is a different event.
    other = dataclasses.replace(T, workspace="T2")
    c = await repo.begin_turn(other, "k1", user("hi", "m1"), create=True)
    assert not c.duplicate


async def test_concurrent_duplicates_store_once(repo: Repository) -> None:
    results = await asyncio.gather(
        *(repo.begin_turn(T, "same", user("hi", "m1"), create=True) for _ in range(8))
    )
    assert sum(not r.duplicate for r in results) == 1
    conv = await repo.find_conversation(T)
    assert conv is not None and len(await repo.history(conv.id, "T1")) == 1


async def test_ending_is_atomic_with_audit_and_closes_history(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    reply = NewMessage("assistant", "text", ({"type": "text", "text": "bye"},))
    conv = await repo.finish_turn(
        cid,
        "T1",
        [reply],
        StateChange(warnings=2, end_reason="abuse"),
        [Decision("END", "abuse", "n", 2, {})],
    )
    assert conv.ended and conv.end_reason == "abuse" and conv.warnings == 2
    assert [d.decision for d in await repo.list_decisions("slack", "T1")] == ["END"]
    after = await repo.begin_turn(T, "k2", user("more", "m2"), create=False)
    assert after.conversation is not None and after.conversation.ended and not after.stored
    assert len(await repo.history(cid, "T1")) == 2
    assert await repo.mark_reminded(after.conversation, "U1")
    assert not await repo.mark_reminded(after.conversation, "U1")


async def test_queries_are_scoped_to_the_workspace(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("team one secret", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    assert await repo.get_conversation("slack", "T2", cid) is None
    assert await repo.history(cid, "T2") == []
    assert await repo.find_user_message(cid, "T2", number=1) is None
    assert await repo.find_conversation(dataclasses.replace(T, workspace="T2")) is None


async def test_fork_copies_history_before_the_picked_message(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("one", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    await repo.finish_turn(
        cid,
        "T1",
        [NewMessage("assistant", "text", ({"type": "text", "text": "a1"},))],
        StateChange(at_risk=True, warnings=1),
    )
    await repo.begin_turn(T, "k2", user("two", "m2"), create=False)
    picked = await repo.find_user_message(cid, "T1", platform_message_id="m2")
    assert picked is not None
    fork = await repo.create_fork(
        cid, "T1", picked.seq, ThreadRef("slack", "T1", "C1", "2.0"), source_message_id="m2", started_by="U1"
    )
    assert fork.at_risk and fork.warnings == 0 and fork.forked_from == cid and fork.user_turns == 1
    assert [m.text for m in await repo.history(fork.id, "T1")] == ["one", None]


async def test_soft_and_hard_risk_marks_accumulate_and_forks_inherit_them(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("one", "m1"), create=True, soft_cues=("loneliness",))
    conv = began.conversation
    assert conv is not None and conv.soft_cues == ("loneliness",) and conv.soft_risk
    assert not conv.at_risk and conv.risk_source is None
    cid = conv.id
    # Soft cues are a set: merged, sorted, never lost; a turn without any keeps them.
    again = await repo.begin_turn(
        T, "k2", user("two", "m2"), create=False, soft_cues=("hopelessness", "loneliness")
    )
    assert again.conversation is not None and again.conversation.soft_cues == ("hopelessness", "loneliness")
    plain = await repo.begin_turn(T, "k3", user("three", "m3"), create=False)
    assert plain.conversation is not None and plain.conversation.soft_cues == ("hopelessness", "loneliness")
    found = await repo.find_conversation(T)
    assert found is not None and found.soft_cues == ("hopelessness", "loneliness") and not found.at_risk
    # The first hard signal is recorded as the mark's source; later ones do not overwrite it.
    hard = await repo.begin_turn(T, "k4", user("four", "m4"), create=False, at_risk=True)
    assert hard.conversation is not None and hard.conversation.at_risk
    assert hard.conversation.risk_source == "detector"
    after = await repo.finish_turn(cid, "T1", [], StateChange(at_risk=True, risk_source="crisis_tool"))
    assert after.at_risk and after.risk_source == "detector"
    assert after.soft_cues == ("hopelessness", "loneliness")
    picked = await repo.find_user_message(cid, "T1", platform_message_id="m4")
    assert picked is not None
    fork = await repo.create_fork(
        cid, "T1", picked.seq, ThreadRef("slack", "T1", "C1", "3.0"), source_message_id="m4", started_by="U1"
    )
    assert (
        fork.at_risk and fork.risk_source == "detector" and fork.soft_cues == ("hopelessness", "loneliness")
    )
    stored = await repo.get_conversation("slack", "T1", fork.id)
    assert stored == fork


async def test_a_soft_mark_alone_is_inherited_and_state_changes_set_marks(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("one", "m1"), create=True)
    assert began.conversation is not None and not began.conversation.soft_risk
    cid = began.conversation.id
    changed = await repo.finish_turn(
        cid, "T1", [], StateChange(soft_cues=("cannot_cope",), at_risk=True, risk_source="verifier")
    )
    assert changed.soft_cues == ("cannot_cope",) and changed.at_risk and changed.risk_source == "verifier"
    # The detector does not overwrite the recorded source either.
    later = await repo.begin_turn(T, "k2", user("two", "m2"), create=False, at_risk=True)
    assert later.conversation is not None and later.conversation.risk_source == "verifier"

    soft_only = ThreadRef("slack", "T1", "C1", "4.0")
    b = await repo.begin_turn(soft_only, "k3", user("x", "m3"), create=True, soft_cues=("loneliness",))
    await repo.begin_turn(soft_only, "k4", user("y", "m4"), create=False)
    assert b.conversation is not None
    picked = await repo.find_user_message(b.conversation.id, "T1", platform_message_id="m4")
    assert picked is not None
    fork = await repo.create_fork(
        b.conversation.id,
        "T1",
        picked.seq,
        ThreadRef("slack", "T1", "C1", "5.0"),
        source_message_id="m4",
        started_by="U1",
    )
    assert fork.soft_cues == ("loneliness",) and not fork.at_risk and fork.risk_source is None


def test_migration_0004_keeps_old_marks_hard_and_its_downgrade_keeps_soft_ones(
    empty_database_url: str,
) -> None:
    from alembic import command
    from sqlalchemy import text as sql

    from storage.db import alembic_config, create_sync_engine, upgrade_sync

    upgrade_sync(empty_database_url, "0003")
    engine = create_sync_engine(empty_database_url)
    row = (
        "INSERT INTO conversations (id, platform, workspace, channel, thread, status, warnings, "
        "confirm_pending, at_risk, user_turns, created_at) "
        "VALUES (:id, 'slack', 'T1', 'C1', :id, 'active', 0, :f, :risk, 1, CURRENT_TIMESTAMP)"
    )
    try:
        with engine.begin() as conn:
            conn.execute(sql(row), {"id": "old", "f": False, "risk": True})
            conn.execute(sql(row), {"id": "new", "f": False, "risk": False})
        upgrade_sync(empty_database_url)
        with engine.begin() as conn:
            old = conn.execute(
                sql("SELECT at_risk, risk_source, soft_risk_cues FROM conversations WHERE id = 'old'")
            )
            assert tuple(old.one()) == (True, None, None)  # a mark of the old schema stays hard
            conn.execute(sql("UPDATE conversations SET soft_risk_cues = 'loneliness' WHERE id = 'new'"))
        command.downgrade(alembic_config(empty_database_url), "0003")
        with engine.begin() as conn:
            marks = dict(conn.execute(sql("SELECT id, at_risk FROM conversations")).all())
        assert {k: bool(v) for k, v in marks.items()} == {"old": True, "new": True}
    finally:
        engine.dispose()


async def test_settings_round_trip(repo: Repository) -> None:
    s = await repo.get_settings("discord", "G1")
    assert s == WorkspaceSettings("discord", "G1")
    new = dataclasses.replace(
        s,
        crisis_message="call 112",
        crisis_locales={"de": "Ruf 112"},
        admin_users=("U7",),
        abuse_warnings_before_end=4,
        alert_channel="C9",
        instructions="Answer briefly.",
        allowed_channels=("C1", "C2"),
        denied_channels=("C3",),
        suggested_prompts=("Plan my week",),
    )
    await repo.save_settings(new)
    assert await repo.get_settings("discord", "G1") == new
    # An empty list (show none) is kept apart from never set (the process-wide list).
    await repo.save_settings(dataclasses.replace(new, suggested_prompts=()))
    assert (await repo.get_settings("discord", "G1")).suggested_prompts == ()
    await repo.save_settings(dataclasses.replace(new, suggested_prompts=None))
    assert (await repo.get_settings("discord", "G1")).suggested_prompts is None
    assert await repo.get_settings("discord", "G2") == WorkspaceSettings("discord", "G2")


async def test_conversation_lock_serialises_turns(repo: Repository) -> None:
    order: list[str] = []

    async def turn(name: str) -> None:
        async with repo.conversation_lock(T.key):
            order.append(f"{name}-in")
            await asyncio.sleep(0.05)
            order.append(f"{name}-out")

    await asyncio.gather(turn("a"), turn("b"))
    assert order in (["a-in", "a-out", "b-in", "b-out"], ["b-in", "b-out", "a-in", "a-out"])


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///haven.db", "sqlite+pysqlite:///haven.db"),
        ("sqlite+aiosqlite:///haven.db", "sqlite+pysqlite:///haven.db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_unknown_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        normalize_url("mysql://x/y")


# -- one thread hop per call, caches, locks ---------------------------------------------------------------


def reply(text_: str) -> NewMessage:
    return NewMessage("assistant", "text", ({"type": "text", "text": text_},))


class HopCounter:
    """Counts ``Database.run`` calls: each is one hop to a worker thread."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, db: Database) -> None:
        self.count = 0
        run = db.run

        async def counting(fn: Any, *args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await run(fn, *args, **kwargs)

        monkeypatch.setattr(db, "run", counting)

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


@pytest.fixture
async def other(database_url: str, repo: Repository) -> AsyncIterator[Repository]:
    """A second repository on the same database, with its own handle: another process, as far as
    connections, caches and locks go."""
    r = Repository(open_database(database_url))
    try:
        yield r
    finally:
        await r.close()


async def test_each_call_is_one_thread_hop(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = HopCounter(monkeypatch, repo.database)
    began = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
    assert began.conversation is not None and hops.take() == 1
    cid = began.conversation.id
    assert await repo.find_conversation(T) is not None and hops.take() == 1
    assert await repo.get_settings("slack", "T1") == WorkspaceSettings("slack", "T1") and hops.take() == 1
    assert len(await repo.history(cid, "T1")) == 1 and hops.take() == 1
    await repo.finish_turn(cid, "T1", [reply("a1")], StateChange(warnings=0))
    assert hops.take() == 1
    assert await repo.claim_event("slack", "T1", "x") and hops.take() == 1


async def test_accepting_applies_the_channel_rule_to_settings_read_in_the_same_round_trip(
    repo: Repository, other: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    msg = IncomingMessage(T, Author("U1", "ana"), "hello", "m1", Origin.MENTION)
    seen: list[WorkspaceSettings] = []

    def only_c1(settings: WorkspaceSettings) -> bool:
        seen.append(settings)
        return T.channel in settings.allowed_channels

    hops = HopCounter(monkeypatch, repo.database)
    # Another process's change is seen at once: the rule gets the settings as they are now.
    await other.save_settings(WorkspaceSettings("slack", "T1", allowed_channels=("C9",)))
    assert await repo.accept(msg, "p1", 60, only_c1) == (Accepted.ELSEWHERE, None)
    assert hops.take() == 1 and seen[-1].allowed_channels == ("C9",)
    assert await other.pending() == 0  # nothing recorded
    await other.save_settings(WorkspaceSettings("slack", "T1", allowed_channels=("C1",)))
    accepted, entry = await repo.accept(msg, "p1", 60, only_c1)
    assert accepted is Accepted.NEW and entry is not None and hops.take() == 1
    assert await repo.accept(msg, "p1", 60, only_c1) == (Accepted.DUPLICATE, None)
    # Without a rule (a DM) no settings are read.
    dm = dataclasses.replace(msg, dedupe_key="m2", message_id="m2")
    calls = len(seen)
    assert (await repo.accept(dm, "p1", 60))[0] is Accepted.NEW and len(seen) == calls


async def test_begin_turn_returns_settings_and_history(
    repo: Repository, other: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """begin_turn reads the workspace's settings and the whole history in its own transaction: the
    engine starts a turn with one thread hop, and nothing is kept aside for later calls."""
    first = await repo.begin_turn(T, "k1", user("one", "m1"), create=True)
    assert first.conversation is not None
    assert first.settings == WorkspaceSettings("slack", "T1") and [m.text for m in first.history] == ["one"]
    cid = first.conversation.id
    await repo.finish_turn(cid, "T1", [reply("a1")], StateChange())
    await other.save_settings(WorkspaceSettings("slack", "T1", alert_channel="C9"))
    hops = HopCounter(monkeypatch, repo.database)
    async with repo.conversation_lock(T.key):
        hops.take()
        began = await repo.begin_turn(T, "k2", user("two", "m2"), create=False)
        assert began.stored and hops.take() == 1
    assert began.settings == await other.get_settings("slack", "T1")
    assert list(began.history) == await other.history(cid, "T1")
    assert [m.text for m in began.history] == ["one", None, "two"]
    # The same outside the lock; and later reads go to the database (a change since is seen).
    began = await repo.begin_turn(T, "k3", user("three", "m3"), create=False)
    assert [m.text for m in began.history] == ["one", None, "two", "three"]
    await repo.save_settings(WorkspaceSettings("slack", "T1", alert_channel="C10"))
    hops.take()
    assert (await repo.get_settings("slack", "T1")).alert_channel == "C10" and hops.take() == 1
    assert len(await repo.history(cid, "T1")) == 4 and hops.take() == 1
    # A duplicate, a thread that is not Haven's and an ended conversation carry neither.
    duplicate = await repo.begin_turn(T, "k3", user("three", "m3"), create=False)
    elsewhere = dataclasses.replace(T, thread="9.9")
    stranger = await repo.begin_turn(elsewhere, "k4", user("x", "m4"), create=False)
    await repo.finish_turn(cid, "T1", [], StateChange(end_reason="abuse"))
    ended = await repo.begin_turn(T, "k5", user("five", "m5"), create=False)
    for b in (duplicate, stranger, ended):
        assert not b.stored and b.settings is None and b.history == ()


async def test_history_cache_sees_other_processes(repo: Repository, other: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("mine", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    assert [m.text for m in await repo.history(cid, "T1")] == ["mine"]
    # Another process appends a turn ...
    await other.begin_turn(
        T,
        "k2",
        user(
            "yours",
            "m2",
        ),
        create=False,
    )
    await other.finish_turn(cid, "T1", [reply("a2")], StateChange())
    assert await repo.history(cid, "T1") == await other.history(cid, "T1")
    assert [m.text for m in await repo.history(cid, "T1")] == ["mine", "yours", None]
    # ... and then forgets the user: the cached text must not come back.
    await Maintenance(other.database).forget_user("slack", "U1")
    history = await repo.history(cid, "T1")
    assert history == await other.history(cid, "T1")
    assert all(m.text is None for m in history if m.role == "user")
    assert "mine" not in repr(history) and "yours" not in repr(history)
    # Scoping holds for cached conversations too.
    assert await repo.history(cid, "T2") == []


async def test_redacting_again_in_this_process_refreshes_the_cache(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("old words", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    await repo.history(cid, "T1")
    maintenance = Maintenance(repo.database)
    async with repo.database.begin() as conn:
        await conn.execute(text("UPDATE messages SET created_at = '2000-01-01 00:00:00'"))
    assert await maintenance.apply_retention(time_now()) == 1
    assert "older than" in str((await repo.history(cid, "T1"))[0].content)
    # Forgetting the author redacts the (already redacted) message again: same count, new placeholder.
    await maintenance.forget_user("slack", "U1")
    assert "author's request" in str((await repo.history(cid, "T1"))[0].content)


async def test_cache_never_holds_a_rolled_back_message(
    repo: Repository, monkeypatch: pytest.MonkeyPatch
) -> None:
    began = await repo.begin_turn(T, "k1", user("one", "m1"), create=True)
    assert began.conversation is not None
    cid = began.conversation.id
    await repo.history(cid, "T1")

    def fail(*args: Any) -> None:
        raise RuntimeError("boom")

    with monkeypatch.context() as m:  # fails after the messages were inserted: the turn rolls back
        m.setattr(repo, "_add_usage", fail)
        with pytest.raises(RuntimeError):
            await repo.finish_turn(cid, "T1", [reply("phantom")], StateChange())
        m.setattr(repo, "_settings_in", fail)
        with pytest.raises(RuntimeError):
            async with repo.conversation_lock(T.key):
                await repo.begin_turn(T, "k2", user("phantom too", "m2"), create=False)
    await repo.finish_turn(cid, "T1", [reply("real")], StateChange())
    async with repo.conversation_lock(T.key):
        await repo.begin_turn(T, "k3", user("real too", "m3"), create=False)
        texts = [str(h.content) for h in await repo.history(cid, "T1")]
    assert "phantom" not in repr(texts) and len(texts) == 3 and "real too" in texts[-1]
    assert [str(h.content) for h in await repo.history(cid, "T1")] == texts


def time_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_is_participant(repo: Repository) -> None:
    began = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True, started_by="U0")
    assert began.conversation is not None
    cid = began.conversation.id
    assert await repo.is_participant(cid, "T1", "U0")  # started it
    assert await repo.is_participant(cid, "T1", "U1")  # wrote in it
    assert not await repo.is_participant(cid, "T1", "U2")
    assert not await repo.is_participant(cid, "T2", "U1")


async def test_sqlite_reads_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    """Reads take no lock; writes start with BEGIN IMMEDIATE and queue behind another writer."""
    url = f"sqlite:///{tmp_path}/haven.db"
    await upgrade(url)
    repo = Repository(open_database(url))
    try:
        began = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
        assert began.conversation is not None
        writer = sqlite3.connect(tmp_path / "haven.db", isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        try:
            t0 = time.perf_counter()
            assert await repo.find_conversation(T) is not None
            assert len(await repo.history(began.conversation.id, "T1")) == 1
            await repo.get_settings("slack", "T1")
            assert time.perf_counter() - t0 < 1.0
            write = asyncio.ensure_future(repo.claim_event("slack", "T1", "k2"))
            await asyncio.sleep(0.3)
            assert not write.done()  # waiting for the other writer
        finally:
            writer.execute("COMMIT")
            writer.close()
        assert await asyncio.wait_for(write, 10)
    finally:
        await repo.close()


# -- PostgreSQL: advisory locks across processes, restarts ---------------------------------------------


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server: PostgresServer) -> Iterator[str]:
    with postgres_server.temporary_database(hint=request.node.name) as url:
        yield url


async def advisory_locks(repo: Repository) -> int:
    async with repo.database.connect() as conn:
        result = await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
        return int(result.scalar_one())


@pytest.mark.postgres
async def test_advisory_lock_spans_processes(postgres_url: str) -> None:
    await upgrade(postgres_url)
    a, b = Repository(open_database(postgres_url)), Repository(open_database(postgres_url))
    try:
        order: list[str] = []
        entered = asyncio.Event()
        release = asyncio.Event()

        async def holder() -> None:
            async with a.conversation_lock(T.key):
                order.append("a-in")
                entered.set()
                await release.wait()
                order.append("a-out")

        async def waiter() -> None:
            await entered.wait()
            async with b.conversation_lock(T.key):
                order.append("b-in")

        task_a, task_b = asyncio.ensure_future(holder()), asyncio.ensure_future(waiter())
        await entered.wait()
        # A third "process" gives up while waiting: it must not leave the lock behind.
        c = Repository(open_database(postgres_url))
        try:

            async def gives_up() -> None:
                async with c.conversation_lock(T.key):
                    order.append("c-in")

            with pytest.raises(TimeoutError):
                await asyncio.wait_for(gives_up(), 0.2)
        finally:
            await c.close()
        await asyncio.sleep(0.1)
        assert order == ["a-in"]
        release.set()
        await asyncio.wait_for(asyncio.gather(task_a, task_b), 10)
        assert order == ["a-in", "a-out", "b-in"]
        # Other keys never wait; every lock is given back.
        async with a.conversation_lock("another"), b.conversation_lock("a third"):
            pass
        await asyncio.sleep(0.1)
        assert await advisory_locks(a) == 0
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_a_live_holder_keeps_its_lock_past_the_idle_limit_and_a_frozen_one_gives_it_up(
    postgres_url: str,
) -> None:
    """The lock session's heartbeat keeps a running turn's lock however long the model takes; when
    the heartbeat stops (the process is frozen: SIGSTOP, a stalled VM), the server ends the session
    after the idle limit and another process gets the lock. The limit shortened from 10 s."""
    await upgrade(postgres_url)
    a = Repository(open_database(postgres_url), lock_idle_seconds=0.6)
    b = Repository(open_database(postgres_url), lock_idle_seconds=0.6)
    try:
        entered, release = asyncio.Event(), asyncio.Event()

        async def holder() -> None:
            async with a.conversation_lock(T.key):
                entered.set()
                await release.wait()

        task = asyncio.ensure_future(holder())
        await entered.wait()

        async def take_b() -> None:
            async with b.conversation_lock(T.key):
                pass

        # Five idle limits long, the holder's session stays alive: b never gets in.
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(take_b(), 3.0)
        # Frozen: nothing more reaches the server from a's lock session.
        a._heartbeat_stop.set()
        await asyncio.wait_for(take_b(), 10)
        release.set()
        await task
        # a's next turn starts a new session (its unlock of the dead one was skipped) and works.
        async with a.conversation_lock(T.key):
            pass
    finally:
        await a.close()
        await b.close()


@pytest.mark.postgres
async def test_many_concurrent_turns_in_two_processes(postgres_url: str) -> None:
    """Far more turns at once than pooled connections: locks live on one session per process."""
    await upgrade(postgres_url)
    procs = [Repository(open_database(postgres_url)) for _ in range(2)]
    try:

        async def turn(repo: Repository, n: int) -> None:
            thread = ThreadRef("slack", "T1", "C1", f"t{n % 40}")
            async with repo.conversation_lock(thread.key):
                began = await repo.begin_turn(thread, f"k{n}", user(f"m{n}", f"m{n}"), create=True)
                assert began.conversation is not None
                await asyncio.sleep(0.01)  # the model call
                await repo.finish_turn(began.conversation.id, "T1", [reply(f"a{n}")], StateChange())

        await asyncio.wait_for(asyncio.gather(*(turn(procs[n % 2], n) for n in range(160))), 60)
        for n in range(40):
            conv = await procs[0].find_conversation(ThreadRef("slack", "T1", "C1", f"t{n}"))
            assert conv is not None and conv.user_turns == 4
            assert len(await procs[n % 2].history(conv.id, "T1")) == 8
    finally:
        for repo in procs:
            await repo.close()


@pytest.mark.postgres
async def test_survives_a_postgres_restart(postgres_url: str, postgres_server: PostgresServer) -> None:
    await upgrade(postgres_url)
    repo = Repository(open_database(postgres_url))
    try:
        async with repo.conversation_lock(T.key):
            began = await repo.begin_turn(T, "k1", user("hi", "m1"), create=True)
        assert began.conversation is not None
        postgres_server.restart()
        assert await repo.find_conversation(T) is not None  # pool_pre_ping
        async with repo.conversation_lock(T.key):  # a new lock session
            again = await repo.begin_turn(T, "k2", user("again", "m2"), create=False)
        assert again.stored
        assert len(await repo.history(began.conversation.id, "T1")) == 2
    finally:
        await repo.close()


def test_migrations_match_the_models(empty_database_url: str) -> None:
    """Schema changes go through Alembic: the migrated schema must equal what the models declare,
    column types, nullability, server defaults, indexes and constraints included, on both backends."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from storage.db import create_sync_engine, upgrade_sync
    from storage.models import metadata

    upgrade_sync(empty_database_url)
    engine = create_sync_engine(empty_database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_processes_starting_together_migrate_once(postgres_server: PostgresServer) -> None:
    import subprocess
    import sys

    url = postgres_server.create_database("concurrent_migrations")
    code = "import sys; from storage.db import upgrade_sync; upgrade_sync(sys.argv[1])"
    # Separate processes, as in a deployment (Alembic's context is per process, not per thread).
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in procs]
    assert [rc for rc, _ in results] == [0, 0, 0], [err for _, err in results]


@pytest.mark.postgres
async def test_a_finished_turn_survives_a_database_outage(postgres_server: PostgresServer) -> None:
    """The model answered; the server is down for a moment: the reply is stored, not lost."""
    import threading

    url = postgres_server.create_database("outage_finish")
    await upgrade(url)
    repo = Repository(open_database(url))
    try:
        began = await repo.begin_turn(T, "k1", user("hello", "m1"), create=True)
        assert began.conversation is not None
        postgres_server.shutdown()
        timer = threading.Timer(0.6, postgres_server.start)
        timer.start()
        reply = NewMessage("assistant", "text", ({"type": "text", "text": "the answer"},))
        conv = await repo.finish_turn(began.conversation.id, "T1", [reply], StateChange(warnings=0))
        timer.join()
        assert conv.id == began.conversation.id
        history = await repo.history(conv.id, "T1")
        assert [m.role for m in history] == ["user", "assistant"]
    finally:
        postgres_server.start()
        await repo.close()
