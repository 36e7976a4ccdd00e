"""The container files say what the README promises: a slim Python 3.11 image running as a non-root
user, a health check on /healthz, `haven run`; compose runs it next to PostgreSQL with a volume, the
database URL wired and the settings from .env. (Docker itself may be absent where the tests run; CI
builds the image when it is there.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)  # continuation lines
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(v for k, v in instructions if k == "RUN")
    assert 'pip install ".[otel]"' in runs  # tracing ships in the image (bot/tracing.py)
    users = [v for k, v in instructions if k == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith("0:")
    # The user is switched before the process starts, and created by a RUN before that.
    assert keywords.index("USER") < keywords.index("CMD")
    assert "useradd" in runs and users[-1] in runs
    [health] = [v for k, v in instructions if k == "HEALTHCHECK"]
    assert "/healthz" in health and "CMD" in health
    [cmd] = [v for k, v in instructions if k == "CMD"]
    assert json.loads(cmd) == ["haven", "run"]
    assert keywords[-1] == "CMD"


def test_the_healthcheck_command_is_valid_python() -> None:
    [health] = [v for k, v in dockerfile_instructions() if k == "HEALTHCHECK"]
    exec_form = json.loads(health[health.index("CMD") + len("CMD") :].strip())
    assert exec_form[:2] == ["python", "-c"]
    compile(exec_form[2], "<healthcheck>", "exec")
    # The ops port answers in every mode; PORT exists only in Slack's HTTP mode.
    assert "HAVEN_OPS_PORT" in exec_form[2] and "'PORT'" not in exec_form[2]
    envs = " ".join(v for k, v in dockerfile_instructions() if k == "ENV")
    assert "HAVEN_OPS_PORT=" in envs


def test_compose_runs_haven_with_postgresql() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    services = compose["services"]
    haven, db = services["haven"], services["db"]
    assert haven["build"] == "."
    env_file = haven["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)
    url = haven["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql://haven:") and "@db:5432/haven" in url
    assert haven["depends_on"]["db"]["condition"] == "service_healthy"
    assert db["image"].startswith("postgres:")
    [volume] = db["volumes"]
    name, mount = volume.split(":", 1)
    assert mount == "/var/lib/postgresql/data" and name in compose["volumes"]
    assert db["environment"]["POSTGRES_DB"] == "haven" and db["environment"]["POSTGRES_USER"] == "haven"
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    # No password is written down: it comes from .env.
    assert "${POSTGRES_PASSWORD" in db["environment"]["POSTGRES_PASSWORD"]


def test_the_build_context_leaves_out_secrets_and_the_venv() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for entry in (".env", ".venv", ".git"):
        assert entry in ignored


def test_the_readme_shows_compose_next_to_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    two_commands = readme.index("scripts/test    #")
    assert "docker compose up" in readme[two_commands : two_commands + 3000]


def test_ci_builds_the_image_only_when_docker_is_there() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = [shlex.split(line, comments=True) for line in ci.splitlines()]
    assert any(words[:3] == ["if", "command", "-v"] and "docker" in words for words in lines)
