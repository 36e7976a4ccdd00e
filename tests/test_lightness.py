"""A process loads what its mode needs and no more (bench/lightness.py measures what that buys).

Real ``haven`` processes under ``python -X importtime``, whose stderr names every module the process
imported: the terminal without a key never imports the Anthropic SDK, a platform SDK or Alembic (on a
database already at the newest revision); with a key it does import the SDK, which shows the check
can fail; Slack's HTTP mode imports Bolt but neither discord.py nor, without a key, the SDK.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from alembic.script import ScriptDirectory

from fakes.mock_slack import MockSlack
from fakes.slack_harness import BOT_TOKEN, SIGNING_SECRET
from storage.db import alembic_config, at_head, script_heads, upgrade_sync

ROOT = Path(__file__).resolve().parents[1]
HEAVY = frozenset({"anthropic", "discord", "slack_bolt", "slack_sdk", "alembic"})
_IMPORTED = re.compile(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)", re.MULTILINE)


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "HAVEN_"))
        and k not in ("DATABASE_URL", "PORT")
    }
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path}/haven.db",
        HAVEN_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


def _top_level_imports(tmp_path: Path, argv: list[str], stdin: str, **extra: str) -> set[str]:
    """The top-level packages a real ``python -m bot …`` imported, from ``-X importtime``."""
    env = _env(tmp_path, **extra)
    subprocess.run(
        [sys.executable, "-m", "bot", "db", "upgrade"], env=env, cwd=tmp_path, check=True, capture_output=True
    )
    ran = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", *argv],
        env=env,
        cwd=tmp_path,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "Haven" in ran.stdout, ran.stdout  # the terminal greeted: the mode really started
    return {name.split(".")[0] for name in _IMPORTED.findall(ran.stderr)}


def test_the_terminal_without_a_key_imports_no_sdk_and_no_alembic(tmp_path: Path) -> None:
    imported = _top_level_imports(tmp_path, ["run"], "hello there\n/quit\n")
    assert "bot" in imported and "adapters" in imported
    assert not imported & HEAVY, sorted(imported & HEAVY)


def test_with_a_key_the_terminal_does_import_the_sdk(tmp_path: Path) -> None:
    imported = _top_level_imports(
        tmp_path,
        ["chat"],
        "/quit\n",
        ANTHROPIC_API_KEY="test-key",
        ANTHROPIC_BASE_URL="http://127.0.0.1:9",
        HAVEN_SKIP_MODEL_CHECK="true",
    )
    assert "anthropic" in imported
    assert not imported & (HEAVY - {"anthropic"}), sorted(imported & HEAVY)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_slack_http_mode_without_a_key_imports_bolt_but_no_discord_and_no_sdk(tmp_path: Path) -> None:
    slack = MockSlack().start_in_thread()
    ops = _free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=str(_free_port()),
        HAVEN_OPS_PORT=str(ops),
    )
    try:
        subprocess.run(
            [sys.executable, "-m", "bot", "db", "upgrade"],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        # A file, not a pipe: -X importtime writes more than a pipe holds before anyone reads it.
        log = tmp_path / "stderr.txt"
        with log.open("w") as stderr:
            proc = subprocess.Popen(
                [sys.executable, "-X", "importtime", "-m", "bot", "run"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
            try:
                deadline, ready = time.monotonic() + 60, False
                while not ready and time.monotonic() < deadline and proc.poll() is None:
                    try:
                        with urllib.request.urlopen(f"http://127.0.0.1:{ops}/readyz", timeout=1) as resp:
                            ready = resp.status == 200
                    except OSError:
                        time.sleep(0.05)
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    finally:
        slack.stop_thread()
    err = log.read_text()
    assert ready, "\n".join(line for line in err.splitlines() if not line.startswith("import time"))[-2000:]
    imported = {name.split(".")[0] for name in _IMPORTED.findall(err)}
    assert {"slack_bolt", "slack_sdk"} <= imported
    assert not imported & {"discord", "anthropic", "alembic"}, sorted(imported & HEAVY)


def test_script_heads_are_alembics_heads() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite:///unused.db")).get_heads()
    assert script_heads() == frozenset(heads)


def test_a_database_is_at_head_only_after_the_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/h.db"
    assert not at_head(url)  # no alembic_version yet
    upgrade_sync(url, "0004")
    assert not at_head(url)
    upgrade_sync(url)
    assert at_head(url)
    assert not at_head("sqlite://")  # in memory: every engine has a database of its own
