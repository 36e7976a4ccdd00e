"""The storage ports' contract (``bot.ports.ConversationStore``, ``AdminStore``, ``InboxStore``): one suite
for every store.

Each test runs on the in-memory store the fast tests use (``fakes.MemoryStore``) and on
``storage.repository.Repository`` over SQLite and PostgreSQL. Inbox leases are timed by a clock the test
moves (``Clock``), never by sleeping; "another process" is a second repository on the same database (the
memory store is one process, so there it is the same store). The ports' docstrings are the contract;
where they leave a detail open, the repository's behaviour is the reference the memory store must match.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
from sqlalchemy.exc import NoResultFound

from bot.ports import AdminStore, ConversationStore, InboxStore, LeaseLost
from bot.types import (
    Accepted,
    AdminAlert,
    Attachment,
    AuditRecord,
    Author,
    Closure,
    Conversation,
    ConversationStatus,
    CrisisCard,
    Decision,
    EndReason,
    InboxEntry,
    InboxHold,
    InboxState,
    IncomingMessage,
    NewMessage,
    Origin,
    StateChange,
    ThreadRef,
    TurnResult,
    TurnStatus,
    UsageRecord,
    WorkspaceSettings,
)
from fakes import MemoryStore
from fakes.postgres import PostgresServer
from storage.db import open_database, upgrade
from storage.repository import Repository


class Store(ConversationStore, AdminStore, InboxStore, Protocol):
    async def close(self) -> None: ...


T = ThreadRef("slack", "T1", "C1", "1.0")
OTHER_WORKSPACE = dataclasses.replace(T, workspace="T2")
OTHER_PLATFORM = dataclasses.replace(T, platform="discord")
# What begin_turn or finish_turn of an id the store does not hold raises (the ports do not say).
NOT_FOUND = (LookupError, NoResultFound)


@dataclass
class Clock:
    """The time every store of a test reads (inbox leases); a test moves it instead of sleeping."""

    now: datetime = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Backend:
    """One database; ``open()`` is one more process on it (the memory store: the same one)."""

    url: str | None
    clock: Clock
    opened: list[Store] = field(default_factory=list)

    def open(self) -> Store:
        if self.url is None:
            if not self.opened:
                self.opened.append(MemoryStore(clock=self.clock))
            return self.opened[0]
        repo = Repository(open_database(self.url), clock=self.clock)
        self.opened.append(repo)
        return repo

    async def close(self) -> None:
        for s in self.opened:
            await s.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(
    params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    ids=["memory", "sqlite", "postgresql"],
)
async def backend(request: pytest.FixtureRequest, clock: Clock) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield Backend(None, clock)
        return
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        await upgrade(url)
        sqlite_backend = Backend(url, clock)
        try:
            yield sqlite_backend
        finally:
            await sqlite_backend.close()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("migrated_postgres")
    with server.temporary_database(hint=request.node.name, template=template) as url:
        await upgrade(url)
        pg_backend = Backend(url, clock)
        try:
            yield pg_backend
        finally:
            await pg_backend.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.open()


def user(text: str, mid: str, author: str = "U1") -> NewMessage:
    return NewMessage("user", "text", ({"type": "text", "text": text},), author, author.lower(), mid, text)


def assistant(text: str) -> NewMessage:
    return NewMessage("assistant", "text", ({"type": "text", "text": text},))


def decision(name: str, warnings: int = 0, **signals: object) -> Decision:
    return Decision(name, "abuse", "a note", warnings, dict(signals))


def usage(input_tokens: int, output_tokens: int, purpose: str = "turn") -> UsageRecord:
    return UsageRecord("claude-test", input_tokens, 2, 3, output_tokens, purpose)


async def start(
    store: Store,
    thread: ThreadRef = T,
    *,
    key: str = "k1",
    author: str = "U1",
    at_risk: bool = False,
    soft_cues: Sequence[str] = (),
) -> Conversation:
    message = user("hello", f"m-{key}", author)
    began = await store.begin_turn(
        thread, key, message, create=True, started_by=author, at_risk=at_risk, soft_cues=soft_cues
    )
    assert began.conversation is not None and began.stored
    return began.conversation


async def say(store: Store, text: str, key: str, thread: ThreadRef = T, author: str = "U1") -> None:
    began = await store.begin_turn(thread, key, user(text, f"m-{key}", author), create=False)
    assert began.stored, began


# -- settings ------------------------------------------------------------------------------------------


async def test_settings_default_then_round_trip_every_field_per_workspace(store: Store) -> None:
    assert await store.get_settings("slack", "T1") == WorkspaceSettings("slack", "T1")
    custom = WorkspaceSettings(
        "slack",
        "T1",
        crisis_message="Call the team line",
        crisis_locales={"de": "Ruf an", "pt-BR": "Ligue"},
        ending_enabled=False,
        abuse_warnings_before_end=4,
        verify_endings=True,
        alert_channel="C-ALERTS",
        retention_days=30,
        admin_users=("U7", "U8"),
        instructions="You are Sol, the support team's assistant.\nAnswer in short paragraphs.",
        allowed_channels=("C-HELP", "C-ASK"),
        denied_channels=("C-RANDOM",),
    )
    assert await store.save_settings(custom) == custom
    assert await store.get_settings("slack", "T1") == custom
    # Saved again, every field is replaced (None and empty values too).
    plain = dataclasses.replace(
        custom,
        crisis_message=None,
        crisis_locales={},
        verify_endings=None,
        instructions=None,
        allowed_channels=(),
        denied_channels=(),
    )
    await store.save_settings(plain)
    assert await store.get_settings("slack", "T1") == plain
    # Another workspace, or the same id on another platform, keeps the defaults.
    assert await store.get_settings("slack", "T2") == WorkspaceSettings("slack", "T2")
    assert await store.get_settings("discord", "T1") == WorkspaceSettings("discord", "T1")


# -- begin_turn ----------------------------------------------------------------------------------------


async def test_a_first_message_starts_a_conversation_with_settings_and_history(store: Store) -> None:
    await store.save_settings(WorkspaceSettings("slack", "T1", abuse_warnings_before_end=3))
    message = user("hello there", "m1")
    began = await store.begin_turn(T, "k1", message, create=True, started_by="U1")
    conv = began.conversation
    assert not began.duplicate and began.stored and conv is not None
    assert conv.thread == T and conv.status is ConversationStatus.ACTIVE and conv.user_turns == 1
    assert (conv.warnings, conv.confirm_pending, conv.at_risk, conv.soft_cues) == (0, False, False, ())
    assert conv.end_reason is None and conv.crisis_shown_turn is None and conv.forked_from is None
    assert began.settings == WorkspaceSettings("slack", "T1", abuse_warnings_before_end=3)
    [stored] = began.history
    assert (stored.seq, stored.role, stored.kind) == (1, "user", "text")
    assert stored.content == message.content
    assert (stored.author_id, stored.platform_message_id, stored.text) == ("U1", "m1", "hello there")
    assert await store.find_conversation(T) == conv
    assert await store.get_conversation("slack", "T1", conv.id) == conv
    assert await store.history(conv.id, "T1") == list(began.history)


async def test_a_thread_that_is_not_a_conversation_claims_no_key(store: Store) -> None:
    began = await store.begin_turn(T, "k1", user("hi", "m1"), create=False)
    assert (began.duplicate, began.conversation, began.stored) == (False, None, False)
    assert began.settings is None and began.history == ()
    assert await store.find_conversation(T) is None
    assert await store.claim_event("slack", "T1", "k1")  # still unclaimed


async def test_later_turns_count_append_and_read_current_settings(store: Store) -> None:
    conv = await start(store)
    await store.finish_turn(conv.id, "T1", [assistant("hi")], StateChange())
    await store.save_settings(WorkspaceSettings("slack", "T1", alert_channel="C9"))
    began = await store.begin_turn(T, "k2", user("again", "m2", "U2"), create=False)
    assert began.stored and began.conversation is not None
    assert began.conversation.id == conv.id and began.conversation.user_turns == 2
    assert began.settings is not None and began.settings.alert_channel == "C9"
    assert [(m.seq, m.role, m.text) for m in began.history] == [
        (1, "user", "hello"),
        (2, "assistant", None),
        (3, "user", "again"),
    ]
    assert await store.history(conv.id, "T1") == list(began.history)
    # A starting origin in a thread that already holds a conversation continues it.
    again = await store.begin_turn(T, "k3", user("more", "m3"), create=True)
    assert again.conversation is not None and again.conversation.id == conv.id
    assert again.conversation.user_turns == 3


async def test_a_duplicate_key_changes_nothing(store: Store) -> None:
    conv = await start(store, key="k1")
    dup = await store.begin_turn(T, "k1", user("hello", "m1"), create=True)
    assert (dup.duplicate, dup.conversation, dup.stored) == (True, None, False)
    assert len(await store.history(conv.id, "T1")) == 1
    assert await store.find_conversation(T) == conv
    # Keys are per platform and workspace.
    for thread in (OTHER_WORKSPACE, OTHER_PLATFORM):
        other = await store.begin_turn(thread, "k1", user("hello", "m1"), create=True)
        assert not other.duplicate and other.stored


async def test_concurrent_deliveries_of_one_event_store_it_once(store: Store) -> None:
    results = await asyncio.gather(
        *(store.begin_turn(T, "same", user("hi", "m1"), create=True) for _ in range(8))
    )
    assert sum(not r.duplicate for r in results) == 1
    conv = await store.find_conversation(T)
    assert conv is not None and conv.user_turns == 1 and len(await store.history(conv.id, "T1")) == 1


async def test_claim_event_is_insert_or_ignore_and_shares_begin_turns_keys(store: Store) -> None:
    assert await store.claim_event("slack", "T1", "edit:1")
    assert not await store.claim_event("slack", "T1", "edit:1")
    assert await store.claim_event("slack", "T2", "edit:1")
    assert await store.claim_event("discord", "T1", "edit:1")
    await start(store, key="k1")
    assert not await store.claim_event("slack", "T1", "k1")
    began = await store.begin_turn(T, "edit:1", user("hi", "m2"), create=False)
    assert began.duplicate


async def test_a_dedupe_key_counts_by_its_first_128_characters(store: Store) -> None:
    stem = "k" * 128
    assert await store.claim_event("slack", "T1", stem + "-a")
    assert not await store.claim_event("slack", "T1", stem + "-b")
    assert not await store.claim_event("slack", "T1", stem)


async def test_an_ended_conversation_is_returned_unchanged_with_nothing_appended(store: Store) -> None:
    conv = await start(store)
    ended = await store.finish_turn(conv.id, "T1", [assistant("bye")], StateChange(end_reason="abuse"))
    before = await store.history(conv.id, "T1")
    began = await store.begin_turn(
        T, "k2", user("hello?", "m2"), create=True, at_risk=True, soft_cues=("lonely",)
    )
    assert not began.duplicate and not began.stored and began.conversation == ended
    assert began.settings is None and began.history == ()
    assert await store.history(conv.id, "T1") == before
    assert await store.find_conversation(T) == ended
    # The key was claimed all the same: a redelivery is a duplicate.
    assert (await store.begin_turn(T, "k2", user("hello?", "m2"), create=False)).duplicate


# -- risk marks ----------------------------------------------------------------------------------------


async def test_risk_marks_accumulate_and_are_never_cleared(store: Store) -> None:
    conv = await start(store, soft_cues=("loneliness",))
    assert conv.soft_cues == ("loneliness",) and not conv.at_risk and conv.risk_source is None
    began = await store.begin_turn(
        T, "k2", user("x", "m2"), create=False, soft_cues=("cannot_cope", "loneliness")
    )
    assert began.conversation is not None
    assert began.conversation.soft_cues == ("cannot_cope", "loneliness") and began.conversation.soft_risk
    began = await store.begin_turn(T, "k3", user("y", "m3"), create=False, at_risk=True)
    assert began.conversation is not None
    assert began.conversation.at_risk and began.conversation.risk_source == "detector"
    # A later source never replaces the first; an empty change clears nothing.
    after = await store.finish_turn(
        conv.id, "T1", [], StateChange(at_risk=True, risk_source="crisis_tool", soft_cues=("hopeless",))
    )
    assert after.at_risk and after.risk_source == "detector"
    assert after.soft_cues == ("cannot_cope", "hopeless", "loneliness")
    after = await store.finish_turn(conv.id, "T1", [], StateChange(at_risk=False, warnings=1))
    assert after.at_risk and after.risk_source == "detector" and after.soft_cues
    began = await store.begin_turn(T, "k4", user("z", "m4"), create=False)
    assert began.conversation is not None and began.conversation.at_risk and began.conversation.soft_cues
    assert await store.find_conversation(T) == began.conversation


async def test_the_first_hard_mark_names_its_source(store: Store) -> None:
    conv = await start(store)
    marked = await store.finish_turn(conv.id, "T1", [], StateChange(at_risk=True, risk_source="verifier"))
    assert marked.at_risk and marked.risk_source == "verifier"
    began = await store.begin_turn(T, "k2", user("again", "m2"), create=False, at_risk=True)
    assert began.conversation is not None and began.conversation.risk_source == "verifier"
    fresh = await start(store, dataclasses.replace(T, thread="2.0"), key="k9", at_risk=True)
    assert fresh.at_risk and fresh.risk_source == "detector"


async def test_cue_names_are_stored_clean_unique_and_sorted(store: Store) -> None:
    conv = await start(store, soft_cues=("b.cue", "a-cue", "b.cue", "with space!", "x" * 80, "%%"))
    assert conv.soft_cues == ("a-cue", "b.cue", "withspace", "x" * 64)
    assert (await store.find_conversation(T)) == conv


# -- finish_turn ---------------------------------------------------------------------------------------


async def test_finish_turn_appends_applies_and_audits_together(store: Store) -> None:
    conv = await start(store)
    tool_use = NewMessage(
        "assistant", "tool_use", ({"type": "tool_use", "id": "t1", "name": "end", "input": {"x": 1}},)
    )
    tool_result = NewMessage(
        "user", "tool_result", ({"type": "tool_result", "tool_use_id": "t1", "content": "held"},)
    )
    updated = await store.finish_turn(
        conv.id,
        "T1",
        [tool_use, tool_result, assistant("Please stop.")],
        StateChange(warnings=1, confirm_pending=True, crisis_shown_turn=1),
        [decision("HOLD_WARN", 1, at_risk=False, cues=["a", "b"])],
        [usage(100, 10), usage(50, 5, "verify")],
    )
    assert (updated.warnings, updated.confirm_pending, updated.crisis_shown_turn) == (1, True, 1)
    assert not updated.ended and updated.user_turns == 1
    assert await store.find_conversation(T) == updated
    history = await store.history(conv.id, "T1")
    assert [(m.seq, m.role, m.kind) for m in history] == [
        (1, "user", "text"),
        (2, "assistant", "tool_use"),
        (3, "user", "tool_result"),
        (4, "assistant", "text"),
    ]
    assert history[1].content == tool_use.content and history[2].content == tool_result.content
    [audit] = await store.list_decisions("slack", "T1")
    assert (audit.conversation_id, audit.decision, audit.reason, audit.note, audit.warnings) == (
        conv.id,
        "HOLD_WARN",
        "abuse",
        "a note",
        1,
    )
    assert audit.signals == {"at_risk": False, "cues": ["a", "b"]} and isinstance(audit.created_at, datetime)
    assert await store.usage_totals("slack", "T1") == {
        "calls": 2,
        "input_tokens": 150,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 6,
        "output_tokens": 15,
    }
    # Unchanged fields of a change stay as they were.
    again = await store.finish_turn(conv.id, "T1", [], StateChange())
    assert again == updated


async def test_finish_turn_ends_once_and_an_ended_conversation_stays_ended(store: Store) -> None:
    conv = await start(store)
    ended = await store.finish_turn(
        conv.id, "T1", [assistant("bye")], StateChange(warnings=2, end_reason="abuse"), [decision("END", 2)]
    )
    assert ended.ended and ended.status is ConversationStatus.ENDED
    assert ended.end_reason == "abuse" and ended.warnings == 2
    again = await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="user_request"))
    assert again.ended and again.end_reason == "abuse"
    assert not await store.end_conversation(conv.id, "T1", "user_command", decision("END"))
    assert (await store.find_conversation(T)) == again
    [ending] = await store.list_endings("slack", "T1")
    assert ending.reason == "abuse"


async def test_finish_turn_of_another_workspaces_conversation_changes_nothing(store: Store) -> None:
    conv = await start(store)
    with pytest.raises(NOT_FOUND):
        await store.finish_turn(
            conv.id, "T2", [assistant("x")], StateChange(end_reason="abuse"), [decision("END")], [usage(1, 1)]
        )
    assert await store.find_conversation(T) == conv
    assert len(await store.history(conv.id, "T1")) == 1
    for ws in ("T1", "T2"):
        assert await store.list_decisions("slack", ws) == []
        assert (await store.usage_totals("slack", ws))["calls"] == 0


# -- scoping -------------------------------------------------------------------------------------------


async def test_another_workspace_finds_nothing(store: Store) -> None:
    conv = await start(store)
    assert await store.find_conversation(OTHER_WORKSPACE) is None
    assert await store.find_conversation(OTHER_PLATFORM) is None
    assert await store.get_conversation("slack", "T2", conv.id) is None
    assert await store.get_conversation("discord", "T1", conv.id) is None
    assert await store.history(conv.id, "T2") == []
    assert await store.find_user_message(conv.id, "T2", number=1) is None
    assert await store.find_user_message(conv.id, "T2", platform_message_id="m-k1") is None
    assert not await store.is_participant(conv.id, "T2", "U1")
    assert not await store.end_conversation(conv.id, "T2", "user_command", decision("END"))
    assert await store.find_conversation(T) == conv
    # The same thread ids in another workspace are another conversation.
    other = await start(store, OTHER_WORKSPACE, key="k1")
    assert other.id != conv.id and await store.find_conversation(OTHER_WORKSPACE) == other


async def test_admin_lists_never_show_another_workspace(store: Store) -> None:
    conv = await start(store)
    await store.finish_turn(
        conv.id, "T1", [], StateChange(end_reason="abuse"), [decision("END")], [usage(1, 1)]
    )
    await store.record_feedback(conv, "U1", "wrong")
    for platform, ws in (("slack", "T2"), ("discord", "T1")):
        assert await store.list_endings(platform, ws) == []
        assert await store.list_feedback(platform, ws) == []
        assert await store.list_decisions(platform, ws) == []
        assert (await store.usage_totals(platform, ws))["calls"] == 0
    assert len(await store.list_endings("slack", "T1")) == 1


def change(
    setting: str, old: object, new: object, at: datetime, workspace: str = "T1", platform: str = "slack"
) -> AuditRecord:
    return AuditRecord(platform, workspace, "U7", "ada", "settings.set", setting, old, new, at)


async def test_the_admin_audit_is_saved_with_the_settings_and_listed_newest_first(store: Store) -> None:
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    settings = WorkspaceSettings("slack", "T1", abuse_warnings_before_end=3)
    assert await store.save_settings(settings, [change("warnings", 2, 3, t0)]) == settings
    assert await store.get_settings("slack", "T1") == settings
    admins = dataclasses.replace(settings, admin_users=("U1", "U2"))
    summary = {"chars": 12, "sha256": "0123456789ab", "start": "Call the line"}
    await store.save_settings(
        admins,
        [
            change("admins", [], ("U1", "U2"), t0 + timedelta(seconds=1)),
            # Two records of one instant: the one stored later is listed first.
            change("crisis-message", None, summary, t0 + timedelta(seconds=1)),
        ],
    )
    await store.save_settings(admins)  # a save without records adds none
    listed = await store.list_admin_audit("slack", "T1")
    assert [(r.setting, r.old, r.new) for r in listed] == [
        ("crisis-message", None, summary),
        ("admins", [], ["U1", "U2"]),  # stored as JSON: the tuple comes back a list
        ("warnings", 2, 3),
    ]
    newest = listed[0]
    assert (newest.platform, newest.workspace, newest.actor_id, newest.actor_name, newest.action) == (
        "slack",
        "T1",
        "U7",
        "ada",
        "settings.set",
    )
    assert [r.created_at for r in listed] == [t0 + timedelta(seconds=1)] * 2 + [t0]
    assert all(r.created_at.utcoffset() == timedelta(0) for r in listed)
    assert [r.setting for r in await store.list_admin_audit("slack", "T1", limit=1)] == ["crisis-message"]


async def test_the_admin_audit_never_shows_another_workspace(store: Store) -> None:
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    await store.save_settings(WorkspaceSettings("slack", "T1"), [change("ending", True, False, t0)])
    await store.save_settings(
        WorkspaceSettings("slack", "T2"), [change("ending", True, False, t0, workspace="T2")]
    )
    assert [r.workspace for r in await store.list_admin_audit("slack", "T1")] == ["T1"]
    assert [r.workspace for r in await store.list_admin_audit("slack", "T2")] == ["T2"]
    assert await store.list_admin_audit("discord", "T1") == []
    assert await store.list_admin_audit("slack", "T3") == []


async def test_admin_audit_ids_and_names_are_kept_to_their_columns_widths(store: Store) -> None:
    t0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    long = AuditRecord("slack", "T1", "U" * 80, "n" * 200, "a" * 40, "s" * 80, None, None, t0)
    await store.save_settings(WorkspaceSettings("slack", "T1"), [long])
    [stored] = await store.list_admin_audit("slack", "T1")
    assert (stored.actor_id, stored.actor_name, stored.action, stored.setting) == (
        "U" * 64,
        "n" * 128,
        "a" * 32,
        "s" * 64,
    )
    assert (stored.old, stored.new) == (None, None)


# -- threads and people --------------------------------------------------------------------------------


async def test_mark_reminded_is_true_once_per_person(store: Store) -> None:
    conv = await start(store)
    ended = await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="abuse"))
    assert await store.mark_reminded(ended, "U1")
    assert not await store.mark_reminded(ended, "U1")
    assert await store.mark_reminded(ended, "U2")
    other = await start(store, dataclasses.replace(T, thread="2.0"), key="k2")
    assert await store.mark_reminded(other, "U1")


async def test_participants_started_or_wrote(store: Store) -> None:
    conv = await start(store, author="U1")
    await say(store, "me too", "k2", author="U2")
    await store.finish_turn(conv.id, "T1", [assistant("hi both")], StateChange())
    assert await store.is_participant(conv.id, "T1", "U1")
    assert await store.is_participant(conv.id, "T1", "U2")
    assert not await store.is_participant(conv.id, "T1", "U3")
    # Started by someone who has not written (a fork's starter, a command's): a participant.
    quiet = dataclasses.replace(T, thread="2.0")
    began = await store.begin_turn(quiet, "k3", user("hi", "m3", "U4"), create=True, started_by="U5")
    assert began.conversation is not None
    assert await store.is_participant(began.conversation.id, "T1", "U5")


async def test_find_user_message_by_id_or_number_among_peoples_texts(store: Store) -> None:
    conv = await start(store, key="k1")  # message "m-k1"
    result = NewMessage("user", "tool_result", ({"type": "tool_result", "tool_use_id": "t", "content": "x"},))
    await store.finish_turn(conv.id, "T1", [assistant("a1"), result, assistant("a2")], StateChange())
    await say(store, "second", "k2", author="U2")
    by_id = await store.find_user_message(conv.id, "T1", platform_message_id="m-k2")
    assert by_id is not None and (by_id.text, by_id.author_id, by_id.seq) == ("second", "U2", 5)
    second = await store.find_user_message(conv.id, "T1", number=2)
    assert second == by_id
    first = await store.find_user_message(conv.id, "T1", number=1)
    assert first is not None and first.text == "hello" and first.platform_message_id == "m-k1"
    for missing in (
        await store.find_user_message(conv.id, "T1", number=3),
        await store.find_user_message(conv.id, "T1", number=0),
        await store.find_user_message(conv.id, "T1", platform_message_id="nope"),
        await store.find_user_message(conv.id, "T1"),
    ):
        assert missing is None


async def test_end_conversation_ends_once_and_audits(store: Store) -> None:
    conv = await start(store)
    end = Decision("END", "user_command", "end command", 0, {"by": "command"})
    assert await store.end_conversation(conv.id, "T1", "user_command", end)
    assert not await store.end_conversation(conv.id, "T1", "user_command", end)
    ended = await store.find_conversation(T)
    assert ended is not None and ended.ended and ended.end_reason == "user_command"
    [audit] = await store.list_decisions("slack", "T1")
    assert (audit.decision, audit.reason, audit.signals) == ("END", "user_command", {"by": "command"})


async def test_conversation_lock_serialises_one_key_only(store: Store) -> None:
    order: list[str] = []
    inside = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with store.conversation_lock(T.key):
            order.append("first in")
            inside.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        await inside.wait()
        async with store.conversation_lock(T.key):
            order.append("second in")

    async def other_key() -> None:
        await inside.wait()
        async with store.conversation_lock(OTHER_WORKSPACE.key):
            order.append("other key in")
        release.set()

    await asyncio.wait_for(asyncio.gather(first(), second(), other_key()), timeout=10)
    assert order == ["first in", "other key in", "first out", "second in"]


# -- forks ---------------------------------------------------------------------------------------------


async def test_a_fork_copies_the_earlier_messages_and_inherits_both_marks(store: Store) -> None:
    conv = await start(store, key="k1", soft_cues=("loneliness",))
    await store.finish_turn(
        conv.id,
        "T1",
        [assistant("a1")],
        StateChange(warnings=1, at_risk=True, risk_source="crisis_tool", crisis_shown_turn=1),
    )
    await say(store, "two", "k2", author="U2")
    await store.finish_turn(conv.id, "T1", [assistant("a2")], StateChange(end_reason="abuse"))
    picked = await store.find_user_message(conv.id, "T1", platform_message_id="m-k2")
    assert picked is not None
    new_thread = ThreadRef("slack", "T1", "C1", "2.0")
    fork = await store.create_fork(
        conv.id, "T1", picked.seq, new_thread, source_message_id="m-k2", started_by="U3"
    )
    assert fork.id != conv.id and fork.thread == new_thread and fork.status is ConversationStatus.ACTIVE
    assert (fork.forked_from, fork.forked_from_message) == (conv.id, "m-k2")
    assert (fork.warnings, fork.confirm_pending, fork.crisis_shown_turn, fork.end_reason) == (
        0,
        False,
        None,
        None,
    )
    assert fork.at_risk and fork.risk_source == "crisis_tool" and fork.soft_cues == ("loneliness",)
    assert fork.user_turns == 1
    assert await store.find_conversation(new_thread) == fork
    assert await store.get_conversation("slack", "T1", fork.id) == fork
    source_history = await store.history(conv.id, "T1")
    assert await store.history(fork.id, "T1") == [m for m in source_history if m.seq < picked.seq]
    # Copied messages count: U1 wrote one; the fork's starter takes part too; U2's message was not copied.
    assert await store.is_participant(fork.id, "T1", "U1") and await store.is_participant(fork.id, "T1", "U3")
    assert not await store.is_participant(fork.id, "T1", "U2")
    copied = await store.find_user_message(fork.id, "T1", number=1)
    assert copied is not None and copied.platform_message_id == "m-k1"
    # The fork goes on after the copied messages; the source is untouched (ended, its history whole).
    began = await store.begin_turn(new_thread, "k3", user("two, edited", "m-k3", "U3"), create=False)
    assert began.stored and began.conversation is not None and began.conversation.user_turns == 2
    assert [m.seq for m in began.history] == [1, 2, 3]
    assert await store.history(conv.id, "T1") == source_history
    source = await store.find_conversation(T)
    assert source is not None and source.ended and source.warnings == 1


async def test_a_soft_mark_alone_is_inherited(store: Store) -> None:
    conv = await start(store, soft_cues=("cannot_cope",))
    fork = await store.create_fork(
        conv.id, "T1", 99, ThreadRef("slack", "T1", "C1", "2.0"), source_message_id="m-k1", started_by="U1"
    )
    assert fork.soft_cues == ("cannot_cope",) and not fork.at_risk and fork.risk_source is None
    assert len(await store.history(fork.id, "T1")) == 1


async def test_another_workspace_cannot_fork(store: Store) -> None:
    conv = await start(store)
    with pytest.raises(NOT_FOUND):
        await store.create_fork(
            conv.id, "T2", 99, ThreadRef("slack", "T2", "C1", "2.0"), source_message_id="m", started_by="U1"
        )
    assert await store.find_conversation(ThreadRef("slack", "T2", "C1", "2.0")) is None


# -- usage, feedback, admin lists ----------------------------------------------------------------------


async def test_usage_of_failed_turns_is_recorded_all_the_same(store: Store) -> None:
    conv = await start(store)
    await store.record_usage(conv, [])
    assert (await store.usage_totals("slack", "T1"))["calls"] == 0
    await store.record_usage(conv, [usage(7, 0), usage(3, 1, "verify")])
    await store.finish_turn(conv.id, "T1", [assistant("x")], StateChange(), usage=[usage(10, 2)])
    assert await store.usage_totals("slack", "T1") == {
        "calls": 3,
        "input_tokens": 20,
        "cache_creation_input_tokens": 6,
        "cache_read_input_tokens": 9,
        "output_tokens": 3,
    }


async def test_feedback_is_listed_newest_first(store: Store) -> None:
    conv = await start(store)
    ended = await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="abuse"))
    await store.record_feedback(ended, "U1", "that was a mistake")
    await store.record_feedback(ended, "U2", None)
    newest, oldest = await store.list_feedback("slack", "T1")
    assert (newest.conversation_id, newest.thread, newest.user_id, newest.comment) == (conv.id, T, "U2", None)
    assert (oldest.user_id, oldest.comment) == ("U1", "that was a mistake")
    assert isinstance(newest.created_at, datetime) and newest.created_at >= oldest.created_at
    assert [f.user_id for f in await store.list_feedback("slack", "T1", limit=1)] == ["U2"]


async def test_feedback_is_one_record_per_person_which_a_repeat_edits(store: Store) -> None:
    conv = await start(store)
    ended = await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="abuse"))
    assert await store.record_feedback(ended, "U1", None) is True
    for _ in range(4):  # the button pressed again and again
        assert await store.record_feedback(ended, "U1", None) is False
    assert await store.record_feedback(ended, "U1", "first thoughts") is False
    assert await store.record_feedback(ended, "U1", "on reflection, it was fine to end") is False
    assert await store.record_feedback(ended, "U1", None) is False  # a blank repeat keeps the comment
    assert await store.record_feedback(ended, "U2", "me too") is True  # another person, another record
    records = await store.list_feedback("slack", "T1")
    assert sorted((f.user_id, f.comment) for f in records) == [
        ("U1", "on reflection, it was fine to end"),
        ("U2", "me too"),
    ]
    # The same person on another ending is a first report again.
    other = await start(store, dataclasses.replace(T, thread="2.0"), key="k-other")
    other = await store.finish_turn(other.id, "T1", [], StateChange(end_reason="abuse"))
    assert await store.record_feedback(other, "U1", None) is True
    assert len(await store.list_feedback("slack", "T1")) == 3


async def test_endings_are_listed_newest_first(store: Store) -> None:
    ids = []
    for n in range(3):
        thread = dataclasses.replace(T, thread=f"{n}.0")
        conv = await start(store, thread, key=f"k{n}")
        await store.finish_turn(conv.id, "T1", [], StateChange(warnings=n, end_reason="abuse"))
        ids.append(conv.id)
    still_open = await start(store, dataclasses.replace(T, thread="open"), key="k-open")
    fork = await store.create_fork(
        ids[0], "T1", 99, dataclasses.replace(T, thread="fork"), source_message_id="m-k0", started_by="U1"
    )
    assert await store.end_conversation(fork.id, "T1", "user_command", decision("END"))
    endings = await store.list_endings("slack", "T1")
    assert [e.conversation_id for e in endings] == [fork.id, *reversed(ids)]
    assert still_open.id not in {e.conversation_id for e in endings}
    newest = endings[0]
    assert (newest.thread, newest.reason, newest.warnings, newest.forked_from) == (
        dataclasses.replace(T, thread="fork"),
        "user_command",
        0,
        ids[0],
    )
    assert endings[1].reason == "abuse" and endings[1].warnings == 2 and endings[1].forked_from is None
    assert all(isinstance(e.ended_at, datetime) for e in endings)
    assert [e.conversation_id for e in await store.list_endings("slack", "T1", limit=2)] == [fork.id, ids[2]]


async def test_decisions_are_listed_newest_first_per_conversation(store: Store) -> None:
    one = await start(store)
    two = await start(store, dataclasses.replace(T, thread="2.0"), key="k2")
    await store.finish_turn(
        one.id, "T1", [], StateChange(), [decision("HOLD_WARN", 1), decision("VETO_RISK", 1)]
    )
    await store.finish_turn(two.id, "T1", [], StateChange(), [decision("HOLD_CONFIRM")])
    await store.finish_turn(one.id, "T1", [], StateChange(end_reason="abuse"), [decision("END", 2)])
    listed = await store.list_decisions("slack", "T1")
    assert [d.decision for d in listed] == ["END", "HOLD_CONFIRM", "VETO_RISK", "HOLD_WARN"]
    mine = await store.list_decisions("slack", "T1", conversation_id=one.id)
    assert [d.decision for d in mine] == ["END", "VETO_RISK", "HOLD_WARN"]
    assert [d.decision for d in await store.list_decisions("slack", "T1", limit=2)] == ["END", "HOLD_CONFIRM"]


async def test_usage_since_counts_only_the_calls_in_the_window(store: Store) -> None:
    conv = await start(store)
    await store.record_usage(conv, [usage(100, 10)])
    await asyncio.sleep(0.01)
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.01)
    await store.record_usage(conv, [usage(5, 1), usage(7, 2, "verify")])
    elsewhere = await start(store, OTHER_WORKSPACE, key="k-elsewhere")
    await store.record_usage(elsewhere, [usage(1000, 1000)])
    assert await store.usage_totals("slack", "T1", boundary) == {
        "calls": 2,
        "input_tokens": 12,
        "cache_creation_input_tokens": 4,
        "cache_read_input_tokens": 6,
        "output_tokens": 3,
    }
    assert (await store.usage_totals("slack", "T1"))["calls"] == 3
    assert (await store.usage_totals("slack", "T1", datetime.now(UTC) + timedelta(seconds=5)))["calls"] == 0


async def test_usage_lines_per_model_person_and_conversation_in_a_window(store: Store) -> None:
    alice = await start(store, dataclasses.replace(T, thread="1.0"), key="a1", author="U1")
    bob = await start(store, dataclasses.replace(T, thread="2.0"), key="b1", author="U2")
    await store.record_usage(alice, [usage(100, 10)])
    await asyncio.sleep(0.01)
    boundary = datetime.now(UTC)
    await asyncio.sleep(0.01)
    haiku = UsageRecord("claude-small", 1, 0, 0, 1, "verify")
    await store.record_usage(alice, [usage(5, 1), haiku])
    await store.record_usage(bob, [usage(50, 5)])
    elsewhere = await start(store, OTHER_WORKSPACE, key="k-elsewhere")
    await store.record_usage(elsewhere, [usage(1000, 1000)])

    whole = await store.usage_lines("slack", "T1")
    assert [(x.key, x.model, x.calls, x.input_tokens, x.output_tokens) for x in whole] == [
        ("", "claude-test", 3, 155, 16),
        ("", "claude-small", 1, 1, 1),
    ]
    people = await store.usage_lines("slack", "T1", by="user")
    assert [(x.key, x.model, x.calls, x.tokens) for x in people] == [
        ("U1", "claude-test", 2, 105 + 2 * 5 + 11),
        ("U2", "claude-test", 1, 50 + 5 + 5),
        ("U1", "claude-small", 1, 2),
    ]
    recent = await store.usage_lines("slack", "T1", since=boundary, by="conversation")
    assert {(x.key, x.model, x.calls) for x in recent} == {
        (alice.id, "claude-test", 1),
        (alice.id, "claude-small", 1),
        (bob.id, "claude-test", 1),
    }
    before = await store.usage_lines("slack", "T1", until=boundary, by="conversation")
    assert [(x.key, x.calls, x.input_tokens) for x in before] == [(alice.id, 1, 100)]
    later = datetime.now(UTC) + timedelta(seconds=5)
    assert await store.usage_lines("slack", "T1", since=later) == []


# -- one person's side ---------------------------------------------------------------------------------


async def test_a_persons_conversations_are_listed_where_they_wrote_last_first(store: Store) -> None:
    first = await start(store, dataclasses.replace(T, thread="1.0"), key="a1", author="U1")
    second = await start(store, dataclasses.replace(T, thread="2.0"), key="a2", author="U1")
    theirs = await start(store, dataclasses.replace(T, thread="3.0"), key="a3", author="U2")
    await say(store, "x" * 500, "a4", dataclasses.replace(T, thread="1.0"), author="U1")  # first is newest
    await say(store, "someone else's words", "a5", dataclasses.replace(T, thread="1.0"), author="U2")
    await store.finish_turn(second.id, "T1", [assistant("bye")], StateChange(end_reason="abuse"))
    # The same person and thread ids in another workspace and on another platform are not listed.
    await start(store, OTHER_WORKSPACE, key="b1", author="U1")
    await start(store, OTHER_PLATFORM, key="c1", author="U1")

    listed = await store.list_user_conversations("slack", "T1", "U1")
    assert [c.conversation_id for c in listed] == [first.id, second.id]
    newest, older = listed
    assert (newest.thread, newest.ended, newest.end_reason) == (
        dataclasses.replace(T, thread="1.0"),
        False,
        None,
    )
    assert newest.latest_text == "x" * 200  # the start of their own latest message, not U2's
    assert (older.ended, older.end_reason, older.latest_text) == (True, "abuse", "hello")
    assert newest.last_active.tzinfo is not None and newest.last_active >= older.last_active
    assert [c.conversation_id for c in await store.list_user_conversations("slack", "T1", "U1", 1)] == [
        first.id
    ]
    assert [c.conversation_id for c in await store.list_user_conversations("slack", "T1", "U2")] == [
        first.id,
        theirs.id,
    ]
    # A fork holds copies of their messages: it is theirs too, and the newest.
    fork = await store.create_fork(
        second.id, "T1", 99, dataclasses.replace(T, thread="fork"), source_message_id="m-a2", started_by="U1"
    )
    assert [c.conversation_id for c in await store.list_user_conversations("slack", "T1", "U1")] == [
        fork.id,
        first.id,
        second.id,
    ]
    assert await store.list_user_conversations("slack", "T1", "U-nobody") == []


async def test_forget_user_removes_one_workspaces_texts_and_audits_it(store: Store) -> None:
    here = await start(store, key="f1", author="U1")
    await say(store, "my second message", "f2", author="U1")
    await say(store, "a colleague's message", "f3", author="U2")
    await store.finish_turn(here.id, "T1", [assistant("Haven's answer")], StateChange(end_reason="abuse"))
    ended = await store.get_conversation("slack", "T1", here.id)
    assert ended is not None
    await store.record_feedback(ended, "U1", "ending me was wrong")
    await store.record_feedback(ended, "U2", "agreed")
    there = await start(store, OTHER_WORKSPACE, key="g1", author="U1")
    there_ended = await store.finish_turn(there.id, "T2", [], StateChange(end_reason="abuse"))
    await store.record_feedback(there_ended, "U1", "kept elsewhere")
    assert len(await store.history(here.id, "T1")) == 4  # read once, so a cached copy must notice

    at = datetime(2030, 1, 2, tzinfo=UTC)
    request = AuditRecord("slack", "T1", "U1", None, "user.forget", "own-messages", None, None, at)
    removed = await store.forget_user("slack", "T1", "U1", request)
    assert removed == {"messages": 2, "comments": 1}

    history = await store.history(here.id, "T1")
    gone = [m for m in history if m.author_id == "U1"]
    assert len(gone) == 2 and all(m.text is None for m in gone)
    assert all("removed" in str(m.content[0]["text"]) and "second" not in str(m.content) for m in gone)
    assert [m.text for m in history if m.author_id != "U1"] == ["a colleague's message", None]
    assert history[-1].content[0]["text"] == "Haven's answer"
    assert (await store.list_user_conversations("slack", "T1", "U1"))[0].latest_text is None
    comments = {f.user_id: f.comment for f in await store.list_feedback("slack", "T1")}
    assert comments == {"U1": None, "U2": "agreed"}
    # Another workspace keeps everything.
    assert [m.text for m in await store.history(there.id, "T2")] == ["hello"]
    assert [f.comment for f in await store.list_feedback("slack", "T2")] == ["kept elsewhere"]
    # The audit says who asked and what was removed, in this workspace only.
    [record] = await store.list_admin_audit("slack", "T1")
    assert (record.actor_id, record.action, record.setting, record.created_at) == (
        "U1",
        "user.forget",
        "own-messages",
        at,
    )
    assert (record.old, record.new) == (None, {"messages": 2, "comments": 1})
    assert await store.list_admin_audit("slack", "T2") == []
    # Asked again: nothing left to remove, and that is audited too.
    again = await store.forget_user("slack", "T1", "U1", dataclasses.replace(request, created_at=at))
    assert again == {"messages": 0, "comments": 0}
    assert [r.new for r in await store.list_admin_audit("slack", "T1")] == [
        {"messages": 0, "comments": 0},
        {"messages": 2, "comments": 1},
    ]


# -- the inbox -----------------------------------------------------------------------------------------

LEASE = 30.0


def incoming(
    mid: str,
    thread: ThreadRef = T,
    *,
    origin: Origin = Origin.MENTION,
    key: str | None = None,
    text: str = "hello",
) -> IncomingMessage:
    return IncomingMessage(thread, Author("U1", "u1", True), text, mid, origin, key, "de")


def answer(text: str = "hi there") -> TurnResult:
    return TurnResult(
        TurnStatus.REPLIED,
        conversation_id="c",
        replies=(text, "more"),
        crisis=CrisisCard("call"),
        closure=Closure("c", EndReason.ABUSE, 2, CrisisCard("help")),
        alert=AdminAlert("C-AL", "ending", "c", T, "abuse", 2),
        error=None,
        crisis_shown=True,
    )


async def accepted(store: Store, msg: IncomingMessage, owner: str = "p1") -> InboxEntry:
    outcome, entry = await store.accept(msg, owner, LEASE)
    assert outcome is Accepted.NEW and entry is not None
    return entry


async def begin(store: Store, entry: InboxEntry, hold: InboxHold | None = None) -> Conversation:
    msg = entry.message
    began = await store.begin_turn(
        msg.thread,
        msg.effective_dedupe_key,
        user(msg.text, msg.message_id),
        create=msg.starts_conversation,
        hold=hold or entry.hold,
    )
    assert began.stored and began.conversation is not None, began
    return began.conversation


async def test_accept_records_the_whole_message_held_by_its_acceptor(store: Store, clock: Clock) -> None:
    msg = incoming("m1", key="ev-1")
    outcome, entry = await store.accept(msg, "p1", LEASE)
    assert outcome is Accepted.NEW and entry is not None
    assert entry.message == msg and entry.state is InboxState.RECEIVED
    assert (entry.owner, entry.attempts, entry.received_at) == ("p1", 1, clock.now)
    assert not entry.delivered and entry.reply_ref is None and entry.result is None
    assert entry.hold == InboxHold(entry.id, "p1")
    assert await store.get_entry(entry.id) == entry
    assert await store.pending() == 1
    # The same key again, from any process: a duplicate, nothing more recorded.
    assert await store.accept(incoming("m1-again", key="ev-1"), "p2", LEASE) == (Accepted.DUPLICATE, None)
    assert await store.pending() == 1
    # Without an explicit key the message id is the key.
    await accepted(store, incoming("m2"))
    assert await store.accept(incoming("m2"), "p1", LEASE) == (Accepted.DUPLICATE, None)
    assert await store.get_entry("no-such-entry") is None and await store.get_entry("987654") is None


async def test_a_reply_in_a_thread_that_is_not_ours_records_nothing(store: Store) -> None:
    reply = incoming("m1", origin=Origin.THREAD_REPLY)
    assert await store.accept(reply, "p1", LEASE) == (Accepted.NOT_OURS, None)
    assert await store.pending() == 0
    # Nothing was kept of it: once the thread is a conversation, the same reply is new.
    await start(store, key="k-start")
    assert (await store.accept(reply, "p1", LEASE))[0] is Accepted.NEW
    # An ended conversation is still Haven's thread (its people are told it ended).
    conv = await store.find_conversation(T)
    assert conv is not None
    await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="abuse"))
    assert (await store.accept(incoming("m2", origin=Origin.THREAD_REPLY), "p1", LEASE))[0] is Accepted.NEW


async def test_a_key_a_turn_claimed_is_a_duplicate(store: Store) -> None:
    await start(store, key="k1")  # a turn from before the inbox existed
    assert await store.accept(incoming("m1", key="k1"), "p1", LEASE) == (Accepted.DUPLICATE, None)
    assert await store.claim_event("slack", "T1", "edit:1")
    assert await store.accept(incoming("m2", key="edit:1"), "p1", LEASE) == (Accepted.DUPLICATE, None)
    assert await store.pending() == 0


async def test_inbox_keys_are_per_workspace_and_count_by_their_first_128_characters(store: Store) -> None:
    await accepted(store, incoming("m1", key="k"))
    await accepted(store, incoming("m1", OTHER_WORKSPACE, key="k"))
    await accepted(store, incoming("m1", OTHER_PLATFORM, key="k"))
    stem = "k" * 128
    await accepted(store, incoming("m2", key=stem + "-a"))
    assert await store.accept(incoming("m3", key=stem + "-b"), "p1", LEASE) == (Accepted.DUPLICATE, None)
    assert await store.pending() == 4
    # A key a turn claimed in another workspace does not make this one a duplicate.
    await start(store, OTHER_WORKSPACE, key="turn-key")
    await accepted(store, incoming("m4", key="turn-key"))


async def test_concurrent_accepts_of_one_key_record_it_once(backend: Backend) -> None:
    one, two = backend.open(), backend.open()  # two processes (the same store in memory)
    results = await asyncio.gather(
        *(s.accept(incoming("m1", key="same"), f"p{i}", LEASE) for i, s in enumerate([one, two] * 4))
    )
    assert sorted(r[0] for r in results) == [Accepted.DUPLICATE] * 7 + [Accepted.NEW]
    assert await one.pending() == 1 and await two.pending() == 1


async def test_accepts_at_one_moment_are_each_decided_as_if_alone(store: Store) -> None:
    """Accepts that arrive together (a burst: SQLite and PostgreSQL write them as one group) get each
    its own outcome: a thread's messages in arrival order, the second of one key a duplicate, a reply in
    a thread that is not ours and a channel the rule refuses recorded nothing."""
    first = await accepted(store, incoming("m0", key="before"))
    calls = [
        store.accept(incoming("m1"), "p1", LEASE),
        store.accept(incoming("m1", key="m1"), "p2", LEASE),  # the same key again (the message copy)
        store.accept(incoming("m2", OTHER_WORKSPACE), "p1", LEASE),
        store.accept(
            incoming("m3", dataclasses.replace(T, thread="999.9"), origin=Origin.THREAD_REPLY), "p1", LEASE
        ),
        store.accept(incoming("m4"), "p1", LEASE, lambda settings: False),
        store.accept(incoming("m5", key="before"), "p1", LEASE),
        store.accept(incoming("m6"), "p1", LEASE),
    ]
    results = await asyncio.gather(*calls)
    outcomes = [r[0] for r in results]
    assert outcomes == [
        Accepted.NEW,
        Accepted.DUPLICATE,
        Accepted.NEW,
        Accepted.NOT_OURS,
        Accepted.ELSEWHERE,
        Accepted.DUPLICATE,
        Accepted.NEW,
    ]
    entries = [e for _, e in results if e is not None]
    assert [e.message.message_id for e in entries] == ["m1", "m2", "m6"]
    # One thread's messages keep their order in the inbox (ids are the order across processes).
    assert int(first.id) < int(entries[0].id) < int(entries[2].id)
    assert await store.pending() == 4


async def test_the_turns_transactions_move_the_entry(store: Store, clock: Clock) -> None:
    entry = await accepted(store, incoming("m1"))
    conv = await begin(store, entry)
    after_begin = await store.get_entry(entry.id)
    assert (
        after_begin is not None and after_begin.state is InboxState.ANSWERING and after_begin.result is None
    )
    result = answer()
    finished = await store.finish_turn(
        conv.id, "T1", [assistant("hi there")], StateChange(warnings=1), outcome=(entry.hold, result)
    )
    assert finished.warnings == 1
    answered = await store.get_entry(entry.id)
    assert answered is not None and answered.state is InboxState.ANSWERED and answered.result == result
    assert not answered.delivered and await store.pending() == 1
    assert await store.mark_delivered(entry.hold)
    assert await store.mark_delivered(entry.hold)  # again: still true, still delivered
    delivered = await store.get_entry(entry.id)
    assert delivered is not None and delivered.delivered and delivered.state is InboxState.ANSWERED
    assert await store.pending() == 0
    clock.advance(10 * LEASE)
    assert await store.take_expired("p2", LEASE, 10) == []  # delivered: never taken again


async def test_finishing_an_answered_entry_again_writes_nothing_again(store: Store) -> None:
    # What finish_turn's retry after a commit whose acknowledgement was lost amounts to.
    entry = await accepted(store, incoming("m1"))
    conv = await begin(store, entry)
    args = (
        conv.id,
        "T1",
        [assistant("once")],
        StateChange(warnings=1),
        [decision("HOLD_WARN", 1)],
        [usage(5, 5)],
    )
    first = await store.finish_turn(*args, outcome=(entry.hold, answer("once")))
    again = await store.finish_turn(*args, outcome=(entry.hold, answer("twice?")))
    assert again == first
    assert [m.role for m in await store.history(conv.id, "T1")] == ["user", "assistant"]
    assert len(await store.list_decisions("slack", "T1")) == 1
    assert (await store.usage_totals("slack", "T1"))["calls"] == 1
    stored = await store.get_entry(entry.id)
    assert stored is not None and stored.result == answer("once")


async def test_a_hold_taken_over_changes_nothing(store: Store, clock: Clock) -> None:
    entry = await accepted(store, incoming("m1"))
    stale = entry.hold
    clock.advance(LEASE + 1)
    [taken] = await store.take_expired("p2", LEASE, 10)
    assert (taken.id, taken.owner, taken.attempts, taken.state) == (entry.id, "p2", 2, InboxState.RECEIVED)
    # The stale holder's begin_turn raises and writes nothing: no conversation, no claimed key.
    with pytest.raises(LeaseLost):
        await begin(store, entry, stale)
    assert await store.find_conversation(T) is None
    conv = await begin(store, entry, taken.hold)  # the key is still free for the new holder
    assert conv.user_turns == 1
    # The stale holder's finish_turn raises and writes nothing either.
    with pytest.raises(LeaseLost):
        await store.finish_turn(
            conv.id,
            "T1",
            [assistant("stale")],
            StateChange(end_reason="abuse"),
            [decision("END")],
            [usage(1, 1)],
            outcome=(stale, answer("stale")),
        )
    assert await store.find_conversation(T) == conv
    assert len(await store.history(conv.id, "T1")) == 1
    assert await store.list_decisions("slack", "T1") == []
    assert (await store.usage_totals("slack", "T1"))["calls"] == 0
    assert not await store.record_reply_ref(stale, "ts-stale")
    assert not await store.complete(stale, InboxState.FAILED, answer("stale"))
    assert not await store.mark_delivered(stale)
    with pytest.raises(LeaseLost):
        await store.resume_turn(T, stale)
    now = await store.get_entry(entry.id)
    assert now is not None and now == dataclasses.replace(taken, state=InboxState.ANSWERING)
    # The new holder can do all of it.
    assert await store.record_reply_ref(taken.hold, "ts-1")
    await store.finish_turn(conv.id, "T1", [assistant("hi")], StateChange(), outcome=(taken.hold, answer()))
    assert await store.mark_delivered(taken.hold)
    done = await store.get_entry(entry.id)
    assert done is not None and (done.state, done.reply_ref, done.delivered) == (
        InboxState.ANSWERED,
        "ts-1",
        True,
    )
    # A hold naming an entry that does not exist holds nothing.
    for bogus in (InboxHold("999999", "p2"), InboxHold("x", "p2")):
        assert not await store.mark_delivered(bogus)
        with pytest.raises(LeaseLost):
            await store.resume_turn(T, bogus)


async def test_begin_turn_with_nothing_to_store_leaves_the_entry_for_complete(store: Store) -> None:
    entry = await accepted(store, incoming("m1", key="k1"))
    assert await store.claim_event("slack", "T1", "k1")  # e.g. handled by a path without the inbox
    began = await store.begin_turn(T, "k1", user("hello", "m1"), create=True, hold=entry.hold)
    assert began.duplicate and not began.stored
    same = await store.get_entry(entry.id)
    assert same is not None and same.state is InboxState.RECEIVED
    result = TurnResult(TurnStatus.DUPLICATE)
    assert await store.complete(entry.hold, InboxState.ANSWERED, result)
    done = await store.get_entry(entry.id)
    assert done is not None and (done.state, done.result) == (InboxState.ANSWERED, result)
    failed = await accepted(store, incoming("m2"))
    note = TurnResult(TurnStatus.ERROR, error="model_outage")
    assert await store.complete(failed.hold, InboxState.FAILED, note)
    stored = await store.get_entry(failed.id)
    assert stored is not None and (stored.state, stored.result) == (InboxState.FAILED, note)
    for not_an_outcome in (InboxState.RECEIVED, InboxState.ANSWERING):
        with pytest.raises(ValueError):
            await store.complete(failed.hold, not_an_outcome, note)
    stored_again = await store.get_entry(failed.id)
    assert stored_again == stored


async def test_take_expired_takes_lapsed_leases_oldest_first(store: Store, clock: Clock) -> None:
    thread_b = dataclasses.replace(T, thread="2.0")
    first = await accepted(store, incoming("m1"))
    clock.advance(1)
    second = await accepted(store, incoming("m2", thread_b))
    clock.advance(1)
    third = await accepted(store, incoming("m3", key="k3"))
    assert await store.take_expired("p2", LEASE, 10) == []  # every lease still runs
    clock.advance(LEASE - 2)  # the first lease ends now exactly: it is due
    assert [e.id for e in await store.take_expired("p2", LEASE, 10)] == [first.id]
    clock.advance(2)
    taken = await store.take_expired("p2", LEASE, 1)
    assert [(e.id, e.owner, e.attempts) for e in taken] == [(second.id, "p2", 2)]
    # Only the thread asked for.
    assert [e.id for e in await store.take_expired("p3", LEASE, 10, thread_b)] == []
    assert [e.id for e in await store.take_expired("p3", LEASE, 10, T)] == [third.id]
    # Taken again once the new holder's lease ran out too: attempts count every taking.
    clock.advance(LEASE + 1)
    again = await store.take_expired("p4", LEASE, 10)
    assert [(e.id, e.attempts) for e in again] == [(first.id, 3), (second.id, 3), (third.id, 3)]
    assert all(e.owner == "p4" for e in again)
    assert await store.take_expired("p5", LEASE, 0) == []


async def test_renew_extends_only_the_leases_still_held(store: Store, clock: Clock) -> None:
    one = await accepted(store, incoming("m1"))
    two = await accepted(store, incoming("m2"))
    theirs = await accepted(store, incoming("m3"), owner="p9")
    clock.advance(LEASE - 5)
    held = await store.renew("p1", [one.id, two.id, theirs.id, "nonsense", "123456"], LEASE)
    assert held == {one.id, two.id}
    clock.advance(10)  # past the first leases, within the renewed ones
    assert [e.id for e in await store.take_expired("p2", LEASE, 10)] == [theirs.id]
    assert await store.mark_delivered(two.hold)
    assert await store.renew("p1", [one.id, two.id], LEASE) == {one.id}  # a delivered entry is finished
    clock.advance(LEASE + 1)
    assert [e.id for e in await store.take_expired("p2", LEASE, 10)] == [one.id, theirs.id]
    assert await store.renew("p1", [one.id], LEASE) == set()
    assert await store.renew("p1", [], LEASE) == set()


async def test_release_lets_another_process_take_over_at_once(store: Store) -> None:
    mine = [await accepted(store, incoming(f"m{n}")) for n in range(3)]
    theirs = await accepted(store, incoming("m9"), owner="p9")
    assert await store.mark_delivered(mine[2].hold)
    assert await store.release("p1") == 2  # the delivered one is finished
    taken = await store.take_expired("p2", LEASE, 10)
    assert [e.id for e in taken] == [mine[0].id, mine[1].id]
    assert theirs.id not in {e.id for e in taken}
    assert await store.release("p1") == 0


async def test_pending_counts_entries_not_yet_delivered(store: Store) -> None:
    assert await store.pending() == 0
    entries = [
        await accepted(store, incoming(f"m{n}", thread))
        for n, thread in enumerate([T, OTHER_WORKSPACE, OTHER_PLATFORM])
    ]
    assert await store.pending() == 3
    assert await store.complete(entries[0].hold, InboxState.FAILED, TurnResult(TurnStatus.ERROR))
    assert await store.pending() == 3  # failed with a note, but the note is not out yet
    assert await store.mark_delivered(entries[0].hold)
    assert await store.mark_delivered(entries[1].hold)
    assert await store.pending() == 1


async def test_resume_turn_returns_the_stored_message_and_its_history(store: Store, clock: Clock) -> None:
    await store.save_settings(WorkspaceSettings("slack", "T1", alert_channel="C7"))
    first = await accepted(store, incoming("m1"))
    conv = await begin(store, first)  # ... and the holder crashed
    clock.advance(LEASE + 1)
    [taken] = await store.take_expired("p2", LEASE, 10)
    assert taken.state is InboxState.ANSWERING
    # A later message of the thread was stored in the meantime (the lock is gone with the holder).
    await say(store, "later", "k-later")
    resumed = await store.resume_turn(T, taken.hold)
    assert resumed.stored and not resumed.duplicate
    assert resumed.conversation is not None and resumed.conversation.id == conv.id
    assert resumed.conversation.user_turns == 2
    assert resumed.settings == WorkspaceSettings("slack", "T1", alert_channel="C7")
    assert [(m.role, m.platform_message_id) for m in resumed.history] == [("user", "m1")]
    assert len(await store.history(conv.id, "T1")) == 2  # nothing appended
    # The resumed turn finishes under the new hold.
    await store.finish_turn(conv.id, "T1", [assistant("hi")], StateChange(), outcome=(taken.hold, answer()))
    done = await store.get_entry(first.id)
    assert done is not None and done.state is InboxState.ANSWERED
    # An ended conversation is returned, with nothing to resume.
    second = await accepted(store, incoming("m2", origin=Origin.THREAD_REPLY))
    await begin(store, second)
    ended = await store.finish_turn(conv.id, "T1", [], StateChange(end_reason="abuse"))
    gone = await store.resume_turn(T, second.hold)
    assert (gone.stored, gone.conversation) == (False, ended)


async def test_two_processes_never_take_the_same_entry(backend: Backend, clock: Clock) -> None:
    one, two = backend.open(), backend.open()
    ids = [
        (await accepted(one, incoming(f"m{n}", dataclasses.replace(T, thread=f"{n % 4}.0")))).id
        for n in range(24)
    ]
    clock.advance(LEASE + 1)
    taken: list[InboxEntry] = []
    for _ in range(12):
        rounds = await asyncio.gather(
            *(s.take_expired(f"taker-{i}", LEASE, 3) for i, s in enumerate([one, two, one, two]))
        )
        taken += [e for r in rounds for e in r]
    assert sorted(int(e.id) for e in taken) == sorted(int(i) for i in ids)  # each once, none twice
    assert all(e.attempts == 2 for e in taken)
    for e in taken:
        stored = await one.get_entry(e.id)
        assert stored is not None and stored.owner == e.owner


async def test_take_expired_takes_only_the_platforms_asked_for(store: Store, clock: Clock) -> None:
    slack = await accepted(store, incoming("m1"))
    discord = await accepted(store, incoming("m2", OTHER_PLATFORM))
    clock.advance(LEASE + 1)
    assert await store.take_expired("p2", LEASE, 10, platforms=()) == []  # no adapter: takes nothing
    assert [e.id for e in await store.take_expired("p2", LEASE, 10, platforms=["discord"])] == [discord.id]
    assert await store.take_expired("p3", LEASE, 10, platforms={"discord"}) == []  # held by p2 now
    assert [e.id for e in await store.take_expired("p3", LEASE, 10, platforms=("slack", "x"))] == [slack.id]


async def test_take_earlier_takes_the_threads_older_unfinished_entries_whoever_holds_them(
    store: Store, clock: Clock
) -> None:
    thread_b = dataclasses.replace(T, thread="2.0")
    first = await accepted(store, incoming("m1"), owner="p1")
    other_thread = await accepted(store, incoming("m2", thread_b), owner="p1")
    other_platform = await accepted(store, incoming("m3", OTHER_PLATFORM), owner="p1")
    delivered = await accepted(store, incoming("m4"), owner="p1")
    assert await store.mark_delivered(delivered.hold)
    second = await accepted(store, incoming("m5"), owner="p9")
    mine = await accepted(store, incoming("m6"), owner="p2")
    later = await accepted(store, incoming("m7"), owner="p1")
    clock.advance(1)  # every lease still runs: a live holder's entries are taken all the same
    taken = await store.take_earlier(mine, "p2", LEASE, 1)
    assert [(e.id, e.owner, e.attempts) for e in taken] == [(first.id, "p2", 2)]  # oldest first, limit
    # Whoever holds them: the taker's own (an earlier taking, its own live entry) count too.
    taken = await store.take_earlier(mine, "p2", LEASE, 10)
    assert [(e.id, e.owner, e.attempts) for e in taken] == [(first.id, "p2", 3), (second.id, "p2", 2)]
    assert await store.take_earlier(first, "p2", LEASE, 10) == []  # nothing before the first
    assert await store.take_earlier(mine, "p2", LEASE, 0) == []
    # The old holders' changes change nothing now; the new holder's do.
    assert not await store.record_reply_ref(first.hold, "r1")
    assert not await store.mark_delivered(second.hold)
    assert await store.renew("p1", [first.id, other_thread.id, later.id], LEASE) == {
        other_thread.id,
        later.id,
    }
    assert await store.mark_delivered(taken[0].hold)
    assert [e.id for e in await store.take_earlier(mine, "p2", LEASE, 10)] == [second.id]  # unfinished only
    for untouched in (other_thread, other_platform, later):
        stored = await store.get_entry(untouched.id)
        assert stored is not None and (stored.owner, stored.attempts) == ("p1", 1)
    # Its lease is the taker's now: recovery elsewhere leaves it to the taker while that lease runs.
    clock.advance(LEASE - 2)
    assert second.id not in {e.id for e in await store.take_expired("p3", LEASE, 10)}


async def test_forget_user_blanks_the_inbox_copies_of_their_answered_messages_only(store: Store) -> None:
    notes = Attachment("F1", "notes.txt", "text/plain", "https://files.slack.com/files-pri/T1-F1/n.txt", 9)
    with_file = dataclasses.replace(incoming("i1", text="my private words"), attachments=(notes,))
    mine = await accepted(store, with_file)  # by U1, workspace T1
    waiting = await accepted(store, incoming("i2", text="still waiting for its answer"))
    colleague = dataclasses.replace(incoming("i3", text="a colleague's words"), author=Author("U2", "u2"))
    theirs = await accepted(store, colleague)
    elsewhere = await accepted(store, incoming("i4", OTHER_WORKSPACE, text="kept in T2"))
    for entry in (mine, theirs, elsewhere):
        assert await store.mark_delivered(entry.hold)

    at = datetime(2030, 1, 2, tzinfo=UTC)
    request = AuditRecord("slack", "T1", "U1", None, "user.forget", "own-messages", None, None, at)
    await store.forget_user("slack", "T1", "U1", request)

    async def stored(entry: InboxEntry) -> IncomingMessage:
        found = await store.get_entry(entry.id)
        assert found is not None
        return found.message

    blank = await stored(mine)
    assert (blank.text, blank.author.name, blank.author.id, blank.attachments) == ("", "U1", "U1", ())
    assert blank.effective_dedupe_key == mine.message.effective_dedupe_key  # still a duplicate record
    # Not yet answered: kept until it is; someone else's and another workspace's: kept.
    assert (await stored(waiting)).text == "still waiting for its answer"
    assert (await stored(theirs)).text == "a colleague's words"
    assert (await stored(elsewhere)).text == "kept in T2"
