"""The `haven` command: admin subcommands with --json, and one clear line for a bad setting.

The commands run in this process (``bot.cli.main(argv)``, output read with capsys), each against a fresh
SQLite file and a clean environment; one smoke test runs the real command in a subprocess, and the test
that the detectors stay unloaded needs a fresh interpreter too.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot import cli
from bot.logs import _NOISY


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.returncode == 0, self.stderr
        return json.loads(self.stdout)


Haven = Callable[..., Ran]


def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the developer's shell or .env reaches the command; the database is the test's."""
    for key in list(os.environ):
        if key.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "HAVEN_")) or key in ("DATABASE_URL", "PORT"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/haven.db")
    monkeypatch.setenv("HAVEN_LOG_LEVEL", "WARNING")
    monkeypatch.chdir(tmp_path)  # Settings read .env from the working directory


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """``main`` configures logging for the process (root handlers and levels): put it back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    noisy = {name: logging.getLogger(name).level for name in _NOISY}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, old in noisy.items():
            logging.getLogger(name).setLevel(old)


@pytest.fixture
def haven(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logging_restored: None,
) -> Haven:
    """``haven(*argv, stdin=..., **env)``: one run of the command in this process."""
    _clean_environment(monkeypatch, tmp_path)

    def run(*argv: str, stdin: str = "", **env: str) -> Ran:
        capsys.readouterr()  # only this run's output
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(sys, "stdin", io.StringIO(stdin))
            try:
                code = cli.main(list(argv))
            except SystemExit as exc:  # argparse: --help, usage errors
                code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


WS = ("admin", "--platform", "slack", "--workspace", "T1")


def test_resources_set_show_reset(haven: Haven) -> None:
    shown = haven(*WS, "--json", "resources", "show").json()
    assert shown["custom"] is False and "988" in shown["text"]

    assert haven(*WS, "resources", "set", stdin="Call the team line: 555-0100\n").returncode == 0
    out = haven(*WS, "--json", "resources", "preview").json()
    assert out == {"custom": True, "text": "Call the team line: 555-0100", "locales": []}
    plain = haven(*WS, "resources", "show")
    assert plain.stdout.startswith("Crisis resources of slack workspace T1 (custom):")
    assert "555-0100" in plain.stdout
    # Another workspace is untouched.
    other = haven("admin", "--platform", "slack", "--workspace", "T2", "--json", "resources", "show").json()
    assert other["custom"] is False

    assert haven(*WS, "resources", "set", "--locale", "de", "--text", "Ruf 0800 an").returncode == 0
    assert haven(*WS, "--json", "resources", "show", "--locale", "de").json() == {
        "custom": True,
        "text": "Ruf 0800 an",
        "locales": ["de"],
    }
    assert haven(*WS, "resources", "reset").returncode == 0
    assert haven(*WS, "--json", "resources", "show").json() == {
        "custom": False,
        "text": shown["text"],
        "locales": [],
    }


def test_settings_and_lists(haven: Haven) -> None:
    assert haven("admin", "settings", "set", "warnings", "3").returncode == 0
    assert haven("admin", "settings", "set", "ending", "off").returncode == 0
    s = haven("admin", "--json", "settings", "show").json()
    assert s["abuse_warnings_before_end"] == 3 and s["ending_enabled"] is False
    assert (s["platform"], s["workspace"]) == ("terminal", "local")
    table = haven("admin", "settings", "show")
    assert table.returncode == 0
    lines = table.stdout.splitlines()
    assert lines[0] == "Settings of terminal workspace local:"
    assert lines[1].split() == ["setting", "value"] and set(lines[2]) <= {"-", " "}
    assert "ending          off" in lines
    for what in ("endings", "decisions", "feedback"):
        assert haven("admin", "--json", what).json() == []
        assert haven("admin", what).stdout.strip() == f"(no {what} in terminal workspace local)"


def test_bad_setting_value_is_one_clear_line(haven: Haven) -> None:
    r = haven("admin", "settings", "set", "warnings", "9")
    assert r.returncode == 2 and r.stderr.strip() == "haven: expected a whole number from 1 to 5, got 9"
    r = haven("admin", "settings", "set", "colour", "blue")
    assert r.returncode == 2 and r.stderr.strip().startswith("haven: unknown setting 'colour'")
    r = haven("admin", "settings", "set", "warnings")
    assert r.returncode == 2 and r.stderr.startswith("usage: haven admin settings set NAME VALUE")
    assert haven("admin", "--json", "settings", "show").json()["abuse_warnings_before_end"] == 2


@pytest.mark.parametrize(("var", "value"), [("PORT", "seventy"), ("HAVEN_LOG_LEVEL", "LOUD")])
def test_bad_environment_fails_at_start_naming_the_setting(haven: Haven, var: str, value: str) -> None:
    r = haven("admin", "settings", "show", **{var: value})
    assert r.returncode == 1 and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"haven: invalid setting {var}")


def test_argument_errors_are_answered_before_any_setting_is_read(haven: Haven) -> None:
    r = haven("admin", "nonsense", PORT="seventy")
    assert (
        r.returncode == 2 and "invalid choice: 'nonsense'" in r.stderr and "invalid setting" not in r.stderr
    )


def test_db_upgrade_is_idempotent(haven: Haven, tmp_path: Path) -> None:
    for _ in range(2):
        r = haven("db", "upgrade")
        assert r.returncode == 0 and r.stdout.strip() == "database is at the newest schema"
    assert (tmp_path / "haven.db").exists()


def test_usage_forget_user_and_export(haven: Haven) -> None:
    assert haven("admin", "--json", "usage").json()["total"] == {
        "calls": 0,
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
        "cache_hit_ratio": 0.0,
        "cost_usd": 0.0,
        "unpriced_models": [],
    }
    # A terminal conversation, then forget its author and export what is left.
    chat = haven("chat", stdin="remember my secret phrase: blue heron\n/end\n", USER="pat", LOGNAME="pat")
    assert chat.returncode == 0, chat.stderr
    assert "haven: [rehearsal model]" in chat.stdout and "Closed." in chat.stdout
    assert haven("admin", "--json", "usage").json()["total"]["calls"] == 1
    endings = haven("admin", "--json", "endings").json()
    assert len(endings) == 1
    conversation = endings[0]["conversation_id"]
    assert endings[0]["reason"] == "user_command"
    exported = haven("admin", "export", conversation)
    assert exported.returncode == 0 and "blue heron" in exported.stdout
    forgot = haven("admin", "--json", "forget-user", "terminal", "pat").json()
    assert forgot["removed"] >= 1
    exported = haven("admin", "export", conversation)
    assert exported.returncode == 0 and "blue heron" not in exported.stdout
    assert json.loads(exported.stdout)["conversation"]["id"] == conversation
    missing = haven("admin", "export", "no-such-id")
    assert missing.returncode == 1 and missing.stderr.strip().startswith("haven: no conversation no-such-id")


def test_help_lists_the_commands(haven: Haven) -> None:
    r = haven("--help")
    assert r.returncode == 0 and r.stdout.startswith("usage: haven")
    for command in ("run", "chat", "db", "admin", "eval"):
        assert command in r.stdout


@pytest.mark.parametrize(
    "argv",
    [
        ["--json", "admin", "settings", "show"],
        ["admin", "--json", "settings", "show"],
        ["admin", "settings", "--json", "show"],
        ["admin", "settings", "show", "--json"],
        ["admin", "settings", "show", "--platform", "discord", "--workspace", "G1", "--json"],
    ],
)
def test_json_is_accepted_anywhere_on_the_line(haven: Haven, argv: list[str]) -> None:
    data = haven(*argv).json()
    assert data["abuse_warnings_before_end"] == 2
    expected = ("discord", "G1") if "discord" in argv else ("terminal", "local")
    assert (data["platform"], data["workspace"]) == expected


def test_admin_is_quiet_unless_verbose(haven: Haven) -> None:
    quiet = haven("admin", "settings", "show", HAVEN_LOG_LEVEL="INFO")
    assert quiet.returncode == 0 and quiet.stderr == ""
    loud = haven("admin", "-v", "settings", "show", HAVEN_LOG_LEVEL="WARNING")
    assert loud.returncode == 0 and " INFO " in loud.stderr and "haven initialized" in loud.stderr
    assert haven("admin", "settings", "show", "--verbose").stderr != ""


def test_a_platform_typo_is_one_line_and_exit_2(haven: Haven) -> None:
    r = haven("admin", "--platform", "slak", "--workspace", "T1", "settings", "set", "warnings", "3")
    assert r.returncode == 2 and r.stdout == ""
    [line] = r.stderr.strip().splitlines()
    assert "unknown platform 'slak'" in line and "did you mean slack" in line
    # Nothing was saved anywhere, under any name.
    assert haven(*WS, "--json", "settings", "show").json()["abuse_warnings_before_end"] == 2
    r = haven("admin", "--platform", "slack", "settings", "show")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "--workspace" in r.stderr
    assert haven("admin", "--platform", "SLACK", "--workspace", "T1", "--json", "usage").returncode == 0


def test_text_output_names_the_workspace(haven: Haven) -> None:
    shown = haven("admin", "settings", "show", "--platform", "discord", "--workspace", "G7")
    assert shown.stdout.splitlines()[0] == "Settings of discord workspace G7:"
    usage = haven("admin", "--platform", "discord", "--workspace", "G7", "usage").stdout.splitlines()
    assert usage[0].startswith("Model usage of discord workspace G7, from the start until now")
    # A people's table: the numbers line up on the right.
    widths = {len(line) for line in usage[3:]}
    assert len(widths) == 1, usage


def test_admins_can_be_cleared(haven: Haven) -> None:
    from bot.admin import SETTINGS

    assert haven("admin", "settings", "set", "admins", "U1, <@U2|pat>").returncode == 0
    assert haven("admin", "--json", "settings", "show").json()["admin_users"] == ["U1", "U2"]
    assert haven("admin", "settings", "set", "admins", "none").returncode == 0
    assert haven("admin", "--json", "settings", "show").json()["admin_users"] == []
    assert haven("admin", "settings", "set", "admins", "U3").returncode == 0
    assert haven("admin", "settings", "set", "admins", "--clear").returncode == 0
    assert haven("admin", "--json", "settings", "show").json()["admin_users"] == []
    assert "platform admins only" in haven("admin", "settings", "show").stdout
    # The one parser every adapter uses (Slack's `/haven settings admins none`, Discord's command).
    parse = SETTINGS["admins"][0]
    assert parse("none") == parse(" None ") == parse("off") == ()
    assert parse("<@U1> <@!42>") == ("U1", "42")
    assert haven("admin", "settings", "set", "warnings", "--clear").returncode == 2


def test_audit_names_the_shell_user_and_each_change(haven: Haven) -> None:
    assert haven("admin", "audit").stdout.strip() == "(no admin changes in terminal workspace local)"
    assert haven("admin", "settings", "set", "warnings", "4", USER="pat", LOGNAME="pat").returncode == 0
    assert haven("admin", "settings", "set", "admins", "U1 U2", USER="pat", LOGNAME="pat").returncode == 0
    assert (
        haven("admin", "resources", "set", "--text", "Call 555-0100", LOGNAME="sam", USER="sam").returncode
        == 0
    )
    assert haven("admin", "settings", "set", "warnings", "9").returncode == 2  # refused: not recorded
    records = haven("admin", "audit", "--json").json()
    assert [(r["actor_id"], r["actor_name"], r["setting"]) for r in records] == [
        ("cli", "sam", "crisis-message"),
        ("cli", "pat", "admins"),
        ("cli", "pat", "warnings"),
    ]
    assert (records[1]["old"], records[1]["new"]) == ([], ["U1", "U2"])
    assert (records[2]["old"], records[2]["new"]) == (2, 4)
    assert records[0]["new"]["chars"] == len("Call 555-0100") and records[0]["old"] is None
    assert [r["setting"] for r in haven("admin", "audit", "--limit", "1", "--json").json()] == [
        "crisis-message"
    ]
    text = haven("admin", "audit").stdout.splitlines()
    assert text[0] == "Admin changes in terminal workspace local, newest first (times in UTC):"
    header, row = text[1], text[5]
    assert row.startswith(records[2]["created_at"]) and row.index("cli (pat)") == header.index("actor")
    assert row.split()[-2:] == ["2", "4"]


def test_timestamps_are_utc_and_tables_are_aligned(haven: Haven) -> None:
    chat = haven("chat", stdin="hello\n/end\n", USER="pat", LOGNAME="pat")
    assert chat.returncode == 0, chat.stderr
    [ending] = haven("admin", "--json", "endings").json()
    assert ending["ended_at"].endswith("Z")
    stamp = datetime.fromisoformat(ending["ended_at"])
    assert stamp.utcoffset() == timedelta(0)
    text = haven("admin", "endings").stdout.splitlines()
    assert text[0] == "Endings in terminal workspace local, newest first (times in UTC):"
    header, rule, row = text[1], text[2], text[3]
    assert header.split()[:3] == ["ended_at", "conversation_id", "reason"]
    assert row.startswith(ending["ended_at"]) and "user_command" in row
    # Every column starts where its header starts.
    assert row.index("user_command") == header.index("reason") and set(rule) <= {"-", " "}


def test_jobs_shows_the_scheduler_records(haven: Haven, tmp_path: Path) -> None:
    import asyncio

    from storage.db import open_database, upgrade
    from storage.maintenance import Maintenance

    empty = haven("admin", "jobs")
    assert empty.returncode == 0 and "(no job runs)" in empty.stdout
    url = f"sqlite:///{tmp_path}/haven.db"

    async def record() -> None:
        await upgrade(url)
        db = open_database(url)
        try:
            m = Maintenance(db)
            now = datetime.now(UTC)
            assert await m.acquire_lease("scheduler", "host-a:1", timedelta(seconds=60), now)
            assert await m.claim_run("retention", "2026-01-02", "host-a:1")
            await m.finish_run("retention", "2026-01-02", "removed 3")
            assert await m.claim_run("digest", "2026-W01", "host-a:1")
        finally:
            await db.dispose()

    asyncio.run(record())
    data = haven("admin", "jobs", "--json").json()
    assert [(r["job"], r["period"], r["result"]) for r in data["runs"]] == [
        ("digest", "2026-W01", None),
        ("retention", "2026-01-02", "removed 3"),
    ]
    assert all(r["started_at"].endswith("Z") for r in data["runs"])
    assert [(lease["name"], lease["holder"]) for lease in data["leases"]] == [("scheduler", "host-a:1")]
    text = haven("admin", "jobs").stdout
    assert "Scheduler leases (all workspaces):" in text and "removed 3" in text
    assert haven("admin", "jobs", "--limit", "1", "--json").json()["runs"][0]["job"] == "digest"


# -- in a subprocess -----------------------------------------------------------------------------------


def test_the_installed_command_runs(tmp_path: Path) -> None:
    """One smoke test of the real command: a fresh interpreter reading its settings from the environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "HAVEN_"))
    }
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path}/haven.db", "HAVEN_LOG_LEVEL": "WARNING"})

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", *argv],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )

    helped = run("--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: haven"), helped.stderr
    shown = run("admin", "--json", "settings", "show")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["abuse_warnings_before_end"] == 2


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


def test_instructions_and_channel_lists_set_shown_and_cleared(haven: Haven) -> None:
    persona = "You are Sol.\nAnswer briefly."
    assert haven(*WS, "settings", "set", "instructions", "-", stdin=persona + "\n").returncode == 0
    assert haven(*WS, "--json", "settings", "show").json()["instructions"] == persona
    assert "instructions" in haven(*WS, "settings", "show").stdout
    too_long = haven(*WS, "settings", "set", "instructions", "x" * 2001)
    assert too_long.returncode == 2 and "limited to 2,000 characters" in too_long.stderr
    assert len(too_long.stderr.strip().splitlines()) == 1
    assert haven(*WS, "settings", "set", "allow-channels", "C1, <#C2|help>").returncode == 0
    assert haven(*WS, "settings", "set", "deny-channels", "C3").returncode == 0
    shown = haven(*WS, "--json", "settings", "show").json()
    assert (shown["allowed_channels"], shown["denied_channels"]) == (["C1", "C2"], ["C3"])
    assert (shown["instructions"]) == persona  # a refused change changed nothing
    assert (
        haven(*WS, "settings", "set", "prompts", "-", stdin="Plan my week\nExplain a diff\n").returncode == 0
    )
    assert haven(*WS, "--json", "settings", "show").json()["suggested_prompts"] == [
        "Plan my week",
        "Explain a diff",
    ]
    assert "Plan my week | Explain a diff" in haven(*WS, "settings", "show").stdout
    for name in ("instructions", "allow-channels", "deny-channels"):
        assert haven(*WS, "settings", "set", name, "--clear").returncode == 0
    cleared = haven(*WS, "--json", "settings", "show").json()
    assert (cleared["instructions"], cleared["allowed_channels"], cleared["denied_channels"]) == (
        None,
        [],
        [],
    )
    assert "every channel" in haven(*WS, "settings", "show").stdout
    # Each change is in the admin audit, by the operator.
    audit = haven(*WS, "--json", "audit").json()
    assert [a["setting"] for a in audit][:3] == ["deny-channels", "allow-channels", "instructions"]


def test_usage_over_a_window_per_person_with_a_cost_from_the_price_table(haven: Haven) -> None:
    chat = haven("chat", stdin="hello there\n", USER="pat", LOGNAME="pat")
    assert chat.returncode == 0, chat.stderr
    priced = '{"rehearsal": {"input": 1, "output": 2, "cache_write": 1, "cache_read": 1}}'
    report = haven(
        "admin", "usage", "--by", "user", "--since", "2020-01-01", "--json", HAVEN_MODEL_PRICES=priced
    )
    out = report.json()
    assert out["since"] == "2020-01-01T00:00:00Z" and out["until"] is None and out["by"] == "user"
    [line] = out["lines"]
    assert line["user"] == "pat" and line["model"] == "rehearsal" and line["calls"] == 1
    assert line["cost_usd"] is not None and out["total"]["unpriced_models"] == []
    # Nothing before 2020, and a window in the future is empty.
    empty = haven("admin", "--json", "usage", "--until", "2020-01-01").json()
    assert empty["total"]["calls"] == 0
    text = haven("admin", "usage", "--by", "conversation").stdout
    assert "No price for: rehearsal (set HAVEN_MODEL_PRICES)." in text and "conversation" in text


def test_a_bad_date_or_price_table_is_one_clear_line(haven: Haven) -> None:
    bad_date = haven("admin", "usage", "--since", "last tuesday")
    assert bad_date.returncode == 2 and "not a date or time" in bad_date.stderr
    bad_prices = haven("admin", "usage", HAVEN_MODEL_PRICES='{"m": {"input": 1}}')
    assert bad_prices.returncode == 1
    assert bad_prices.stderr.strip().startswith("haven: invalid setting HAVEN_MODEL_PRICES")
    assert len(bad_prices.stderr.strip().splitlines()) == 1


def test_the_detectors_are_built_by_the_first_message_not_at_start(
    haven: Haven, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule tables (25–45 MB) are built once, by the first message that needs them: an idle process
    and a command that reads no message hold none of them."""
    from bot.detectors import risk

    asked: list[str] = []
    real = risk.default_detector

    def counted() -> risk.RiskDetector:
        asked.append("asked")
        return real()

    monkeypatch.setattr(risk, "default_detector", counted)
    assert haven("admin", "settings", "show").returncode == 0
    assert haven("chat", stdin="").returncode == 0
    assert asked == []
    assert haven("chat", stdin="hello there\n").returncode == 0
    assert asked  # the first message asked for the detector …
    assert risk._build_default.cache_info().currsize == 1  # … which is built once
