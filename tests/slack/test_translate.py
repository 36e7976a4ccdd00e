"""The pure translations: events → messages, Slack markup → text, Markdown → mrkdwn, splitting, links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.slack.translate import (
    THREAD_TITLE_CHARS,
    drawn_items,
    edit_from_event,
    escape,
    ids_in,
    is_workspace_admin,
    markdown_to_mrkdwn,
    message_from_event,
    parse_command,
    parse_message_link,
    quote,
    reply_mark,
    slack_to_text,
    split_link_and_text,
    split_message,
    thread_title,
    user_display,
)
from bot.types import Author, Origin

TEAM, BOT = "T1", "UBOT"


def ev(**kw: Any) -> dict[str, Any]:
    base = {"type": "message", "user": "U1", "text": "hi", "ts": "1700000000.000100", "channel": "C1"}
    return base | kw


def parse(event: dict[str, Any], kind: str = "message") -> Any:
    return message_from_event(event, event_type=kind, team_id=TEAM, bot_user_id=BOT)


# -- events --------------------------------------------------------------------------------------------


def test_top_level_mention_threads_under_itself() -> None:
    msg = parse(ev(type="app_mention", text=f"<@{BOT}> hello"), "app_mention")
    assert msg.origin is Origin.MENTION
    assert (msg.thread.workspace, msg.thread.channel, msg.thread.thread) == (TEAM, "C1", "1700000000.000100")
    assert msg.text == "hello"
    assert msg.dedupe_key == "C1:1700000000.000100"


def test_mention_copy_and_thread_reply_share_the_dedupe_key() -> None:
    reply = ev(ts="1700000000.000200", thread_ts="1700000000.000100", text=f"<@{BOT}> more")
    as_mention = parse(reply | {"type": "app_mention"}, "app_mention")
    as_message = parse(reply)
    assert as_mention.dedupe_key == as_message.dedupe_key == "C1:1700000000.000200"
    assert as_mention.thread == as_message.thread
    assert as_message.origin is Origin.THREAD_REPLY


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (ev(channel_type="channel"), None),  # top-level channel chatter: only a mention starts
        (ev(channel_type="im", channel="D1"), Origin.DIRECT),
        (ev(channel_type="mpim"), None),
        # A DM thread (Slack's assistant threads among them) is Haven's: its messages start or continue.
        (ev(channel_type="im", channel="D1", thread_ts="1600000000.000001"), Origin.DIRECT),
        (
            ev(channel_type="im", channel="D1", thread_ts="1600000000.000001", subtype="file_share"),
            Origin.DIRECT,
        ),
        (ev(channel_type="im", channel="D1", thread_ts="1600000000.000001", bot_id="B2"), None),
        (ev(channel_type="im", channel="D1", thread_ts="1600000000.000001", user=BOT), None),
        (ev(channel_type="mpim", thread_ts="1600000000.000001"), Origin.THREAD_REPLY),  # a group DM is not
        (ev(thread_ts="1700000000.000100"), None),  # thread_ts == ts: the parent itself
        (ev(thread_ts="1600000000.000001"), Origin.THREAD_REPLY),
        (ev(thread_ts="1600000000.000001", subtype="thread_broadcast"), Origin.THREAD_REPLY),
        (ev(thread_ts="1600000000.000001", subtype="file_share"), Origin.THREAD_REPLY),
        (ev(thread_ts="1600000000.000001", subtype="bot_message", bot_id="B1"), None),
        (ev(thread_ts="1600000000.000001", bot_id="B2"), None),
        (ev(thread_ts="1600000000.000001", user=BOT), None),
        (ev(thread_ts="1600000000.000001", subtype="channel_join"), None),
        (ev(thread_ts="1600000000.000001", subtype="message_changed"), None),
        (ev(thread_ts="1600000000.000001", subtype="message_deleted"), None),
        ({"type": "message", "channel": "C1", "ts": "1.2", "thread_ts": "1.1"}, None),  # no user
    ],
)
def test_what_is_a_message_for_haven(event: dict[str, Any], expected: Origin | None) -> None:
    msg = parse(event)
    assert (msg.origin if msg else None) is expected


def test_dm_thread_reply_and_im_top_level() -> None:
    top = parse(ev(channel="D1", channel_type="im"))
    assert top.thread.thread == top.ts
    reply = parse(ev(channel="D1", channel_type="im", ts="1700000000.000300", thread_ts=top.ts))
    assert reply.thread == top.thread and reply.origin is Origin.DIRECT
    assert reply.dedupe_key == "D1:1700000000.000300"


def test_an_assistant_thread_message_is_a_direct_message_of_its_thread() -> None:
    # Slack's AI-app split view: the thread is opened by Slack (assistant_thread_started), not by a
    # message of the person's, so its first message is already a thread reply in the DM.
    first = parse(ev(channel="D1", channel_type="im", ts="1700000000.000500", thread_ts="1700000000.000400"))
    assert first.origin is Origin.DIRECT and first.incoming(Author("U1", "ana")).starts_conversation
    assert (first.thread.workspace, first.thread.channel, first.thread.thread) == (
        TEAM,
        "D1",
        "1700000000.000400",
    )


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Help me plan my week", "Help me plan my week"),
        ("\n\n  Plan   my\tweek  \nwith details below", "Plan my week"),
        ("x" * 80, "x" * 59 + "…"),
        ("word " * 20, "word word word word word word word word word word word…"),
        ("Explain this, please, in plain words: " + "y" * 40, "Explain this, please, in plain words…"),
        ("", ""),
    ],
)
def test_thread_title_is_the_first_line_cut_at_a_word(text: str, title: str) -> None:
    assert thread_title(text) == title
    assert len(thread_title(text)) <= THREAD_TITLE_CHARS


def test_edit_events() -> None:
    changed: dict[str, Any] = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "message": {"user": "U1", "text": "new", "ts": "5.1", "thread_ts": "5.0", "edited": {"ts": "6.0"}},
        "previous_message": {"user": "U1", "text": "old", "ts": "5.1", "thread_ts": "5.0"},
    }
    edit = edit_from_event(changed, team_id=TEAM, bot_user_id=BOT)
    assert edit is not None
    assert (edit.thread.thread, edit.ts, edit.raw_text, edit.edit_key) == (
        "5.0",
        "5.1",
        "new",
        "edit:C1:5.1:6.0",
    )
    unfurl = changed | {"previous_message": {**changed["message"]}}
    assert edit_from_event(unfurl, team_id=TEAM, bot_user_id=BOT) is None
    from_bot = changed | {"message": {**changed["message"], "bot_id": "B1"}}
    assert edit_from_event(from_bot, team_id=TEAM, bot_user_id=BOT) is None
    assert edit_from_event(ev(), team_id=TEAM, bot_user_id=BOT) is None


# -- Slack markup → text -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slack", "plain"),
    [
        (f"<@{BOT}> hello", "hello"),
        (f"hey <@{BOT}|haven>, look", "hey , look"),
        ("ask <@U2> please", "ask <@U2> please"),
        ("see <#C1|general>", "see #general"),
        ("<!here> standup", "@here standup"),
        ("<!subteam^S1|@oncall> ping", "@oncall ping"),
        (
            "<https://example.com|the docs> and <https://x.org>",
            "the docs (https://example.com) and https://x.org",
        ),
        ("<mailto:a@b.c|a@b.c>", "a@b.c"),
        ("1 &lt; 2 &amp;&amp; 3 &gt; 2", "1 < 2 && 3 > 2"),
        ("&amp;lt; stays literal", "&lt; stays literal"),
    ],
)
def test_slack_to_text(slack: str, plain: str) -> None:
    assert slack_to_text(slack, BOT) == plain


def test_escape_and_quote() -> None:
    assert escape("a < b & c > d") == "a &lt; b &amp; c &gt; d"
    assert quote("one\n\ntwo") == ">one\n>\n>two"


@given(st.text(alphabet=st.sampled_from(list("ab &;<>lgtmp \t\n|@#!")), max_size=200))
@settings(max_examples=300, deadline=None)
def test_escaped_text_reads_back_unchanged(text: str) -> None:
    """What a person typed into a modal survives escape() for Slack and slack_to_text() back."""
    assert "<" not in escape(text) and ">" not in escape(text)
    assert slack_to_text(escape(text)) == re.sub(r"[ \t]{2,}", " ", text).strip()


# -- Markdown → mrkdwn -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("md", "mrkdwn"),
    [
        ("**bold** and *italic* and _also_", "*bold* and _italic_ and _also_"),
        ("__bold__ ~~gone~~", "*bold* ~gone~"),
        ("# Title\n## Sub **x**", "*Title*\n*Sub x*"),
        ("- one\n* two\n  + nested", "• one\n• two\n  • nested"),
        (
            "[docs](https://example.com/a_b) and <https://x.org>",
            "<https://example.com/a_b|docs> and <https://x.org>",
        ),
        ("![diagram](https://img.example/x.png)", "<https://img.example/x.png|diagram>"),
        ("a < b && c > d", "a &lt; b &amp;&amp; c &gt; d"),
        ("> quoted **line**", "> quoted *line*"),
        ("use `a <b> **c**` here", "use `a &lt;b&gt; **c**` here"),
        ("---", "──────────"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("snake_case_name stays", "snake_case_name stays"),
    ],
)
def test_markdown_to_mrkdwn(md: str, mrkdwn: str) -> None:
    assert markdown_to_mrkdwn(md) == mrkdwn


def test_code_blocks_are_kept_verbatim_without_language() -> None:
    md = "Try:\n\n```python\nif a < b and **kw:\n    print('*x*')\n```\nDone."
    assert markdown_to_mrkdwn(md) == "Try:\n\n```\nif a &lt; b and **kw:\n    print('*x*')\n```\nDone."


def test_tables_become_monospace() -> None:
    md = "| a | b |\n|---|---|\n| 1 | 2 |\n\nafter"
    out = markdown_to_mrkdwn(md)
    assert out.startswith("```\n| a | b |") and out.endswith("```\n\nafter")


def test_unclosed_fence_still_renders_as_code() -> None:
    assert markdown_to_mrkdwn("```\nno end") == "```\nno end\n```"


# -- splitting ---------------------------------------------------------------------------------------------


def test_short_text_is_one_part() -> None:
    assert split_message("hello", 100) == ["hello"]
    assert split_message("   ", 100) == []


def test_split_prefers_paragraphs_then_lines() -> None:
    text = ("word " * 30).strip() + "\n\n" + ("more " * 30).strip()
    parts = split_message(text, 200)
    assert parts == [("word " * 30).strip(), ("more " * 30).strip()]


def test_split_inside_a_code_block_closes_and_reopens_it() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(100))
    parts = split_message(f"intro\n```\n{code}\n```\noutro", 300)
    assert len(parts) > 2
    for part in parts:
        assert len(part) <= 300
        assert part.count("```") % 2 == 0
    assert parts[1].startswith("```\n")
    rebuilt = "".join(p.replace("```\n", "").replace("\n```", "") for p in parts)
    assert all(f"x{i} = {i}" in rebuilt for i in range(100))


def test_split_never_cuts_an_entity_or_a_link() -> None:
    text = "a" * 95 + "&amp;" + "b" * 200
    parts = split_message(text, 100)
    assert all("&am" not in p or "&amp;" in p for p in parts)
    link = "<https://example.com/" + "p" * 50 + "|label>"
    parts = split_message("x" * 80 + link + "y" * 100, 100)
    assert any(link in p for p in parts)


@given(st.text(alphabet=st.sampled_from(list("ab `\n&<>*_~#-|")), max_size=3000), st.integers(40, 500))
@settings(max_examples=150, deadline=None)
def test_split_respects_the_limit_and_keeps_fences_balanced(text: str, limit: int) -> None:
    mrkdwn = markdown_to_mrkdwn(text)
    parts = split_message(mrkdwn, limit)
    for part in parts:
        assert len(part) <= limit
    if mrkdwn.count("```") % 2 == 0:
        assert all(p.count("```") % 2 == 0 for p in parts)
    assert "".join(parts).replace("```", "").replace("\n", "").replace(" ", "") == (
        mrkdwn.replace("```", "").replace("\n", "").replace(" ", "")
    )


# -- links and commands -----------------------------------------------------------------------------------


def test_message_links() -> None:
    link = parse_message_link("https://acme.slack.com/archives/C0123ABC/p1700000000123456")
    assert link is not None and (link.channel, link.ts, link.thread) == (
        "C0123ABC",
        "1700000000.123456",
        link.ts,
    )
    reply = parse_message_link(
        "<https://acme.slack-gov.com/archives/C0123ABC/p1700000001000200?thread_ts=1700000000.123456&cid=C0123ABC>"
    )
    assert reply is not None and (reply.ts, reply.thread) == ("1700000001.000200", "1700000000.123456")
    assert parse_message_link("https://example.com/not/a/slack/link") is None


def test_link_and_text() -> None:
    link, text = split_link_and_text("https://a.slack.com/archives/C1/p1700000000000100 new words here")
    assert link is not None and link.channel == "C1" and text == "new words here"
    assert split_link_and_text("no link here") == (None, "no link here")


def test_ids_in_escaped_command_text() -> None:
    assert ids_in("<@U1|ana> <@U2> <#C9|general>") == "U1 U2 C9"
    assert ids_in("3") == "3"


def test_parse_command() -> None:
    assert parse_command("  Resources  set de ") == ("resources", "set de")
    assert parse_command("") == ("", "")


def test_users() -> None:
    user = {"id": "U1", "team_id": TEAM, "name": "al", "profile": {"display_name": "", "real_name": "Al B"}}
    assert user_display(user) == "Al B"
    assert not is_workspace_admin(user, TEAM)
    assert is_workspace_admin(user | {"is_admin": True}, TEAM)
    assert is_workspace_admin(user | {"is_owner": True}, TEAM)
    assert not is_workspace_admin(user | {"is_admin": True, "team_id": "TOTHER"}, TEAM)  # Slack Connect
    assert not is_workspace_admin(user | {"is_admin": True, "deleted": True}, TEAM)


def _posted(meta: object) -> dict[str, Any]:
    return {"type": "message", "ts": "1.000200", "metadata": meta}


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        pytest.param([], frozenset(), id="nothing-posted"),
        pytest.param(
            [_posted(reply_mark("E1", "crisis")), _posted(reply_mark("E1", "reply.0"))],
            frozenset({"crisis", "reply.0"}),
            id="two-items-of-the-entry",
        ),
        pytest.param([_posted(reply_mark("E2", "reply.0"))], frozenset(), id="another-entry"),
        pytest.param([_posted(None), {"ts": "1.2"}], frozenset(), id="people-and-unmarked-posts"),
        pytest.param(
            [_posted({"event_type": "other_app", "event_payload": {"entry": "E1", "item": "reply.0"}})],
            frozenset(),
            id="another-apps-event-type",
        ),
        pytest.param(
            [_posted({"event_type": "haven_reply", "event_payload": "E1"}), _posted("junk")],
            frozenset(),
            id="malformed-metadata",
        ),
        pytest.param(
            [_posted({"event_type": "haven_reply", "event_payload": {"entry": "E1", "item": 3}})],
            frozenset(),
            id="item-not-a-string",
        ),
    ],
)
def test_drawn_items_reads_only_this_entrys_marks(
    messages: list[dict[str, Any]], expected: frozenset[str]
) -> None:
    assert drawn_items(messages, "E1") == expected


def test_ignored_message_is_exactly_what_the_message_listener_drops() -> None:
    """``listeners.conversation.ignored_message``: what HTTP mode acknowledges without Bolt's dispatch."""
    from adapters.slack.listeners.conversation import ignored_message

    def body(**event: Any) -> dict[str, Any]:
        return {
            "type": "event_callback",
            "event": {"type": "message", "user": "U1", "channel": "C1", **event},
        }

    top = {"ts": "1.000001", "text": "<@UBOT> hi", "channel_type": "channel"}
    assert ignored_message(body(**top), "T1", "UBOT")  # the copy of a top-level mention
    assert ignored_message(body(**top, subtype="channel_join"), "T1", "UBOT")
    assert not ignored_message(body(**top, thread_ts="0.5"), "T1", "UBOT")  # a thread reply: the inbox's
    assert not ignored_message(body(**top, subtype="message_changed"), "T1", "UBOT")  # an edit: fork offer
    assert not ignored_message(body(**{**top, "channel_type": "im"}), "T1", "UBOT")  # a DM
    assert not ignored_message({"type": "event_callback", "event": {"type": "app_mention"}}, "T1", "UBOT")
