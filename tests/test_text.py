"""``bot.text.split_head``: the first message of a reply that may already be streaming, cut by the same
rules as ``split``."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.text import FENCE, split, split_head

CLOSE = "\n" + FENCE


@pytest.mark.parametrize(
    ("text", "limit", "lo", "head", "rest"),
    [
        ("short", 100, 0, "short", ""),
        # A paragraph break first, then a line break, then a space.
        ("a" * 40 + "\n\n" + "b" * 40, 60, 0, "a" * 40, "b" * 40),
        ("a" * 40 + "\n" + "b" * 40, 60, 0, "a" * 40, "b" * 40),
        ("a" * 40 + " " + "b" * 40, 60, 0, "a" * 40 + " ", "b" * 40),
        # Not before what a stream already showed: the break at 10 is too early, the one at 45 is taken.
        ("a" * 10 + "\n\n" + "b" * 33 + "\n\n" + "c" * 40, 60, 20, "a" * 10 + "\n\n" + "b" * 33, "c" * 40),
    ],
)
def test_the_head_is_cut_at_the_best_break_not_before_lo(
    text: str, limit: int, lo: int, head: str, rest: str
) -> None:
    assert split_head(text, limit, lo) == (head, rest)


def test_a_cut_inside_a_code_block_closes_it_and_the_rest_reopens_it_with_its_language() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(40))
    head, rest = split_head(f"intro\n```python\n{code}\n```", 120)
    assert head.endswith(CLOSE) and head.count(FENCE) == 2
    assert rest.startswith("```python\n")


def test_the_head_is_the_first_message_split_would_send() -> None:
    text = "\n\n".join(f"paragraph {i} " + "word " * 20 for i in range(10))
    assert split_head(text, 300)[0].rstrip() == split(text, 300)[0].rstrip()


@given(
    st.text(alphabet=st.sampled_from(list("ab `\n&<>*_")), max_size=2000),
    st.integers(40, 400),
    st.floats(0, 0.9),
)
@settings(max_examples=200, deadline=None)
def test_the_head_is_a_prefix_within_the_limit_and_nothing_is_lost(text: str, limit: int, at: float) -> None:
    lo = int((limit - len(CLOSE)) * at)
    head, rest = split_head(text, limit, lo)
    assert len(head) <= limit
    closed = not text.startswith(head)  # the cut fell inside a code block, which the head closes
    core = head.removesuffix(CLOSE) if closed else head
    assert text.startswith(core)
    if len(text) > limit:
        assert len(core) >= lo  # a stream that showed text[:lo] can end with this head
    if closed:
        opener, _, body = rest.partition("\n")
        assert opener.startswith(FENCE) and body == text[len(core) :].lstrip("\n")
    else:
        assert rest == text[len(core) :].strip()
