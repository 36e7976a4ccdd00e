"""Start-up that tells the truth: a half-configured platform, a bad or unreachable database, a rejected
model key or an unknown model each stop ``haven`` with exactly one line on stderr and exit 1; with no
platform at all the terminal starts only when there is someone to talk to.

In-process through ``bot.cli.main`` (the fixtures of ``tests/test_cli.py``), plus one real process for
the exit code.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot import cli
from fakes.fake_anthropic import Error, FakeAnthropic, error
from tests.test_cli import Ran, _clean_environment, logging_restored  # noqa: F401 (a fixture)

Start = Callable[..., Ran]


@pytest.fixture
def start(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    logging_restored: None,  # noqa: F811
) -> Start:
    """``start(*argv, stdin=..., **env)``; ``stdin`` is a string, None (no stdin at all) or a file."""
    _clean_environment(monkeypatch, tmp_path)

    def run(*argv: str, stdin: Any = "", **env: str) -> Ran:
        capsys.readouterr()
        with monkeypatch.context() as m:
            for key, value in env.items():
                m.setenv(key, value)
            m.setattr(sys, "stdin", io.StringIO(stdin) if isinstance(stdin, str) else stdin)
            try:
                code = cli.main(list(argv))
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def one_line(r: Ran) -> str:
    """The run failed with exit 1 and exactly one line on stderr, which is returned."""
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("haven: ")
    return lines[0]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


HALF_CONFIGURATIONS = [
    ({"SLACK_BOT_TOKEN": "xoxb-1"}, ["SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"]),
    ({"SLACK_APP_TOKEN": "xapp-1"}, ["SLACK_BOT_TOKEN"]),
    ({"SLACK_SIGNING_SECRET": "s3cret"}, ["SLACK_BOT_TOKEN"]),
    ({"SLACK_APP_TOKEN": "xapp-1", "SLACK_SIGNING_SECRET": "s3cret"}, ["SLACK_BOT_TOKEN"]),
    ({"SLACK_BOT_TOKEN": "", "SLACK_APP_TOKEN": "xapp-1"}, ["SLACK_BOT_TOKEN", "empty"]),
    ({"SLACK_BOT_TOKEN": "xoxb-1", "DISCORD_TOKEN": "d"}, ["SLACK_APP_TOKEN"]),
    ({"DISCORD_SHARD_COUNT": "2"}, ["DISCORD_TOKEN"]),
    ({"DISCORD_SHARD_IDS": "0,1"}, ["DISCORD_TOKEN"]),
    ({"DISCORD_TOKEN": "  "}, ["DISCORD_TOKEN", "empty"]),
    # Many Slack workspaces (OAuth): both credentials, the signing secret, and not with one bot token.
    ({"SLACK_CLIENT_ID": "123.456"}, ["SLACK_CLIENT_SECRET"]),
    ({"SLACK_CLIENT_SECRET": "c1ient-s3cret"}, ["SLACK_CLIENT_ID"]),
    ({"SLACK_CLIENT_ID": "", "SLACK_CLIENT_SECRET": "c1ient-s3cret"}, ["SLACK_CLIENT_ID", "empty"]),
    ({"SLACK_CLIENT_ID": "123.456", "SLACK_CLIENT_SECRET": "c1ient-s3cret"}, ["SLACK_SIGNING_SECRET"]),
    (
        {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c1ient-s3cret", "SLACK_SIGNING_SECRET": "s3cret"}
        | {"SLACK_BOT_TOKEN": "xoxb-1"},
        ["SLACK_BOT_TOKEN", "not both"],
    ),
    (
        {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c1ient-s3cret", "SLACK_SIGNING_SECRET": "s3cret"}
        | {"SLACK_APP_TOKEN": "xapp-1"},
        ["SLACK_APP_TOKEN", "HTTP mode"],
    ),
    (
        {"SLACK_CLIENT_ID": "1.2", "SLACK_CLIENT_SECRET": "c1ient-s3cret", "SLACK_SIGNING_SECRET": "s3cret"}
        | {"DISCORD_SHARD_COUNT": "2"},
        ["DISCORD_TOKEN"],
    ),
]


@pytest.mark.parametrize(("env", "named"), HALF_CONFIGURATIONS)
def test_a_half_configured_platform_is_one_line_and_exit_1(
    start: Start, env: dict[str, str], named: list[str]
) -> None:
    line = one_line(start("run", stdin="hello\n", **env))
    for word in named:
        assert word in line
    for secret in ("xoxb-1", "xapp-1", "s3cret", "c1ient-s3cret"):
        assert secret not in line


def test_no_platform_and_no_stdin_is_an_error_not_a_silent_chat(start: Start) -> None:
    line = one_line(start("run", stdin=None))
    assert "configure" in line or "set SLACK_BOT_TOKEN" in line
    with open(os.devnull) as devnull:  # systemd, a container without -i
        assert one_line(start("run", stdin=devnull)) == line


def test_no_platform_with_a_pipe_starts_the_terminal(start: Start) -> None:
    r = start("run", stdin="hello\n")
    assert r.returncode == 0, r.stderr
    assert "[rehearsal model]" in r.stdout


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("nonsense", "DATABASE_URL"),
        ("mysql://haven@localhost/haven", "DATABASE_URL"),
    ],
)
@pytest.mark.parametrize("argv", [("run",), ("admin", "settings", "show"), ("db", "upgrade")])
def test_a_bad_database_url_is_one_line(start: Start, url: str, named: str, argv: tuple[str, ...]) -> None:
    line = one_line(start(*argv, DATABASE_URL=url))
    assert named in line and "sqlite:///" in line


@pytest.mark.parametrize("argv", [("run",), ("admin", "settings", "show"), ("db", "upgrade")])
def test_an_unreachable_postgresql_is_one_line(start: Start, argv: tuple[str, ...]) -> None:
    url = f"postgresql://haven:pa55word@127.0.0.1:{closed_port()}/haven"
    line = one_line(start(*argv, DATABASE_URL=url))
    assert "DATABASE_URL" in line and "refused" in line.lower()
    assert "pa55word" not in line


def test_debug_shows_the_traceback(start: Start) -> None:
    r = start("admin", "settings", "show", DATABASE_URL="nonsense", HAVEN_LOG_LEVEL="DEBUG")
    assert r.returncode == 1 and "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("haven: DATABASE_URL")


def test_an_unreachable_slack_api_is_one_line(start: Start) -> None:
    line = one_line(
        start(
            "run",
            SLACK_BOT_TOKEN="xoxb-1",
            SLACK_APP_TOKEN="xapp-1",
            SLACK_API_URL=f"http://127.0.0.1:{closed_port()}/api/",
            HAVEN_LOG_LEVEL="ERROR",
        )
    )
    assert "could not connect to Slack" in line and "SLACK_API_URL" in line
    assert "xoxb-1" not in line


# -- the model check -----------------------------------------------------------------------------------


class CountingAnthropic(FakeAnthropic):
    """The scripted server, with a scripted answer for the token count too (the start-up check's call)."""

    def __init__(self, count_answer: Error | None = None) -> None:
        super().__init__()
        self.count_answer = count_answer

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        if self.count_answer is None:
            return await super()._count_tokens(request)
        await self._read(request)
        return self._error(self.count_answer)

    def counts(self) -> int:
        return sum(r.path.endswith("/count_tokens") for r in self.requests)


@pytest.fixture
def model_server() -> Iterator[Callable[[Error | None], CountingAnthropic]]:
    started: list[CountingAnthropic] = []

    def make(answer: Error | None) -> CountingAnthropic:
        server = CountingAnthropic(answer).start_in_thread()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop_thread()


def _model_env(server: FakeAnthropic, **extra: str) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": server.url, **extra}


def test_a_rejected_model_key_is_one_line(start: Start, model_server: Any) -> None:
    server = model_server(error(401, "authentication_error", "invalid x-api-key"))
    for argv in (("run",), ("chat",)):
        line = one_line(start(*argv, stdin="hello\n", **_model_env(server)))
        assert "ANTHROPIC_API_KEY" in line and "401" in line
        assert "sk-ant-test" not in line
    assert server.counts() == 2 and server.model_requests() == []  # nobody was answered


def test_an_unknown_model_is_one_line(start: Start, model_server: Any) -> None:
    server = model_server(error(404, "not_found_error", "model: claude-nonesuch"))
    line = one_line(start("run", stdin="", **_model_env(server, HAVEN_MODEL="claude-nonesuch")))
    assert "HAVEN_MODEL='claude-nonesuch'" in line and "404" in line


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        (error(403, "permission_error", "no access"), "may not use the model 'claude-x' (403)"),
        (
            error(400, "invalid_request_error", "model: bad id\nmore"),
            "(400: model: bad id): check HAVEN_MODEL",
        ),
    ],
)
def test_a_refused_model_is_one_line(start: Start, model_server: Any, answer: Error, named: str) -> None:
    server = model_server(answer)
    line = one_line(start("chat", stdin="", **_model_env(server, HAVEN_MODEL="claude-x")))
    assert named in line, line


def test_an_unreachable_api_is_one_line(start: Start) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    line = one_line(start("chat", stdin="", ANTHROPIC_API_KEY="sk-ant-test", ANTHROPIC_BASE_URL=url))
    assert "could not reach the Anthropic API" in line and "HAVEN_SKIP_MODEL_CHECK" in line


def test_a_passing_fault_does_not_stop_the_start(start: Start, model_server: Any) -> None:
    server = model_server(error(529, "overloaded_error", "Overloaded"))
    r = start("chat", stdin="", **_model_env(server))
    assert r.returncode == 0, r.stderr
    assert server.counts() == 1


def test_the_check_sends_the_key_and_model_the_sdk_would(start: Start, model_server: Any) -> None:
    """The check is the SDK's count_tokens request, made without the SDK (``bot.claude``)."""
    server = model_server(None)
    assert start("chat", stdin="", **_model_env(server, HAVEN_MODEL="claude-x")).returncode == 0
    [request] = server.requests
    assert request.path == "/v1/messages/count_tokens"
    assert request.body == {"model": "claude-x", "messages": [{"role": "user", "content": "ping"}]}
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["x-api-key"] == "sk-ant-test" and headers["anthropic-version"]


def test_an_accepted_key_costs_one_count(start: Start, model_server: Any) -> None:
    server = model_server(None)
    r = start("chat", stdin="", **_model_env(server))
    assert r.returncode == 0, r.stderr
    assert server.counts() == 1


def test_the_skip_setting_skips_the_call(start: Start, model_server: Any) -> None:
    server = model_server(error(401, "authentication_error", "invalid x-api-key"))
    r = start("chat", stdin="", **_model_env(server, HAVEN_SKIP_MODEL_CHECK="true"))
    assert r.returncode == 0, r.stderr
    assert server.counts() == 0


def test_the_rehearsal_model_needs_no_check(start: Start) -> None:
    r = start("chat", stdin="", HAVEN_SKIP_MODEL_CHECK="false")
    assert r.returncode == 0, r.stderr


def test_admin_commands_make_no_model_call(start: Start, model_server: Any) -> None:
    server = model_server(error(401, "authentication_error", "invalid x-api-key"))
    assert start("admin", "settings", "show", **_model_env(server)).returncode == 0
    assert server.counts() == 0


# -- a real process ------------------------------------------------------------------------------------


def test_the_real_exit_code_under_a_service_manager(tmp_path: Path) -> None:
    """As under systemd: no stdin, only SLACK_BOT_TOKEN. Exit 1 and one line, not a silent exit 0."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "SLACK_", "DISCORD_", "HAVEN_"))
    }
    env.update(DATABASE_URL=f"sqlite:///{tmp_path}/haven.db", SLACK_BOT_TOKEN="xoxb-1")
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 1 and done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("haven: SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN")
