"""Request building: role merging, cache breakpoints, trimming in steps without orphaning tool results."""

from __future__ import annotations

from bot.context import TRIM_STEP, build_request, trim
from bot.types import HistoryMessage


def turn(i: int, size: int = 10) -> list[HistoryMessage]:
    return [
        HistoryMessage(2 * i, "user", "text", ({"type": "text", "text": f"q{i} " + "x" * size},)),
        HistoryMessage(2 * i + 1, "assistant", "text", ({"type": "text", "text": f"a{i}"},)),
    ]


def test_consecutive_user_messages_merge_into_one() -> None:
    h = [
        *turn(0),
        HistoryMessage(5, "user", "text", ({"type": "text", "text": "b"},)),
        HistoryMessage(6, "user", "text", ({"type": "text", "text": "c"},)),
    ]
    req = build_request(h, max_tokens=10, budget_tokens=100_000)
    assert [m["role"] for m in req.messages] == ["user", "assistant", "user"]
    assert [b["text"] for b in req.messages[-1]["content"]] == ["b", "c"]
    assert req.messages[-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in req.messages[-1]["content"][0]


def test_trimming_drops_old_turns_in_fixed_steps_and_starts_at_a_person() -> None:
    history = [m for i in range(100) for m in turn(i, size=400)]
    kept = trim(history, budget_tokens=12_000)
    assert len(kept) < len(history)
    assert kept[-1] is history[-1]
    assert kept[0].role == "user" and kept[0].kind == "text"
    dropped = len(history) - len(kept)
    assert dropped % TRIM_STEP == 0  # the window moves in whole steps, so the cache survives between steps
    # One more turn does not move the window start (the cached prefix stays valid).
    grown = [*history, *turn(100, size=10)]
    assert trim(grown, budget_tokens=12_000)[0] is kept[0]


def test_small_history_is_untouched() -> None:
    history = turn(0)
    assert trim(history, 100_000) is history


def test_token_tally_counts_only_new_messages_and_matches_a_recount() -> None:
    from bot.context import TokenTally, message_tokens

    tally = TokenTally(max_conversations=2)
    history = [m for i in range(10) for m in turn(i)]
    assert tally.total("c1", history[:6]) == sum(message_tokens(m) for m in history[:6])
    assert tally.total("c1", history) == sum(message_tokens(m) for m in history)
    tally.total("c2", history[:2])
    tally.total("c3", history[:2])  # evicts c1, the least recently used
    assert tally.total("c1", history[:4]) == sum(message_tokens(m) for m in history[:4])


def test_known_tokens_skip_trimming_only_when_under_budget() -> None:
    history = [m for i in range(100) for m in turn(i, size=400)]
    full = build_request(history, max_tokens=10, budget_tokens=12_000, known_tokens=10)
    assert len(full.messages) == len(history)
    honest = build_request(history, max_tokens=10, budget_tokens=12_000, known_tokens=10**6)
    assert len(honest.messages) < len(history)
