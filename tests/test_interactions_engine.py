"""The engine's two answers for repeated commands and interactions, on the in-memory store:
``first_delivery`` (a replayed delivery acts once) and ``record_feedback`` (one alert per person and
ending). The adapters' suites drive the same through Slack's and Discord's wire formats."""

from __future__ import annotations

import dataclasses

from bot.engine import Engine
from bot.types import Author, IncomingMessage, Origin, ThreadRef, WorkspaceSettings
from fakes import MemoryStore, ScriptedModel

THREAD = ThreadRef("discord", "G1", "C1", "T1")


def engine() -> tuple[Engine, MemoryStore]:
    store = MemoryStore()
    return Engine(store, ScriptedModel()), store


async def test_a_delivery_is_first_once_per_workspace_and_platform() -> None:
    e, _ = engine()
    assert await e.first_delivery("discord", "G1", "1234567890")
    assert not await e.first_delivery("discord", "G1", "1234567890")
    assert await e.first_delivery("discord", "G2", "1234567890")
    assert await e.first_delivery("slack", "G1", "1234567890")
    # Ids longer than storage's key are still told apart (by their digest), not cut short.
    long_a, long_b = "x" * 200 + "a", "x" * 200 + "b"
    assert await e.first_delivery("slack", "T1", long_a)
    assert await e.first_delivery("slack", "T1", long_b)
    assert not await e.first_delivery("slack", "T1", long_a)


async def test_a_delivery_key_never_collides_with_the_turn_it_starts() -> None:
    """Discord's ``/haven new`` keys its first message by the interaction id too."""
    e, _ = engine()
    assert await e.first_delivery("discord", "G1", "42")
    msg = IncomingMessage(
        THREAD, Author("U1", "Ann"), "hello", "m1", Origin.NEW_COMMAND, dedupe_key="interaction:42"
    )
    result = await e.handle_message(msg)
    assert result.conversation_id is not None


async def test_feedback_alerts_the_admins_on_the_first_report_only() -> None:
    e, store = engine()
    await store.save_settings(dataclasses.replace(WorkspaceSettings("discord", "G1"), alert_channel="A1"))
    started = await e.handle_message(
        IncomingMessage(THREAD, Author("U1", "Ann"), "hello", "m1", Origin.NEW_COMMAND)
    )
    assert started.conversation_id is not None
    conversation_id = started.conversation_id
    alerts = [await e.record_feedback("discord", "G1", conversation_id, "U1", None) for _ in range(5)]
    alerts.append(await e.record_feedback("discord", "G1", conversation_id, "U1", "changed my mind"))
    assert [a is not None for a in alerts] == [True, False, False, False, False, False]
    assert await e.record_feedback("discord", "G1", conversation_id, "U2", None) is not None
    listed = await store.list_feedback("discord", "G1")
    assert sorted((f.user_id, f.comment) for f in listed) == [("U1", "changed my mind"), ("U2", None)]
