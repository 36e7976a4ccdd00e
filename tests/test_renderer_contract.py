"""The renderer contract: every adapter draws the same items, in the same order, to the same audience.

``bot.presentation`` decides what a turn shows; each platform's renderer only draws it. These tests run
one set of turn results through the Slack, Discord and terminal renderers, each recorded at its
adapter's narrowest seam (a stand-in for Slack's Web API client, for the Discord channel's send, for
stdout), and read the recordings back as neutral (kind, audience) entries. Before the contract the
platforms disagreed: Discord put the crisis card after the reply, posted refusals in the channel and
never told anyone that a thread had ended; the terminal repeated that reminder on every line.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import discord
import pytest

from adapters.discord import embeds
from adapters.discord.render import DiscordRenderer
from adapters.discord.stream import DiscordReplyStream
from adapters.discord.translate import MESSAGE_LIMIT as DISCORD_LIMIT
from adapters.slack import blocks as bk
from adapters.slack.api import SlackApi
from adapters.slack.render import HINTS as SLACK_HINTS
from adapters.slack.render import SlackRenderer
from adapters.slack.translate import MAX_MARKDOWN_CHARS as SLACK_MARKDOWN_LIMIT
from adapters.slack.translate import MAX_MESSAGE_CHARS as SLACK_LIMIT
from adapters.terminal import HINTS as TERMINAL_HINTS
from adapters.terminal import TerminalRenderer
from bot.notices import PlatformHints
from bot.ports import Renderer
from bot.presentation import render
from bot.types import AdminAlert, Closure, CrisisCard, EndReason, ThreadRef, TurnResult, TurnStatus

USER = "U-PERSON"
CONVERSATION = "0123456789abcdef0123456789abcdef"  # conversation ids are uuid4 hex
ALERT_CHANNEL = "C-ALERTS"
THREAD = ThreadRef("test", "W1", "C-THREAD", "1700000000.000100")
# Words that must show where they belong and never in the logs.
REPLY = "REPLY-WORDS I'm here with you."
CARD = CrisisCard("CRISIS-WORDS call or text 988")
REFUSAL = "REFUSAL-WORDS Only people taking part can end it."
FAILURE = "FAILURE-WORDS Sorry, I couldn't answer just now."
ALERT = AdminAlert(ALERT_CHANNEL, "ending", CONVERSATION, THREAD, EndReason.ABUSE.value, 2)


@dataclass(frozen=True)
class Entry:
    kind: str  # "reply" | "crisis" | "closure" | "private" | "alert"
    audience: str  # "thread" (everyone there) | "private" (the person only) | "alerts"
    text: str
    feedback: str | None = None  # the closure's feedback action: the conversation it reports on


@dataclass
class Drawn:
    renderer: Renderer
    hints: PlatformHints
    limit: int | None  # the platform's message limit; None: no limit
    read: Callable[[], list[Entry]]
    name: str = ""


# -- Slack: a stand-in for the Web API client ------------------------------------------------------------


@dataclass
class RecordingSlackClient:
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def _record(self, method: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((method, kwargs))
        return {"ok": True, "ts": f"1700000001.{len(self.calls):06d}", "permalink": "https://x/p1"}

    async def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        return await self._record("chat.postMessage", kwargs)

    async def chat_postEphemeral(self, **kwargs: Any) -> dict[str, Any]:
        return await self._record("chat.postEphemeral", kwargs)

    async def chat_getPermalink(self, **kwargs: Any) -> dict[str, Any]:
        return await self._record("chat.getPermalink", kwargs)


def slack() -> Drawn:
    client = RecordingSlackClient()
    renderer = SlackRenderer(SlackApi(client), channel=THREAD.channel, thread_ts=THREAD.thread)  # type: ignore[arg-type]

    def read() -> list[Entry]:
        out: list[Entry] = []
        for method, args in client.calls:
            blocks = args.get("blocks") or []
            if method == "chat.postEphemeral":
                assert args["user"] == USER
                out.append(Entry("private", "private", args["text"]))
            elif method == "chat.postMessage" and args["channel"] == ALERT_CHANNEL:
                out.append(Entry("alert", "alerts", args["text"]))
            elif method == "chat.postMessage":
                assert args["channel"] == THREAD.channel and args["thread_ts"] == THREAD.thread
                buttons = [e for b in blocks for e in b.get("elements") or [] if b["type"] == "actions"]
                if buttons:
                    [button] = buttons
                    assert button["action_id"] == bk.ACTION_MISTAKE
                    out.append(Entry("closure", "thread", args["text"], feedback=button["value"]))
                elif blocks and blocks[0]["type"] == "header":
                    out.append(Entry("crisis", "thread", args["text"]))
                else:
                    # Replies go as the model's Markdown (markdown_text, no text); failure notes as text.
                    out.append(Entry("reply", "thread", args.get("markdown_text") or args["text"]))
        return out

    return Drawn(renderer, SLACK_HINTS, SLACK_MARKDOWN_LIMIT, read)


# -- Discord: a stand-in for the channel's send ----------------------------------------------------


class _Sent:
    """What discord.py's send returns, as far as a reply stream uses it."""

    def __init__(self, content: str | None) -> None:
        self.content = content


def discord_() -> Drawn:
    sends: list[tuple[str, dict[str, Any]]] = []
    target = object()  # a Messageable; only handed back to the stand-in below
    private_target = "private"

    async def send(
        where: Any,
        *,
        nonce: str,
        content: str | None = None,
        embed: discord.Embed | None = None,
        view: discord.ui.View | None = None,
    ) -> Any:
        assert where is target
        sends.append(("thread", {"content": content, "embed": embed, "view": view, "nonce": nonce}))
        return _Sent(content)

    async def private(text: str) -> None:  # an interaction's ephemeral follow-up
        sends.append((private_target, {"content": text}))

    async def alert(a: AdminAlert) -> None:
        sends.append(("alerts", {"content": embeds.alert_text(a)}))

    stream = DiscordReplyStream(send, target, source="m1")  # type: ignore[arg-type]
    renderer = DiscordRenderer(send, target, stream, source="m1", alert=alert, private=private)  # type: ignore[arg-type]

    def read() -> list[Entry]:
        out: list[Entry] = []
        for where, args in sends:
            if where == private_target:
                out.append(Entry("private", "private", args["content"]))
            elif where == "alerts":
                out.append(Entry("alert", "alerts", args["content"]))
            elif args.get("view") is not None:
                [button] = args["view"].children
                out.append(
                    Entry("closure", "thread", args["embed"].title, feedback=button.custom_id.split(":")[-1])
                )
            elif args.get("embed") is not None:
                out.append(Entry("crisis", "thread", args["embed"].description))
            else:
                out.append(Entry("reply", "thread", args["content"]))
        # Nonces make a retried send post once: never two sends with one nonce.
        nonces = [a["nonce"] for w, a in sends if w == "thread"]
        assert len(nonces) == len(set(nonces))
        return out

    return Drawn(renderer, embeds.GUILD_HINTS, DISCORD_LIMIT, read)


# -- terminal: a stand-in for stdout ----------------------------------------------------------------


class RecordingOut(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def terminal() -> Drawn:
    out = RecordingOut()
    renderer = TerminalRenderer(out)

    def read() -> list[Entry]:
        entries: list[Entry] = []
        for w in out.writes:
            if w.startswith("--- Crisis resources ---"):
                entries.append(Entry("crisis", "thread", w))
            elif w.startswith("*** "):
                assert "/feedback" in w
                entries.append(Entry("closure", "thread", w, feedback=CONVERSATION))
            elif w.startswith("haven: "):
                entries.append(Entry("reply", "thread", w.removeprefix("haven: ")))
            elif w.startswith("(admin alert"):
                entries.append(Entry("alert", "alerts", w))
            else:
                # A terminal has one reader: whatever is for that person alone is simply printed.
                entries.append(Entry("private", "private", w))
        return entries

    return Drawn(renderer, TERMINAL_HINTS, None, read)


PLATFORMS: dict[str, Callable[[], Drawn]] = {"slack": slack, "discord": discord_, "terminal": terminal}


@pytest.fixture(params=list(PLATFORMS))
def drawn(request: pytest.FixtureRequest) -> Drawn:
    d = PLATFORMS[request.param]()
    d.name = request.param
    return d


async def draw(d: Drawn, result: TurnResult, *, reply_shown: bool = False) -> list[Entry]:
    await render(d.renderer, result, user_id=USER, hints=d.hints, reply_shown=reply_shown)
    return d.read()


def kinds(entries: list[Entry]) -> list[tuple[str, str]]:
    return [(e.kind, e.audience) for e in entries]


# -- the same items, in the same order, everywhere ---------------------------------------------------

SCENARIOS: dict[str, tuple[TurnResult, list[tuple[str, str]]]] = {
    "reply": (
        TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,)),
        [("reply", "thread")],
    ),
    "help comes before the reply": (
        TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,), crisis=CARD),
        [("crisis", "thread"), ("reply", "thread")],
    ),
    "an ending: reply, closure with its feedback action, content-free alert": (
        TurnResult(
            TurnStatus.REPLIED,
            CONVERSATION,
            replies=(REPLY,),
            closure=Closure(CONVERSATION, EndReason.ABUSE, 2),
            alert=ALERT,
        ),
        [("reply", "thread"), ("closure", "thread"), ("alert", "alerts")],
    ),
    "the end command at risk: help before the closure": (
        TurnResult(
            TurnStatus.REPLIED,
            CONVERSATION,
            closure=Closure(CONVERSATION, EndReason.USER_COMMAND, 0, crisis=CARD),
            alert=ALERT,
        ),
        [("crisis", "thread"), ("closure", "thread"), ("alert", "alerts")],
    ),
    "a failed turn is never silent, help still first": (
        TurnResult(TurnStatus.ERROR, CONVERSATION, error=FAILURE, crisis=CARD),
        [("crisis", "thread"), ("reply", "thread")],
    ),
    "a refusal is private": (
        TurnResult(TurnStatus.IGNORED, CONVERSATION, replies=(REFUSAL,)),
        [("private", "private")],
    ),
    "an ended thread reminds once, privately": (
        TurnResult(TurnStatus.ENDED_REMINDER, CONVERSATION),
        [("private", "private")],
    ),
    "then stays silent": (TurnResult(TurnStatus.ENDED_SILENT, CONVERSATION), []),
    "a duplicate shows nothing": (TurnResult(TurnStatus.DUPLICATE), []),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_the_same_items_in_the_same_order(drawn: Drawn, scenario: str) -> None:
    result, expected = SCENARIOS[scenario]
    assert kinds(await draw(drawn, result)) == expected


async def test_the_end_command_answers_the_person_who_used_it_privately(drawn: Drawn) -> None:
    closed = TurnResult(
        TurnStatus.REPLIED,
        CONVERSATION,
        closure=Closure(CONVERSATION, EndReason.USER_COMMAND, 0),
        alert=ALERT,
    )
    for result, expected in (
        (closed, [("closure", "thread"), ("alert", "alerts"), ("private", "private")]),
        (TurnResult(TurnStatus.ENDED_SILENT, CONVERSATION), [("private", "private")]),
        (TurnResult(TurnStatus.IGNORED, CONVERSATION, replies=(REFUSAL,)), [("private", "private")]),
    ):
        d = PLATFORMS[drawn.name]()
        await render(d.renderer, result, user_id=USER, hints=d.hints, end_command=True)
        assert kinds(d.read()) == expected


async def test_a_streamed_reply_stays_first_and_help_follows_it_directly(drawn: Drawn) -> None:
    result = TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,), crisis=CARD)
    assert kinds(await draw(drawn, result, reply_shown=True)) == [("reply", "thread"), ("crisis", "thread")]


async def test_a_card_the_stream_showed_before_the_reply_is_not_drawn_again(drawn: Drawn) -> None:
    result = TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,), crisis=CARD, crisis_shown=True)
    assert kinds(await draw(drawn, result)) == [("reply", "thread")]


async def test_the_closure_reports_on_its_own_conversation(drawn: Drawn) -> None:
    result = TurnResult(TurnStatus.REPLIED, CONVERSATION, closure=Closure(CONVERSATION, EndReason.ABUSE, 2))
    [closure] = await draw(drawn, result)
    assert closure.kind == "closure" and closure.feedback == CONVERSATION


async def test_words_reach_their_place_verbatim(drawn: Drawn) -> None:
    result = TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,), crisis=CARD)
    crisis, reply = await draw(drawn, result)
    assert "CRISIS-WORDS" in crisis.text and "988" in crisis.text
    assert "REPLY-WORDS" in reply.text


async def test_private_items_never_reach_the_thread(drawn: Drawn) -> None:
    entries: list[Entry] = []
    for status, replies in ((TurnStatus.IGNORED, (REFUSAL,)), (TurnStatus.ENDED_REMINDER, ())):
        entries += await draw(PLATFORMS[drawn.name](), TurnResult(status, CONVERSATION, replies=replies))
    assert entries and all(e.audience == "private" for e in entries)
    assert any("REFUSAL-WORDS" in e.text for e in entries)
    assert any("won't reply here" in e.text for e in entries)


async def test_alerts_carry_no_conversation_content(drawn: Drawn) -> None:
    result = TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(REPLY,), crisis=CARD, alert=ALERT)
    [alert] = [e for e in await draw(drawn, result) if e.kind == "alert"]
    assert "REPLY-WORDS" not in alert.text and "CRISIS-WORDS" not in alert.text
    assert "after repeated warnings about abuse" in alert.text  # the one reason vocabulary


async def test_a_failing_model_alerts_the_admins_with_the_failure_count_and_no_words(drawn: Drawn) -> None:
    model = dataclasses.replace(ALERT, kind="model", reason="model_unavailable", failures=3)
    result = TurnResult(TurnStatus.ERROR, CONVERSATION, error=FAILURE, alert=model)
    entries = await draw(drawn, result)
    assert kinds(entries) == [("reply", "thread"), ("alert", "alerts")]
    [alert] = [e for e in entries if e.kind == "alert"]
    assert "3 turns in a row" in alert.text and "FAILURE-WORDS" not in alert.text
    assert "ended" not in alert.text  # not an ending's alert


async def test_no_words_in_the_logs(drawn: Drawn, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    long = REPLY + "\n\n" + "```python\n" + "\n".join(f"x_{i} = {i}" for i in range(900)) + "\n```"
    for result in (
        TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(long,), crisis=CARD, alert=ALERT),
        TurnResult(TurnStatus.IGNORED, CONVERSATION, replies=(REFUSAL,)),
        TurnResult(TurnStatus.ERROR, CONVERSATION, error=FAILURE),
    ):
        await draw(PLATFORMS[drawn.name](), result)  # one renderer per turn, as the adapters make them
    for record in caplog.records:
        logged = record.getMessage() + " " + " ".join(str(v) for v in record.__dict__.values())
        for words in ("REPLY-WORDS", "CRISIS-WORDS", "REFUSAL-WORDS", "FAILURE-WORDS", "x_1 = 1"):
            assert words not in logged, (record.name, record.getMessage())


async def test_long_text_is_split_at_the_platform_limit_without_breaking_a_code_block(drawn: Drawn) -> None:
    code = "\n".join(f"value_{i} = compute({i})  # step {i} of the long example" for i in range(260))
    reply = f"Here is the whole script:\n\n```python\n{code}\n```\n\nRun it once."
    assert len(reply) > 2 * SLACK_LIMIT > 2 * DISCORD_LIMIT
    parts = await draw(drawn, TurnResult(TurnStatus.REPLIED, CONVERSATION, replies=(reply,)))
    assert {p.kind for p in parts} == {"reply"}
    if drawn.limit is None:
        assert len(parts) == 1
    else:
        assert len(parts) >= len(reply) // drawn.limit
        assert all(len(p.text) <= drawn.limit for p in parts)
    for p in parts:
        assert p.text.count("```") % 2 == 0, p.text[:80]
    shown = "".join(p.text for p in parts)
    assert all(f"value_{i} = compute({i})" in shown for i in range(260)) and "Run it once." in shown


async def test_a_private_notice_without_a_private_channel_is_one_short_line() -> None:
    """Discord's gateway messages have no ephemeral answer: the notice is one line in the conversation
    (in a DM, only that person sees it anyway)."""
    sends: list[dict[str, Any]] = []
    target = object()

    async def send(where: Any, **kwargs: Any) -> Any:
        sends.append(kwargs)
        return _Sent(kwargs.get("content"))

    no_alert: Callable[[AdminAlert], Awaitable[None]] = lambda a: _never()  # noqa: E731
    stream = DiscordReplyStream(send, target, source="m2")  # type: ignore[arg-type]
    renderer = DiscordRenderer(send, target, stream, source="m2", alert=no_alert)  # type: ignore[arg-type]
    await render(renderer, TurnResult(TurnStatus.ENDED_REMINDER, "c"), user_id=USER, hints=embeds.DM_HINTS)
    [line] = sends
    assert "`/haven new` here" in line["content"] and line.get("embed") is None


async def _never() -> None:
    raise AssertionError("no alert expected")
