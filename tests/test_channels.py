"""The channel allow-list and deny-list: the pure rule (``bot.channels``), the admin setting that sets the
lists, and the engine's gate (in memory: ``fakes.MemoryStore`` and a scripted model)."""

from __future__ import annotations

import pytest

from bot.admin import Admin, BadSetting, NotAllowed
from bot.channels import Told, elsewhere_note, may_answer_in
from bot.engine import Engine
from bot.notices import PlatformHints
from bot.presentation import PrivateNotice, Reply, render
from bot.types import Accepted, Author, IncomingMessage, Origin, ThreadRef, TurnResult, TurnStatus
from bot.types import WorkspaceSettings as WS
from fakes import MemoryStore, RecordingRenderer, ScriptedModel

ALICE = Author("U1", "Alice")
BOB = Author("U2", "Bob")
ADMIN = Author("U9", "Admin", is_platform_admin=True)
HINTS = PlatformHints(new_conversation="say hello", fork="pick a message")


# -- the rule --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "denied", "channel", "direct", "answers"),
    [
        # No lists: everywhere.
        ((), (), "C1", False, True),
        # An allow-list names the only channels.
        (("C1", "C2"), (), "C1", False, True),
        (("C1", "C2"), (), "C3", False, False),
        # A deny-list alone: everywhere but there.
        ((), ("C3",), "C3", False, False),
        ((), ("C3",), "C1", False, True),
        # Deny wins over allow.
        (("C1", "C3"), ("C3",), "C3", False, False),
        (("C1", "C3"), ("C3",), "C1", False, True),
        # Direct messages are always answered, whatever the lists say.
        (("C1",), (), "D7", True, True),
        ((), ("D7",), "D7", True, True),
        (("C1",), ("C1",), "D7", True, True),
        # Ids are opaque: compared exactly.
        (("C1",), (), "c1", False, False),
    ],
)
def test_where_haven_answers(
    allowed: tuple[str, ...], denied: tuple[str, ...], channel: str, direct: bool, answers: bool
) -> None:
    settings = WS("slack", "T1", allowed_channels=allowed, denied_channels=denied)
    assert may_answer_in(settings, channel, direct=direct) is answers


def test_the_note_names_where_haven_answers() -> None:
    note = elsewhere_note(WS("slack", "T1", allowed_channels=("C1", "C2", "C3"), denied_channels=("C3",)))
    assert "<#C1> and <#C2>" in note and "<#C3>" not in note and "direct message" in note
    assert "other channels" in elsewhere_note(WS("slack", "T1", denied_channels=("C3",)))
    nowhere = elsewhere_note(WS("slack", "T1", allowed_channels=("C3",), denied_channels=("C3",)))
    assert "no channel" in nowhere and "direct message" in nowhere
    many = elsewhere_note(WS("slack", "T1", allowed_channels=tuple(f"C{i}" for i in range(13))))
    assert "<#C9>" in many and "<#C10>" not in many and "3 more channels" in many


def test_told_is_once_per_key_and_bounded() -> None:
    told = Told(limit=2)
    assert told.first("a") and not told.first("a")
    assert told.first("b") and told.first("c")  # "a" is now the oldest and is forgotten
    assert told.first("a") and not told.first("c")


# -- the admin setting ---------------------------------------------------------------------------------


async def test_admins_set_the_lists_from_ids_or_mentions_and_each_change_is_audited() -> None:
    store = MemoryStore()
    admin = Admin(store)
    s = await admin.change(ADMIN, "slack", "T1", "allow-channels", "<#C1|help>, C2 <#C1>")
    assert s.allowed_channels == ("C1", "C2")
    s = await admin.change(ADMIN, "discord", "G1", "deny-channels", "<#123> <#456>")
    assert s.denied_channels == ("123", "456")
    s = await admin.change(ADMIN, "slack", "T1", "allow-channels", "none")
    assert s.allowed_channels == ()
    audit = await store.list_admin_audit("slack", "T1")
    assert [(a.setting, a.old, a.new) for a in audit] == [
        ("allow-channels", ["C1", "C2"], []),
        ("allow-channels", [], ["C1", "C2"]),
    ]
    assert audit[0].actor_id == ADMIN.id
    with pytest.raises(BadSetting, match="not a channel id"):
        await admin.change(ADMIN, "slack", "T1", "deny-channels", "C1 #general!")
    with pytest.raises(NotAllowed):
        await admin.change(ALICE, "slack", "T1", "deny-channels", "C1")
    assert (await store.get_settings("slack", "T1")).denied_channels == ()


# -- the engine's gate ---------------------------------------------------------------------------------


class Chat:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.renderer = RecordingRenderer()

    async def say(
        self,
        n: int,
        text: str,
        *,
        channel: str = "C1",
        author: Author = ALICE,
        origin: Origin = Origin.MENTION,
        thread: str | None = None,
        in_dm: bool = False,
    ) -> TurnResult:
        self.renderer.clear()
        ref = ThreadRef("slack", "T1", channel, thread or f"{n}.0")
        msg = IncomingMessage(ref, author, text, f"{n}.0", origin, in_dm=in_dm)

        async def deliver(result: TurnResult) -> None:
            await render(self.renderer, result, user_id=author.id, hints=HINTS)

        return await self.engine.handle_message(msg, None, deliver)


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def model() -> ScriptedModel:
    return ScriptedModel(default="Happy to help.")


@pytest.fixture
def chat(store: MemoryStore, model: ScriptedModel) -> Chat:
    return Chat(Engine(store, model))


async def restrict(store: MemoryStore, allowed: tuple[str, ...] = (), denied: tuple[str, ...] = ()) -> None:
    await store.save_settings(WS("slack", "T1", allowed_channels=allowed, denied_channels=denied))


async def test_outside_the_list_one_private_note_per_person_and_channel_and_nothing_stored(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    await restrict(store, allowed=("C-HELP", "C-ASK"))
    first = await chat.say(1, "hello", channel="C-RANDOM")
    assert first.status is TurnStatus.IGNORED
    [note] = chat.renderer.items
    assert isinstance(note, PrivateNotice) and note.user_id == ALICE.id
    assert "<#C-HELP> and <#C-ASK>" in note.text
    # Told once: the same person in the same channel gets silence after that.
    again = await chat.say(2, "hello??", channel="C-RANDOM")
    assert again.status is TurnStatus.IGNORED and chat.renderer.items == []
    # Another person there, or the same person in another denied channel, is told once too.
    await chat.say(3, "hi", channel="C-RANDOM", author=BOB)
    assert [type(i) for i in chat.renderer.items] == [PrivateNotice]
    await chat.say(4, "hi", channel="C-OTHER")
    assert [type(i) for i in chat.renderer.items] == [PrivateNotice]
    # No model call, no conversation, nothing billed.
    assert model.requests == []
    for n in range(1, 5):
        for channel in ("C-RANDOM", "C-OTHER"):
            assert await store.find_conversation(ThreadRef("slack", "T1", channel, f"{n}.0")) is None
    assert (await store.usage_totals("slack", "T1"))["calls"] == 0
    # In an allowed channel Haven answers as ever.
    answered = await chat.say(5, "hello", channel="C-HELP")
    assert answered.status is TurnStatus.REPLIED and chat.renderer.items == [Reply("Happy to help.")]


async def test_deny_wins_and_direct_messages_are_always_answered(chat: Chat, store: MemoryStore) -> None:
    await restrict(store, allowed=("C1",), denied=("C1", "D7"))
    denied = await chat.say(1, "hello", channel="C1")
    assert denied.status is TurnStatus.IGNORED and len(denied.replies) == 1
    dm = await chat.say(2, "hello", channel="D7", origin=Origin.DIRECT)
    assert dm.status is TurnStatus.REPLIED
    # A reply in a DM thread (not the DM's first message) is a DM too.
    reply = await chat.say(3, "more", channel="D7", origin=Origin.THREAD_REPLY, thread="2.0", in_dm=True)
    assert reply.status is TurnStatus.REPLIED


async def test_a_conversation_whose_channel_is_denied_later_stops_with_the_note(
    chat: Chat, store: MemoryStore, model: ScriptedModel
) -> None:
    started = await chat.say(1, "hello", channel="C1")
    assert started.status is TurnStatus.REPLIED
    await restrict(store, denied=("C1",))
    follow_up = await chat.say(2, "still there?", channel="C1", origin=Origin.THREAD_REPLY, thread="1.0")
    assert follow_up.status is TurnStatus.IGNORED
    [note] = chat.renderer.items
    assert isinstance(note, PrivateNotice) and "other channels" in note.text
    await chat.say(3, "hello?", channel="C1", origin=Origin.THREAD_REPLY, thread="1.0")
    assert chat.renderer.items == []
    conv = await store.find_conversation(ThreadRef("slack", "T1", "C1", "1.0"))
    assert conv is not None and conv.user_turns == 1  # the later messages were not stored
    assert len(model.requests) == 1
    # Allowed again, the conversation continues where it was.
    await restrict(store)
    resumed = await chat.say(4, "back", channel="C1", origin=Origin.THREAD_REPLY, thread="1.0")
    assert resumed.status is TurnStatus.REPLIED and len(model.requests) == 2


async def test_people_talking_in_threads_that_are_not_havens_are_told_nothing(
    chat: Chat, store: MemoryStore
) -> None:
    await restrict(store, denied=("C1",))
    chatter = await chat.say(1, "lunch?", channel="C1", origin=Origin.THREAD_REPLY, thread="77.0")
    assert chatter.status is TurnStatus.IGNORED and chatter.replies == () and chat.renderer.items == []
    # Not counted as told either: addressing Haven there later gets the note.
    mention = await chat.say(2, "hello", channel="C1")
    assert len(mention.replies) == 1


async def test_accept_records_nothing_outside_the_list(store: MemoryStore, model: ScriptedModel) -> None:
    engine = Engine(store, model, inbox=store)
    await restrict(store, denied=("C1",))
    msg = IncomingMessage(ThreadRef("slack", "T1", "C1", "1.0"), ALICE, "hello", "1.0", Origin.MENTION)
    assert await engine.accept(msg) == (Accepted.ELSEWHERE, None)
    assert await store.pending() == 0
    gated = await engine.gate(msg)
    assert gated is not None and gated.status is TurnStatus.IGNORED and len(gated.replies) == 1
    # Elsewhere the inbox takes the message as before.
    elsewhere = IncomingMessage(ThreadRef("slack", "T1", "C2", "2.0"), ALICE, "hello", "2.0", Origin.MENTION)
    assert await engine.gate(elsewhere) is None
    accepted, entry = await engine.accept(elsewhere)
    assert accepted is Accepted.NEW and entry is not None
    await engine.aclose()


async def test_a_command_is_told_where_haven_answers_every_time(
    store: MemoryStore, model: ScriptedModel
) -> None:
    engine = Engine(store, model)
    assert await engine.not_here("slack", "T1", "C1") is None
    await restrict(store, allowed=("C2",))
    for _ in range(2):
        note = await engine.not_here("slack", "T1", "C1")
        assert note is not None and "<#C2>" in note
    assert await engine.not_here("slack", "T1", "C2") is None
