"""Slack Web API calls per user turn: the real Bolt ``AsyncApp``, the mock Web API, the scripted model.

Used by ``bench/run.py``; runs alone too::

    .venv/bin/python bench/slack_calls.py --turns 20

One conversation of ``turns`` turns (a mention, then thread replies) in three settings: long replies
(~900 characters, so they stream) where the workspace can stream, the same where it cannot (one post
updated while the model writes), and short replies. It counts what the app asked Slack for, per user
turn: new messages posted, updates, streaming calls, "thinking" statuses, and history reads
(``conversations.history`` / ``conversations.replies``), which must stay at zero: the history lives in
Haven's database.

First visible feedback: ``turns`` messages in a channel thread, as many direct messages, and ten new
channel threads mentioned at the same moment, the model taking 1.5 s to its first token. Measured from
the event's dispatch to the first call that shows something in that thread (the thinking status, a post
or a stream's start), as the mock Slack received it; and to the reply's first words (the post or the
stream's start).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import build_app
from bench.common import median, pct
from fakes.fake_anthropic import FakeAnthropic, delay, text
from fakes.harness import make_settings, services_for
from fakes.mock_slack import HISTORY_METHODS, STREAM_METHODS, Call, MockSlack
from fakes.slack_harness import ALICE, BOB, BOT_TOKEN, CHANNEL, DM, SIGNING_SECRET, SlackHarness, verdict

LONG = "\n\n".join(
    f"**{i}.** Here is a careful, reasonably detailed part of the answer, with `code` and a few "
    f"practical suggestions that make it longer than a quick reply would be (part {i})."
    for i in range(1, 6)
)
SHORT = "Sure — here is a short answer."
# The model's time to first token for the first-feedback rows; the target is Slack's feel of "at once".
TIME_TO_FIRST_TOKEN = 1.5
FEEDBACK_TARGET_MS = 300.0
PARALLEL = 10  # threads started at the same moment for the loaded first-feedback row
STATUS = "assistant.threads.setStatus"


class Reporter(Protocol):
    def add(
        self, benchmark: str, setting: str, result: str, target: str = "", ok: bool | None = None
    ) -> None: ...


@dataclass
class Calls:
    turns: int
    posts: int
    updates: int
    stream: int
    statuses: int
    history: int
    streamed_turns: int
    exact: bool

    def per_turn(self, n: int) -> float:
        return n / self.turns


async def conversation(tmp: Path, turns: int, *, reply: str, can_stream: bool, tag: str) -> Calls:
    async with MockSlack() as slack, FakeAnthropic(default=text(reply)) as anthropic:
        anthropic.responder = verdict
        slack.add_user(ALICE, "alice")
        slack.add_user(BOB, "bob")
        if not can_stream:
            slack.refuse_streaming("unknown_method")
        settings = make_settings(f"sqlite:///{tmp}/slack_calls_{tag}.db", anthropic.url)
        async with services_for(settings) as services:
            client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
            app = build_app(services, client, signing_secret=SIGNING_SECRET, process_before_response=True)
            h = SlackHarness(app, slack, anthropic, services)
            root = h.ts()
            await h.mention("Question 0: how should I plan the release?", ts=root)
            for n in range(1, turns):
                await h.reply(
                    f"Question {n}: and what about the next step?", thread_ts=root, user=(ALICE, BOB)[n % 2]
                )
            shown = slack.thread(CHANNEL, root)
            # Streamed or posted, a reply is the model's Markdown as written (Slack renders it).
            exact = len(shown) == turns and all(m["text"] == reply for m in shown)
            return Calls(
                turns=turns,
                posts=slack.count("chat.postMessage"),
                updates=slack.count("chat.update"),
                stream=sum(slack.count(m) for m in STREAM_METHODS),
                statuses=slack.count(STATUS),
                history=sum(slack.count(m) for m in HISTORY_METHODS),
                streamed_turns=slack.count("chat.startStream") - (0 if can_stream else 1),
                exact=exact,
            )


async def slack_calls(report: Reporter, tmp: Path, turns: int) -> None:
    settings: list[tuple[str, str, bool, Callable[[Calls], bool]]] = [
        (
            "long replies (~900 chars), streaming",
            LONG,
            True,
            lambda c: c.posts == 0 and c.streamed_turns == c.turns and c.stream <= 3 * c.turns and c.exact,
        ),
        (
            "long replies, workspace cannot stream",
            LONG,
            False,
            lambda c: c.posts == c.turns and c.updates <= 3 * c.turns and c.exact,
        ),
        (
            "short replies",
            SHORT,
            True,
            lambda c: c.posts == c.turns and c.updates == 0 and c.stream == 0 and c.exact,
        ),
    ]
    for i, (label, reply, can_stream, shape_ok) in enumerate(settings):
        c = await conversation(tmp, turns, reply=reply, can_stream=can_stream, tag=str(i))
        result = (
            f"posts {c.per_turn(c.posts):.2f}, updates {c.per_turn(c.updates):.2f}, "
            f"stream calls {c.per_turn(c.stream):.2f} (streamed replies {c.streamed_turns}/{c.turns}), "
            f"thinking statuses {c.per_turn(c.statuses):.2f}, history reads {c.per_turn(c.history):.2f}"
        )
        report.add(
            "Slack calls per user turn",
            f"{turns}-turn conversation, {label}",
            result,
            "0 history reads; one post or one stream (≤ 3 stream calls) per reply",
            c.history == 0 and shape_ok(c),
        )
    await first_feedback(report, tmp, turns)


@dataclass
class Feedback:
    first: list[float]  # ms from the event to the first visible call in its thread
    words: list[float]  # ms from the event to the reply's first words
    leftovers: int  # messages beyond the one reply per turn (a placeholder left behind)


async def feedback(tmp: Path, turns: int, *, where: str) -> Feedback:
    """``turns`` messages with the model taking ``TIME_TO_FIRST_TOKEN`` to start: one after the other in
    one channel thread (``thread``) or as direct messages (``dm``), or ``turns`` new channel threads
    mentioned all at once (``parallel``)."""
    async with (
        MockSlack() as slack,
        FakeAnthropic(default=delay(TIME_TO_FIRST_TOKEN, text(LONG))) as anthropic,
    ):
        anthropic.responder = verdict
        slack.add_user(ALICE, "alice")
        settings = make_settings(f"sqlite:///{tmp}/feedback_{where}.db", anthropic.url)
        async with services_for(settings) as services:
            client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
            app = build_app(services, client, signing_secret=SIGNING_SECRET, process_before_response=True)
            h = SlackHarness(app, slack, anthropic, services)
            out = Feedback([], [], 0)
            if where == "parallel":
                roots = [h.ts() for _ in range(turns)]
                t0 = time.monotonic()
                await asyncio.gather(*(h.mention(f"Question about {r}?", ts=r) for r in roots))
                for r in roots:
                    _measure(out, slack.calls, CHANNEL, r, t0)
                    out.leftovers += len(slack.thread(CHANNEL, r)) - 1
                return out
            root = h.ts()
            for n in range(turns):
                ts = root if n == 0 else h.ts()
                before = len(slack.calls)
                t0 = time.monotonic()
                if where == "dm":
                    await h.event(h.message(f"Question {n}?", ts=ts, channel=DM, channel_type="im"))
                    _measure(out, slack.calls[before:], DM, ts, t0)
                    out.leftovers += len(slack.thread(DM, ts)) - 1
                    continue
                if n == 0:
                    await h.mention("Question 0: how should I plan the release?", ts=root)
                else:
                    await h.reply(f"Question {n}: and then?", thread_ts=root, ts=ts)
                _measure(out, slack.calls[before:], CHANNEL, root, t0)
            if where == "thread":
                out.leftovers += len(slack.thread(CHANNEL, root)) - turns
            return out


def _measure(out: Feedback, calls: Sequence[Call], channel: str, thread: str, t0: float) -> None:
    """When the thread first showed something, and the reply's first words, in ms after ``t0``."""
    mine = [
        c
        for c in calls
        if str(c.args.get("channel") or c.args.get("channel_id")) == channel
        and str(c.args.get("thread_ts")) == thread
    ]
    shown = [c.at for c in mine if c.method in (STATUS, "chat.postMessage", "chat.startStream")]
    said = [c.at for c in mine if c.method in ("chat.postMessage", "chat.startStream")]
    out.first.append((min(shown) - t0) * 1000 if shown else float("inf"))
    out.words.append((min(said) - t0) * 1000 if said else float("inf"))


async def first_feedback(report: Reporter, tmp: Path, turns: int) -> None:
    settings = (
        ("thread", f"{turns} messages, channel thread"),
        ("dm", f"{turns} messages, direct message"),
        ("parallel", f"{PARALLEL} new channel threads at once"),
    )
    for where, label in settings:
        f = await feedback(tmp, PARALLEL if where == "parallel" else turns, where=where)
        p50, p95 = median(f.first), pct(f.first, 95)
        report.add(
            "first visible feedback",
            f"{label}, model time to first token {TIME_TO_FIRST_TOKEN:.1f} s",
            f'p50 {p50:.0f} ms, p95 {p95:.0f} ms ("is thinking…" status); reply\'s first words p50 '
            f"{median(f.words):.0f} ms; messages left behind {f.leftovers}",
            f"p95 ≤ {FEEDBACK_TARGET_MS:.0f} ms, nothing left behind",
            p95 <= FEEDBACK_TARGET_MS and f.leftovers == 0,
        )


class _Print:
    def add(
        self, benchmark: str, setting: str, result: str, target: str = "", ok: bool | None = None
    ) -> None:
        mark = "" if ok is None else (" ok" if ok else " NOT MET")
        print(f"{benchmark} [{setting}]: {result}  (target {target}){mark}")


def main(argv: list[str] | None = None) -> int:
    import argparse
    import logging

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--turns", type=int, default=20)
    args = p.parse_args(argv)
    logging.disable(logging.INFO)
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(slack_calls(_Print(), Path(tmp), args.turns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
