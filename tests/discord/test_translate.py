"""The adapter's pure functions: splitting, nonces, links and ids."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.translate import (
    MESSAGE_LIMIT,
    dm_number,
    dm_thread,
    edit_key,
    guild_thread,
    is_dm,
    jump_url,
    nonce_for,
    parse_message_link,
    split_message,
    target_channel_id,
    thread_name,
)


def fences(text: str) -> int:
    return text.count("```")


def test_short_text_is_one_message_and_blank_is_none() -> None:
    assert split_message("hello") == ["hello"]
    assert split_message("x" * MESSAGE_LIMIT) == ["x" * MESSAGE_LIMIT]
    assert split_message("\n\n  \n") == []


def test_prose_splits_at_line_breaks() -> None:
    paragraphs = [f"Paragraph {i}: " + "words " * 60 for i in range(12)]
    text = "\n\n".join(paragraphs)
    parts = split_message(text)
    assert len(parts) > 1 and all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert all(p.startswith("Paragraph") or p.startswith("\n") is False for p in parts)
    assert "".join(parts).replace("\n", "") == text.replace("\n", "")


def test_a_code_block_across_the_limit_is_closed_and_reopened_with_its_language() -> None:
    code = "\n".join(f"x_{i} = {i} * 2  # a comment to make the line longer" for i in range(60))
    text = f"Intro line.\n```python\n{code}\n```\nOutro."
    parts = split_message(text)
    assert len(parts) == 2
    assert all(len(p) <= MESSAGE_LIMIT and fences(p) % 2 == 0 for p in parts)
    assert parts[0].endswith("\n```") and parts[1].startswith("```python\n")
    assert parts[1].endswith("Outro.")


def test_a_single_huge_line_is_cut_hard_and_never_inside_a_fence_marker() -> None:
    text = "a" * 1990 + "```" + "b" * 3000
    parts = split_message(text)
    assert all(len(p) <= MESSAGE_LIMIT and fences(p) % 2 == 0 for p in parts)
    joined = "".join(p.replace("`", "").replace("\n", "") for p in parts)
    assert joined == text.replace("`", "")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(["word ", "longerword ", "\n", "\n\n", "```", "```\n", "`", "x" * 120, " "]),
        max_size=400,
    )
)
def test_every_chunk_fits_and_has_balanced_fences(pieces: list[str]) -> None:
    text = "".join(pieces)
    parts = split_message(text)
    for part in parts:
        assert len(part) <= MESSAGE_LIMIT
        # A reply that fits is sent as written; once split, every message closes what it opens.
        assert fences(part) % 2 == 0 or parts == [text.strip("\n")]
    # Nothing is lost: only fences and line breaks are added.
    squash = re.compile(r"[`\s]")
    assert squash.sub("", "".join(parts)) == squash.sub("", text)


def test_nonces_are_stable_distinct_and_short() -> None:
    a = nonce_for("123", "reply", 0)
    assert a == nonce_for("123", "reply", 0)
    assert len({a, nonce_for("123", "reply", 1), nonce_for("123", "closure"), nonce_for("124", "reply")}) == 4
    assert len(a) <= 25


def test_message_links() -> None:
    link = parse_message_link("https://discord.com/channels/1/22/333")
    assert link is not None and (link.guild_id, link.channel_id, link.message_id) == (1, 22, 333)
    dm = parse_message_link(" https://ptb.discord.com/channels/@me/44/555 ")
    assert dm is not None and dm.guild_id is None and dm.message_id == 555
    assert parse_message_link("https://canary.discordapp.com/channels/1/2/3") is not None
    assert parse_message_link("https://example.com/channels/1/2/3") is None
    assert parse_message_link("not a link") is None


def test_thread_names() -> None:
    assert thread_name("  hello\n  there ") == "hello there"
    assert thread_name("") == "Haven"
    long = thread_name("word " * 50)
    assert len(long) <= 80 and long.endswith("…")


def test_thread_refs() -> None:
    ref = guild_thread(1, 2, 3)
    assert (ref.platform, ref.workspace, ref.channel, ref.thread) == ("discord", "1", "2", "3")
    assert (
        not is_dm(ref) and target_channel_id(ref) == 3 and jump_url(ref) == "https://discord.com/channels/1/3"
    )
    dm = dm_thread(55, 4)
    assert is_dm(dm) and dm.workspace == "dm" and dm.thread == "55:4" and dm_number(dm) == 4
    assert target_channel_id(dm) == 55 and jump_url(dm) == "https://discord.com/channels/@me/55"


def test_a_redelivered_edit_has_the_same_key_and_every_new_edit_another() -> None:
    key = edit_key(10, 20, "2026-12-02T06:00:00+00:00")
    assert key == edit_key(10, 20, "2026-12-02T06:00:00+00:00")
    assert key != edit_key(10, 20, "2026-12-02T06:00:01+00:00")
    assert key != edit_key(10, 21, "2026-12-02T06:00:00+00:00")
