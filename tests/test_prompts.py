"""What the model is told: the §1.3 rules in the system prompt, and tool schemas matching the engine."""

from __future__ import annotations

import json

from bot.context import build_request
from bot.policy import Verdict
from bot.prompts import CRISIS_TOOL, END_TOOL, SYSTEM_PROMPT, TOOL_RESULTS, TOOLS
from bot.types import EndReason


def test_system_prompt_states_the_policy() -> None:
    p = SYSTEM_PROMPT.lower()
    for rule in (
        "redirect first",
        "warn explicitly",
        "names the behaviour",
        "last resort",
        "confirm",
        "never end a conversation",
        "never mention ending",
        "respond with care",
        "write nothing more",
        "independent check",  # the soft mark: an ending then needs the verifier's "no risk"
        "never ended",  # share_crisis_resources is a hard signal
    ):
        assert rule in p, rule
    assert END_TOOL in SYSTEM_PROMPT and CRISIS_TOOL in SYSTEM_PROMPT


def test_tool_schemas_match_the_engine() -> None:
    by_name = {t["name"]: t for t in TOOLS}
    assert set(by_name) == {END_TOOL, CRISIS_TOOL}
    end = by_name[END_TOOL]["input_schema"]
    assert set(end["properties"]["reason"]["enum"]) == {EndReason.USER_REQUEST.value, EndReason.ABUSE.value}
    assert end["required"] == ["reason", "note"]
    assert by_name[CRISIS_TOOL]["input_schema"]["properties"]["concern"]["enum"] == [
        "self_harm",
        "harm_to_others",
        "crisis",
    ]
    # No admin powers are ever offered to the model.
    assert not any("admin" in t["name"] or "setting" in t["name"] for t in TOOLS)


def test_every_verdict_has_a_tool_result() -> None:
    assert set(TOOL_RESULTS) == set(Verdict)
    assert "do not mention ending" in TOOL_RESULTS[Verdict.VETO_RISK].lower()


def test_prefix_is_byte_stable() -> None:
    a = build_request([], max_tokens=100, budget_tokens=10_000)
    b = build_request([], max_tokens=100, budget_tokens=10_000)
    assert json.dumps([a.tools, a.system]) == json.dumps([b.tools, b.system])
    assert a.tools[-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in TOOLS[-1]  # the shared schema itself is never mutated
