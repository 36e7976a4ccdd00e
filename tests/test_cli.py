"""The `haven` command: admin subcommands with --json, and one clear line for a bad setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def haven(
    tmp_path: Path, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "HAVEN_"))
    }
    base.update({"DATABASE_URL": f"sqlite:///{tmp_path}/haven.db", "HAVEN_LOG_LEVEL": "WARNING", **env})
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=base,
        cwd=tmp_path,
        timeout=60,
    )


def test_resources_set_show_reset(tmp_path: Path) -> None:
    ws = ["admin", "--platform", "slack", "--workspace", "T1"]
    shown = haven(tmp_path, *ws, "--json", "resources", "show")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["custom"] is False and "988" in json.loads(shown.stdout)["text"]

    assert haven(tmp_path, *ws, "resources", "set", stdin="Call the team line: 555-0100\n").returncode == 0
    out = json.loads(haven(tmp_path, *ws, "--json", "resources", "preview").stdout)
    assert out == {"custom": True, "text": "Call the team line: 555-0100", "locales": []}
    # Another workspace is untouched.
    other = json.loads(
        haven(
            tmp_path, "admin", "--platform", "slack", "--workspace", "T2", "--json", "resources", "show"
        ).stdout
    )
    assert other["custom"] is False

    assert haven(tmp_path, *ws, "resources", "reset").returncode == 0
    assert json.loads(haven(tmp_path, *ws, "--json", "resources", "show").stdout)["custom"] is False


def test_settings_and_lists(tmp_path: Path) -> None:
    assert haven(tmp_path, "admin", "settings", "set", "warnings", "3").returncode == 0
    assert haven(tmp_path, "admin", "settings", "set", "ending", "off").returncode == 0
    s = json.loads(haven(tmp_path, "admin", "--json", "settings", "show").stdout)
    assert s["abuse_warnings_before_end"] == 3 and s["ending_enabled"] is False
    for what in ("endings", "decisions", "feedback"):
        r = haven(tmp_path, "admin", "--json", what)
        assert r.returncode == 0 and json.loads(r.stdout) == []


def test_bad_setting_value_is_one_clear_line(tmp_path: Path) -> None:
    r = haven(tmp_path, "admin", "settings", "set", "warnings", "9")
    assert r.returncode == 2 and r.stderr.strip() == "haven: expected a whole number from 1 to 5, got 9"


@pytest.mark.parametrize(("var", "value"), [("PORT", "seventy"), ("HAVEN_LOG_LEVEL", "LOUD")])
def test_bad_environment_fails_at_start_naming_the_setting(tmp_path: Path, var: str, value: str) -> None:
    r = haven(tmp_path, "admin", "settings", "show", **{var: value})
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"haven: invalid setting {var}")


def test_db_upgrade_is_idempotent(tmp_path: Path) -> None:
    assert haven(tmp_path, "db", "upgrade").returncode == 0
    assert haven(tmp_path, "db", "upgrade").returncode == 0


def test_usage_forget_user_and_export(tmp_path: Path) -> None:
    usage = haven(tmp_path, "admin", "--json", "usage")
    assert usage.returncode == 0, usage.stderr
    assert json.loads(usage.stdout) == {
        "calls": 0,
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
        "cache_hit_ratio": 0.0,
    }
    # A terminal conversation, then forget its author and export what is left.
    chat = haven(
        tmp_path, "chat", stdin="remember my secret phrase: blue heron\n/end\n", USER="pat", LOGNAME="pat"
    )
    assert chat.returncode == 0, chat.stderr
    endings = json.loads(haven(tmp_path, "admin", "--json", "endings").stdout)
    assert len(endings) == 1
    conversation = endings[0]["conversation_id"]
    exported = haven(tmp_path, "admin", "export", conversation)
    assert exported.returncode == 0 and "blue heron" in exported.stdout
    forgot = haven(tmp_path, "admin", "--json", "forget-user", "terminal", "pat")
    assert forgot.returncode == 0 and json.loads(forgot.stdout)["removed"] >= 1
    exported = haven(tmp_path, "admin", "export", conversation)
    assert exported.returncode == 0 and "blue heron" not in exported.stdout
    assert json.loads(exported.stdout)["conversation"]["id"] == conversation
    missing = haven(tmp_path, "admin", "export", "no-such-id")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("haven: no conversation no-such-id")


@pytest.mark.parametrize("argv", [["--help"], ["admin", "settings", "show"]])
def test_help_and_admin_do_not_load_the_detectors(argv: list[str], tmp_path: Path) -> None:
    """The rule tables are for reading messages; commands that never read one must not pay for them."""
    code = (
        "import sys\nfrom bot import cli\n"
        f"try:\n    cli.main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('bot.detectors')))"
    )
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'h.db'}"}
    env.pop("ANTHROPIC_API_KEY", None)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"
