"""A process loads what its mode needs and no more (bench/lightness.py measures what that buys).

Real ``haven`` processes under ``python -X importtime``, whose stderr names every module the process
imported: the terminal without a key never imports the Anthropic SDK, a platform SDK or Alembic (on a
database already at the newest revision); with a key it checks the key without the SDK and imports the
SDK for its first answer, not before (the test of the check itself shows that it can fail); Slack's
HTTP mode, ready and idle, imports Bolt but neither discord.py, nor the SDK (with a key or without),
nor the risk detector's tables, which the first message builds; on SQLite no mode imports SQLAlchemy's
PostgreSQL dialect.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from bench.lightness import IDLE_SECONDS
from fakes.fake_anthropic import FakeAnthropic
from fakes.harness import sqlite_copy
from fakes.mock_slack import MockSlack
from fakes.ports import free_port
from fakes.slack_harness import BOT_TOKEN, SIGNING_SECRET
from storage.db import alembic_config, at_head, script_heads, upgrade_sync

ROOT = Path(__file__).resolve().parents[1]
HEAVY = frozenset({"anthropic", "discord", "slack_bolt", "slack_sdk", "alembic"})
# Built by the first message that needs them (25–45 MB), never by an idle process.
DETECTOR_TABLES = frozenset(
    {
        "bot.detectors.risk",
        "bot.detectors.abuse",
        "bot.detectors.rules",
        "bot.detectors.patterns",
        "bot.detectors.selection",
        "bot.detectors.normalize",
        "bot.detectors.fold",
    }
)
# Never needed on SQLite (storage.db.dialect_insert).
NOT_ON_SQLITE = frozenset({"sqlalchemy.dialects.postgresql"})
# storage/models.py declares typed Core tables: the ORM (about 6 MB) is never imported.
NO_ORM = frozenset({"sqlalchemy.orm"})
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


def _imports(migrated: Path, tmp_path: Path, argv: list[str], stdin: str, **extra: str) -> set[str]:
    """The modules a real ``python -m bot …`` imported, from ``-X importtime``, on a copy of the
    ``migrated`` database."""
    env = _env(tmp_path, **extra)
    sqlite_copy(migrated, tmp_path)  # at tmp_path/haven.db, where _env points: at the newest revision
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
    return set(_IMPORTED.findall(ran.stderr))


def _top(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


def test_the_terminal_without_a_key_imports_no_sdk_and_no_alembic(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    imported = _top(_imports(migrated_sqlite, tmp_path, ["run"], "hello there\n/quit\n"))
    assert "bot" in imported and "adapters" in imported
    assert not imported & HEAVY, sorted(imported & HEAVY)


def test_an_idle_terminal_builds_no_detector(migrated_sqlite: Path, tmp_path: Path) -> None:
    imported = _imports(migrated_sqlite, tmp_path, ["chat"], "/quit\n")
    assert not imported & DETECTOR_TABLES, sorted(imported & DETECTOR_TABLES)
    assert not imported & NOT_ON_SQLITE, sorted(imported & NOT_ON_SQLITE)


def test_with_a_key_the_terminal_checks_it_without_the_sdk_and_imports_it_to_answer(
    migrated_sqlite: Path, tmp_path: Path
) -> None:
    model = FakeAnthropic().start_in_thread()
    try:
        key = {"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.url}
        (tmp_path / "idle").mkdir()
        (tmp_path / "answered").mkdir()
        idle = _top(_imports(migrated_sqlite, tmp_path / "idle", ["chat"], "/quit\n", **key))
        answered = _top(
            _imports(migrated_sqlite, tmp_path / "answered", ["chat"], "hello there\n/quit\n", **key)
        )
    finally:
        model.stop_thread()
    assert [r.path for r in model.requests].count("/v1/messages/count_tokens") == 2  # each start checked
    assert not idle & HEAVY, sorted(idle & HEAVY)
    assert "anthropic" in answered  # the first answer imported it
    assert not answered & (HEAVY - {"anthropic"}), sorted(answered & HEAVY)


@pytest.mark.parametrize("key", [False, True], ids=["rehearsal", "key"])
def test_slack_http_mode_ready_and_idle_imports_bolt_but_no_discord_no_sdk_and_no_detector(
    migrated_sqlite: Path, tmp_path: Path, key: bool
) -> None:
    slack = MockSlack().start_in_thread()
    model = FakeAnthropic().start_in_thread()
    ops = free_port()
    env = _env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        PORT=str(free_port()),
        HAVEN_OPS_PORT=str(ops),
        **({"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": model.url} if key else {}),
    )
    sqlite_copy(migrated_sqlite, tmp_path)  # at tmp_path/haven.db, where _env points
    try:
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
                        if "ops endpoint not started" in log.read_text():
                            break  # it will never be ready: fail now, with its log, not in a minute
                        time.sleep(0.05)
                if ready:
                    time.sleep(IDLE_SECONDS)  # what an idle process loads in the background counts too
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    finally:
        slack.stop_thread()
        model.stop_thread()
    err = log.read_text()
    assert ready, "\n".join(line for line in err.splitlines() if not line.startswith("import time"))[-2000:]
    modules = set(_IMPORTED.findall(err))
    imported = _top(modules)
    assert {"slack_bolt", "slack_sdk"} <= imported
    assert not imported & {"discord", "anthropic", "alembic"}, sorted(imported & HEAVY)
    assert not modules & DETECTOR_TABLES, sorted(modules & DETECTOR_TABLES)
    assert not modules & NOT_ON_SQLITE, sorted(modules & NOT_ON_SQLITE)
    assert not modules & NO_ORM
    checks = [r.path for r in model.requests]
    assert checks == (["/v1/messages/count_tokens"] if key else [])  # the key was checked, without the SDK


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
