"""The terminal adapter, in-process and as the real `haven chat` command with piped stdin."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from adapters.terminal import TerminalConnector
from bot.app import initialize
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


def test_piped_chat_runs_an_abusive_script_to_an_ending(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "chat"],
        input="\n".join(ABUSIVE_SCRIPT) + "\n",
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
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
