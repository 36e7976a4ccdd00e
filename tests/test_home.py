"""``bot.home``: what a person's Home shows them (the admin part only to admins), and "forget me"."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.admin import Admin
from bot.home import ADMIN_ROWS_SHOWN, CONVERSATIONS_SHOWN, FORGET_ACTION, USAGE_WINDOW, Home
from bot.notices import DEFAULT_CRISIS_MESSAGE
from bot.types import Author, NewMessage, StateChange, ThreadRef, UsageRecord
from fakes import MemoryStore

NOW = datetime(2030, 1, 8, 12, 0, tzinfo=UTC)
ALICE = Author("U1", "alice")
ADA = Author("U7", "ada", is_platform_admin=True)


def said(text: str, mid: str, author: str) -> NewMessage:
    return NewMessage("user", "text", ({"type": "text", "text": text},), author, author.lower(), mid, text)


async def conversation(store: MemoryStore, n: int, author: str = "U1", *, ended: bool = False) -> str:
    thread = ThreadRef("slack", "T1", "C1", f"{n}.0")
    began = await store.begin_turn(thread, f"k{n}", said(f"message {n}", f"m{n}", author), create=True)
    assert began.conversation is not None
    change = StateChange(end_reason="abuse") if ended else StateChange()
    usage = [UsageRecord("claude-test", 10, 0, 5, 3)]
    await store.finish_turn(began.conversation.id, "T1", [], change, usage=usage)
    return began.conversation.id


async def test_a_person_sees_their_own_conversations_and_no_admin_part() -> None:
    store = MemoryStore()
    mine = [await conversation(store, n) for n in range(CONVERSATIONS_SHOWN + 3)]
    await conversation(store, 99, "U2")
    home = await Home(store, clock=lambda: NOW).content(ALICE, "slack", "T1")
    assert home.user_id == "U1" and home.admin is None and home.forgotten is None
    assert [c.conversation_id for c in home.conversations] == mine[::-1][:CONVERSATIONS_SHOWN]


async def test_an_admin_also_sees_resources_settings_endings_reports_and_this_weeks_usage() -> None:
    store = MemoryStore()
    ended = [await conversation(store, n, ended=True) for n in range(ADMIN_ROWS_SHOWN + 2)]
    record = await store.get_conversation("slack", "T1", ended[-1])
    assert record is not None
    await store.record_feedback(record, "U1", "not abuse")
    home = await Home(store, clock=lambda: NOW).content(ADA, "slack", "T1")
    overview = home.admin
    assert overview is not None and home.conversations == ()
    assert overview.crisis.text == DEFAULT_CRISIS_MESSAGE and not overview.crisis_custom
    assert dict(overview.settings)["ending"] == "on"
    assert [e.conversation_id for e in overview.endings] == ended[::-1][:ADMIN_ROWS_SHOWN]
    assert [(f.conversation_id, f.comment) for f in overview.feedback] == [(ended[-1], "not abuse")]
    assert overview.usage_since == NOW - USAGE_WINDOW
    # Usage is recorded at the wall clock's now, which is long before this test's NOW: outside the week.
    assert overview.usage["calls"] == 0
    live = await Home(store).content(ADA, "slack", "T1")
    assert live.admin is not None and live.admin.usage["calls"] == ADMIN_ROWS_SHOWN + 2
    assert live.admin.usage["cache_hit_ratio"] == round(5 / 15, 4)


async def test_a_configured_admin_sees_the_admin_part_with_the_custom_resources() -> None:
    store = MemoryStore()
    await Admin(store).change(ADA, "slack", "T1", "admins", "U1")
    await Admin(store).set_crisis_message(ADA, "slack", "T1", "Call the team line")
    home = await Home(store).content(ALICE, "slack", "T1")
    assert home.admin is not None
    assert (home.admin.crisis.text, home.admin.crisis_custom) == ("Call the team line", True)
    # In another workspace the same person is nobody special.
    assert (await Home(store).content(ALICE, "slack", "T2")).admin is None


async def test_forget_me_removes_only_the_askers_texts_and_is_audited() -> None:
    store = MemoryStore()
    mine = await conversation(store, 1)
    await conversation(store, 2, "U2")
    removed = await Home(store, clock=lambda: NOW).forget_me(ALICE, "slack", "T1")
    assert removed == {"messages": 1, "comments": 0}
    assert [m.text for m in await store.history(mine, "T1")] == [None]
    [record] = await store.list_admin_audit("slack", "T1")
    assert (record.actor_id, record.actor_name, record.action, record.created_at) == (
        "U1",
        None,
        FORGET_ACTION,
        NOW,
    )
    assert record.new == removed
    theirs = await store.list_user_conversations("slack", "T1", "U2")
    assert [c.latest_text for c in theirs] == ["message 2"]
