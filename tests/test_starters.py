"""The ``prompts`` workspace setting: how an admin's text becomes a list (a table), its limits, its audit,
and which list a new assistant thread shows (``bot.starters.prompts_for``). The same at the wire, through
Slack's signed ``/haven settings prompts`` and ``assistant_thread_started``, is in
``tests/slack/test_assistant.py``; the CLI's in ``tests/test_cli.py``."""

from __future__ import annotations

import pytest

from bot.admin import Admin, BadSetting, describe_settings
from bot.starters import DEFAULT_PROMPTS, MAX_PROMPT_CHARS, prompts_for
from bot.types import Author
from fakes import MemoryStore

ADMIN = Author("U9", "Admin", is_platform_admin=True)


@pytest.mark.parametrize(
    ("typed", "saved"),
    [
        ("Plan my week", ("Plan my week",)),
        ("Plan my week | Explain a diff", ("Plan my week", "Explain a diff")),
        ("Plan my week\nExplain a diff\n", ("Plan my week", "Explain a diff")),  # one per line (CLI, stdin)
        (
            "  Plan   my week |  | Plan my week ",
            ("Plan my week",),
        ),  # spaces folded, blanks and repeats dropped
        ("a | b | c | d", ("a", "b", "c", "d")),  # Slack's four
        ("none", ()),  # no suggestions at all
        ("off", ()),
        ("default", None),  # the process-wide list again
        (" DEFAULT ", None),
    ],
)
async def test_an_admin_s_text_becomes_the_workspace_s_prompts(
    typed: str, saved: tuple[str, ...] | None
) -> None:
    admin = Admin(MemoryStore())
    assert (await admin.change(ADMIN, "slack", "T1", "prompts", typed)).suggested_prompts == saved


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("a | b | c | d | e", r"at most 4 suggested prompts; this list has 5"),
        ("x" * (MAX_PROMPT_CHARS + 1), rf"limited to {MAX_PROMPT_CHARS} characters"),
    ],
)
async def test_too_many_or_too_long_prompts_are_refused_and_change_nothing(typed: str, why: str) -> None:
    store = MemoryStore()
    admin = Admin(store)
    await admin.change(ADMIN, "slack", "T1", "prompts", "Plan my week")
    with pytest.raises(BadSetting, match=why):
        await admin.change(ADMIN, "slack", "T1", "prompts", typed)
    assert (await store.get_settings("slack", "T1")).suggested_prompts == ("Plan my week",)
    [record] = await store.list_admin_audit("slack", "T1")
    assert (record.setting, record.old, record.new) == ("prompts", None, ["Plan my week"])


async def test_the_settings_list_shows_which_prompts_apply() -> None:
    admin = Admin(MemoryStore())
    shown = dict(describe_settings(await admin.settings(ADMIN, "slack", "T1")))
    assert shown["prompts"] == "built-in default"
    saved = await admin.change(ADMIN, "slack", "T1", "prompts", "a | b")
    assert dict(describe_settings(saved))["prompts"] == "a | b"
    assert (
        dict(describe_settings(await admin.change(ADMIN, "slack", "T1", "prompts", "none")))["prompts"]
        == "none"
    )


@pytest.mark.parametrize(
    ("workspace", "default", "shown"),
    [
        (None, DEFAULT_PROMPTS, DEFAULT_PROMPTS),  # never set: the process-wide list
        (("Mine",), DEFAULT_PROMPTS, ("Mine",)),  # the workspace's own, first
        ((), DEFAULT_PROMPTS, ()),  # set to none: none, even though the process has a list
        (None, (), ()),
    ],
)
def test_which_list_a_new_thread_shows(
    workspace: tuple[str, ...] | None, default: tuple[str, ...], shown: tuple[str, ...]
) -> None:
    assert prompts_for(workspace, default) == shown
