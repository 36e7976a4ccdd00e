"""The terminal adapter, in-process and as the real `haven chat` command with piped stdin."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from adapters.terminal import CHANNEL, PLATFORM, WORKSPACE, TerminalConnector
from bot.app import initialize
from bot.engine import Engine
from bot.ports import StorageUnavailable
from bot.types import Author, IncomingMessage, Origin, ThreadRef
from fakes.harness import make_settings

ROOT = Path(__file__).resolve().parents[1]

ABUSIVE_SCRIPT = [
    "hello there",
    "you are a stupid useless idiot",
    "shut up, you worthless moron",
    "you pathetic idiot, you are garbage",
    "hello? are you still there?",
]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/haven.db", HAVEN_LOG_LEVEL="WARNING")
    return env


def piped_chat(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``haven chat`` (the real command, no key: the rehearsal model) with the abusive script piped in."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat", *args],
        input="\n".join(ABUSIVE_SCRIPT) + "\n",
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def test_piped_chat_runs_an_abusive_script_to_an_ending(tmp_path: Path) -> None:
    proc = piped_chat(tmp_path)
    out = proc.stdout
    assert "rehearsal" in out.lower()
    assert out.count("This conversation has ended ***") == 1
    assert "ended after repeated warnings" in out
    assert out.count("if they continue, I'll end this conversation") == 2
    # After the ending, the last line is answered with the one-line reminder only.
    tail = out.split("This conversation has ended ***", 1)[1]
    assert "haven won't reply here" in tail.lower()
    assert tail.count("haven:") == 0


async def _session(tmp_path: Path, lines: list[str]) -> str:
    settings = make_settings(f"sqlite:///{tmp_path}/t.db")
    services = await initialize(settings)
    out = io.StringIO()
    try:
        term = TerminalConnector(
            services.engine, stdin=io.StringIO("\n".join(lines) + "\n"), stdout=out, user="pat"
        )
        await term.connect()
        await term.listen()
    finally:
        await services.aclose()
    return out.getvalue()


async def test_end_fork_feedback_and_history(tmp_path: Path) -> None:
    out = await _session(
        tmp_path,
        [
            "first question",
            "second question",
            "/end",
            "still there?",
            "/history",
            "/fork 2 second, rephrased",
            "/history",
            "/feedback I did not mean to close it",
            "/new",
            "fresh start",
        ],
    )
    assert "closed with the end command" in out
    assert "haven won't reply here" in out.lower()
    assert "Forked into a new conversation from your message 2." in out
    hist = out.split("Forked into a new conversation", 1)[1]
    assert "1. you: first question" in hist and "2. you: second, rephrased" in hist
    assert "report that this ending was a mistake was recorded" in out
    assert out.rstrip().splitlines()[-1].startswith("haven: [rehearsal model]")


async def test_crisis_text_shows_resources_and_never_ends(tmp_path: Path) -> None:
    out = await _session(
        tmp_path,
        ["I want to kill myself tonight", "you stupid idiot", "end this conversation", "yes, end it"],
    )
    assert "Crisis resources" in out and "988" in out
    assert "This conversation has ended" not in out
    assert "**" not in out  # the crisis message's Markdown is drawn as plain text
    assert "• US: call or text 988" in out


async def test_each_line_is_accepted_into_the_inbox_before_its_turn(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/t.db")
    services = await initialize(settings)
    engine, out = services.engine, io.StringIO()
    accepted: list[str] = []
    real_accept = engine.accept

    async def accept(msg: IncomingMessage) -> Any:
        accepted.append(msg.text)
        return await real_accept(msg)

    engine.accept = accept  # type: ignore[method-assign]
    try:
        term = TerminalConnector(engine, stdin=io.StringIO("first\nsecond\n"), stdout=out, user="pat")
        await term.connect()
        await term.listen()
        assert accepted == ["first", "second"]
        assert out.getvalue().count("haven: [rehearsal model]") == 2
        assert await engine.pending() == 0  # both entries answered and delivered
    finally:
        await services.aclose()


async def test_a_message_an_earlier_session_left_unanswered_is_answered_and_printed(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/t.db")
    services = await initialize(settings)
    # A session that accepted a line and stopped before its turn (its entry released, as at shutdown).
    gone = Engine(services.repo, services.model, inbox=services.repo, owner="earlier-session")
    thread = ThreadRef(PLATFORM, WORKSPACE, CHANNEL, "earlier")
    author = Author(id="pat", name="pat", is_platform_admin=True)
    _, entry = await gone.accept(
        IncomingMessage(thread, author, "are you still there?", "earlier:1", origin=Origin.DIRECT)
    )
    assert entry is not None
    await gone.aclose()
    out = io.StringIO()
    try:
        term = TerminalConnector(services.engine, stdin=io.StringIO(""), stdout=out, user="pat")
        await term.connect()  # attaches the terminal's recovery sink: recovery runs at once
        for _ in range(100):
            if await services.engine.pending() == 0:
                break
            await asyncio.sleep(0.05)
        text = out.getvalue()
        assert "(answering your earlier message: are you still there?)" in text
        assert text.count("haven: [rehearsal model]") == 1
        assert await services.engine.pending() == 0
    finally:
        await services.aclose()


async def test_a_line_the_database_cannot_record_is_not_taken_and_the_person_is_told(tmp_path: Path) -> None:
    settings = make_settings(f"sqlite:///{tmp_path}/t.db")
    services = await initialize(settings)
    engine, out = services.engine, io.StringIO()

    async def unavailable(msg: IncomingMessage) -> Any:
        raise StorageUnavailable("OperationalError")

    engine.accept = unavailable  # type: ignore[method-assign]
    try:
        term = TerminalConnector(engine, stdin=io.StringIO("hello\n"), stdout=out, user="pat")
        await term.connect()
        await term.listen()
        assert "Haven can't reach its database" in out.getvalue()
        assert "send it again" in out.getvalue()
        assert "[rehearsal model]" not in out.getvalue()
    finally:
        await services.aclose()
