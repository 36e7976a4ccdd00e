"""The repository on SQLite and PostgreSQL: migrations, dedupe, atomic endings, tenant scoping."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import inspect

from bot.types import Decision, NewMessage, StateChange, ThreadRef, WorkspaceSettings
from storage.db import create_engine, normalize_url, upgrade
from storage.repository import Repository

T = ThreadRef("slack", "T1", "C1", "1.0")


def user(text: str, mid: str) -> NewMessage:
    return NewMessage("user", "text", ({"type": "text", "text": text},), "U1", "Ann", mid, text)


@pytest.fixture
async def repo(database_url: str) -> AsyncIterator[Repository]:
    await upgrade(database_url)
    r = Repository(create_engine(database_url))
    try:
        yield r
    finally:
        await r.close()


async def test_migrations_create_every_table(repo: Repository) -> None:
    async with repo.engine.connect() as conn:
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
    )
    await repo.save_settings(new)
    assert await repo.get_settings("discord", "G1") == new
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
        ("sqlite:///haven.db", "sqlite+aiosqlite:///haven.db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_url_normalisation(given: str, expected: str) -> None:
    assert normalize_url(given) == expected


def test_unknown_driver_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        normalize_url("mysql://x/y")
