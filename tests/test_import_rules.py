"""The layering rules of DESIGN.md §2, checked on the source: the core imports no adapter, no storage and
no platform SDK; adapters reach storage only through the engine, and are composed in by the composition
root without importing it (they are handed ``bot.ports.CoreServices``).

Every import counts — at module level, inside functions and under ``TYPE_CHECKING`` alike — and so does
``importlib.import_module("…")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The composition root: the only modules of bot/ that wire storage and adapters in.
COMPOSITION_ROOT = {
    "bot/app.py",
    "bot/cli.py",
    "bot/connectors.py",
    "bot/scheduler.py",
    "bot/metrics.py",  # the one home of prometheus_client (the core counts through bot.ports.MetricsSink)
    "bot/ops.py",
}
# Operations libraries: the composition root builds them in; the core and the adapters never import them.
OPS_LIBRARIES = {"prometheus_client"}
PLATFORM_SDKS = {"slack_bolt", "slack_sdk", "discord", "anthropic"}
# The Anthropic seam: the one core module that may talk to the Anthropic SDK.
SDK_SEAMS = {"bot/claude.py": {"anthropic"}}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in ``source``, the module ``module``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            yield node.lineno, base
            for alias in node.names:  # ``from storage import repository`` names a module too
                yield node.lineno, f"{base}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def forbidden_for(rel: str) -> set[str]:
    """The modules and packages the file at ``rel`` (relative to the repository) must not import."""
    if rel.startswith("adapters/"):
        return {"storage", *OPS_LIBRARIES, *(module_name(ROOT / r) for r in COMPOSITION_ROOT)}
    if rel.startswith("bot/") and rel not in COMPOSITION_ROOT:
        return {"adapters", "storage", *PLATFORM_SDKS, *OPS_LIBRARIES} - SDK_SEAMS.get(rel, set())
    return set()


def is_banned(name: str, banned: set[str]) -> bool:
    return any(name == b or name.startswith(b + ".") for b in banned)


def violations(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    banned = forbidden_for(rel)
    found = imported_modules(
        path.read_text(encoding="utf-8"), module_name(path), is_package=path.name == "__init__.py"
    )
    first: dict[int, str] = {}  # one report per line: ``from storage.db import X`` names storage.db
    for line, name in found:
        if is_banned(name, banned):
            first.setdefault(line, name)
    return [f"{rel}:{line} imports {name}" for line, name in sorted(first.items())]


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", ["bot", "adapters"])
def test_layers_import_only_what_they_may(package: str) -> None:
    files = sources(package)
    assert files, f"no sources found under {package}/"
    bad = [v for path in files for v in violations(path)]
    assert not bad, "imports across the layers (see DESIGN.md §2):\n" + "\n".join(bad)


def test_the_composition_root_exists_and_says_so() -> None:
    for rel in sorted(COMPOSITION_ROOT):
        doc = ast.get_docstring(ast.parse((ROOT / rel).read_text(encoding="utf-8"))) or ""
        assert "composition root" in doc.lower(), f"{rel}: its docstring should say it is composition root"


@pytest.mark.parametrize(
    ("rel", "source", "caught"),
    [
        ("bot/engine.py", "from storage.repository import Repository", True),
        ("bot/engine.py", "import storage", True),
        ("bot/engine.py", "from storage import repository", True),
        ("bot/engine.py", "if TYPE_CHECKING:\n    from storage.repository import Repository", True),
        ("bot/engine.py", "def f():\n    import discord", True),
        ("bot/engine.py", "import slack_sdk.errors", True),
        ("bot/engine.py", "from adapters.slack import translate", True),
        ("bot/engine.py", "importlib.import_module('adapters.terminal')", True),
        ("bot/engine.py", "import anthropic", True),
        ("bot/detectors/risk.py", "from ...storage import db", True),  # resolves above bot/: still caught
        ("bot/claude.py", "import anthropic", False),
        ("bot/claude.py", "from storage import db", True),
        ("bot/app.py", "from storage.db import open_database", False),
        ("adapters/slack/app.py", "from storage.repository import Repository", True),
        ("adapters/slack/app.py", "from slack_bolt.async_app import AsyncApp", False),
        ("adapters/slack/app.py", "from bot.engine import Engine", False),
        ("adapters/slack/app.py", "from bot.ports import CoreServices", False),
        ("adapters/discord/handler.py", "from bot.app import Services", True),
        ("adapters/discord/handler.py", "if TYPE_CHECKING:\n    from bot import app", True),
        ("adapters/discord/handler.py", "from bot.application import x", False),
        ("bot/engine.py", "from bot.ports import ConversationStore", False),
        ("bot/engine.py", "import storagex", False),
        ("bot/engine.py", "from prometheus_client import Counter", True),
        ("bot/ports.py", "import prometheus_client", True),
        ("adapters/slack/retry.py", "from prometheus_client import Counter", True),
        ("adapters/slack/retry.py", "from bot.metrics import Metrics", True),
        ("bot/metrics.py", "from prometheus_client import Counter", False),
        ("bot/ops.py", "from prometheus_client import generate_latest", False),
    ],
)
def test_the_check_sees_every_kind_of_import(rel: str, source: str, caught: bool) -> None:
    path = ROOT / rel
    module = module_name(path)
    names = [name for _, name in imported_modules(source, module)]
    assert any(is_banned(n, forbidden_for(rel)) for n in names) is caught, names
