"""Replies reach Slack as the model's standard Markdown (``markdown_text``), which Slack renders itself.

The constructs a home-made Markdown → mrkdwn converter got wrong (``***x***``, links with parentheses in
the URL) and the ones it could only approximate (nested lists, tables) are checked by what the mock Slack
Web API receives: exactly the model's text, with no ``text`` beside it (Slack does not take both). Long
replies are split at the Markdown limit, a code block cut in two closed and reopened.
"""

from __future__ import annotations

import pytest

from adapters.slack import reply as live_reply
from adapters.slack.translate import REPLY_EVENT, split_markdown
from fakes.fake_anthropic import text
from fakes.slack_harness import SlackHarness

TRICKY = "\n".join(
    [
        "***All of this matters*** and so does **bold _with italic_ inside**.",
        "See [the docs](https://en.wikipedia.org/wiki/Rust_(programming_language)) and "
        "[a query](https://example.com/search?q=(a+b)*c&x=1).",
        "",
        "- top level",
        "  - nested *once*",
        "    1. nested twice, numbered",
        "- back to the top",
        "",
        "| step | owner |",
        "| ---- | ----- |",
        "| plan | `ana` |",
        "",
        "```python",
        "def f(x):",
        "    return x * 2  # **not bold** in code",
        "```",
        "~~gone~~ and a < b & c > d.",
    ]
)


async def test_a_reply_goes_to_slack_as_the_models_markdown_verbatim(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text(TRICKY))
    root = lite.ts()

    await lite.mention("show me everything", ts=root)

    [message] = lite.shown(root)  # streamed: the reply is long enough to be shown while written
    assert message["text"] == TRICKY and message["format"] == "markdown"
    assert lite.slack.count("chat.startStream") == 1 and lite.posts() == []
    assert not any("text" in c.args for c in lite.slack.calls if c.method.startswith("chat."))


async def test_without_streaming_the_post_and_its_updates_carry_the_markdown(lite: SlackHarness) -> None:
    lite.slack.refuse_streaming("unknown_method")
    lite.anthropic.enqueue(text(TRICKY))
    root = lite.ts()

    await lite.mention("show me everything", ts=root)

    [post] = lite.posts(thread_ts=root)
    assert "text" not in post and TRICKY.startswith(post["markdown_text"])
    assert all("text" not in u for u in lite.slack.calls_to("chat.update"))
    [message] = lite.shown(root)
    assert message["text"] == TRICKY and message["format"] == "markdown"


async def test_a_quick_reply_post_is_marked_for_recovery(lite: SlackHarness) -> None:
    """A Markdown post still carries the inbox entry's mark (what recovery looks for before redrawing)."""
    lite.anthropic.enqueue(text("***Done.*** See [this](https://example.com/a_(b))."))
    root = lite.ts()

    await lite.mention("quick one", ts=root)

    [post] = lite.posts(thread_ts=root)
    assert post["markdown_text"] == "***Done.*** See [this](https://example.com/a_(b))."
    assert post["metadata"]["event_type"] == REPLY_EVENT
    assert post["metadata"]["event_payload"]["item"] == "reply.0"


async def test_a_long_reply_without_streaming_is_split_at_the_markdown_limit_with_fences_intact(
    lite: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live_reply, "MAX_MARKDOWN_CHARS", 2500)
    lite.slack.refuse_streaming("unknown_method")
    code = "\n".join(f"total_{i} = add(total_{i - 1}, {i})  # running sum, step {i}" for i in range(1, 120))
    reply = f"***Here it is:***\n\n```python\n{code}\n```\n\n1. run it\n   - twice\n\nDone."
    lite.anthropic.enqueue(text(reply))
    root = lite.ts()

    await lite.mention("write code", ts=root)

    shown = lite.shown(root)
    assert len(shown) >= 3 and all(m["format"] == "markdown" for m in shown)
    assert all(len(m["text"]) <= 2500 for m in shown)
    assert all(m["text"].count("```") % 2 == 0 for m in shown)  # closed at each cut …
    assert all(m["text"].lstrip().startswith("```python") for m in shown[1:-1])  # … and reopened
    joined = "".join(m["text"] for m in shown)
    assert all(f"total_{i} = add" in joined for i in range(1, 120))
    assert shown[0]["text"].startswith("***Here it is:***") and shown[-1]["text"].endswith("Done.")
    assert all("text" not in p for p in lite.posts(thread_ts=root))


def test_split_markdown_keeps_short_text_whole_and_reopens_code_with_its_language() -> None:
    assert split_markdown(TRICKY) == [TRICKY]
    code = "\n".join(f"x_{i} = {i}" for i in range(400))
    parts = split_markdown(f"Intro.\n\n```rust\n{code}\n```\nEnd.", 1000)
    assert len(parts) > 3 and all(len(p) <= 1000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert all(p.startswith("```rust\n") for p in parts[1:])
