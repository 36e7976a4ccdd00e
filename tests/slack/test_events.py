"""Events through the real Bolt app: threads, DMs, what is ignored, retries and signatures."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable

from fakes.fake_anthropic import text
from fakes.slack_harness import ALICE, BOB, BOT, CHANNEL, DM, SlackHarness, post_words, signed_headers


async def test_mention_gets_one_reply_in_its_thread_and_replies_continue(harness: SlackHarness) -> None:
    harness.anthropic.enqueue(text("Hello **Alice**! Here is `code`."), text("Sure, go on."))
    root = harness.ts()

    resp = await harness.mention("can you help me with a plan?", ts=root)

    assert resp.status == 200
    posts = harness.posts()
    assert len(posts) == 1
    assert posts[0]["channel"] == CHANNEL
    assert posts[0]["thread_ts"] == root
    assert post_words(posts[0]) == "Hello **Alice**! Here is `code`."  # Markdown: Slack renders it
    first = harness.model_requests()[0]["messages"]
    assert "can you help me with a plan?" in json.dumps(first)
    assert f"<@{BOT}>" not in json.dumps(first)

    # A reply in the thread, no mention, by someone else: the conversation goes on, in the same thread.
    await harness.reply("and a second point", thread_ts=root, user=BOB)

    assert len(harness.model_requests()) == 2
    assert [p["thread_ts"] for p in harness.posts()] == [root, root]
    history = json.dumps(harness.model_requests()[1]["messages"])
    assert "can you help me with a plan?" in history and "and a second point" in history
    assert "bob" in history  # each message is labelled with its author for the model
    # The history came from Haven's database: Slack was never asked for the thread.
    assert harness.slack.count("conversations.replies") == 0
    assert harness.slack.count("conversations.history") == 0


async def test_message_in_unknown_thread_or_top_level_channel_is_ignored(harness: SlackHarness) -> None:
    stranger = harness.ts()
    await harness.reply("what do you all think?", thread_ts=stranger)
    await harness.event(harness.message("just chatting, no mention", ts=harness.ts()))

    assert harness.model_requests() == []
    assert harness.posts() == []
    assert harness.ephemerals() == []
    assert harness.slack.count("users.info") == 0


async def test_retries_and_the_mention_message_pair_give_one_call_and_one_post(harness: SlackHarness) -> None:
    harness.anthropic.enqueue(text("Only once."))
    root = harness.ts()
    mention = harness.message(f"<@{BOT}> hello there", ts=root, kind="app_mention")
    copy = harness.message(f"<@{BOT}> hello there", ts=root)

    await harness.event(mention)
    await harness.event(copy)
    for attempt in (1, 2, 3):
        assert (await harness.event(mention, retry=attempt)).status == 200
        assert (await harness.event(copy, retry=attempt)).status == 200

    assert len(harness.model_requests()) == 1
    assert len(harness.posts()) == 1


async def test_a_mention_inside_our_thread_is_one_turn_whichever_copy_comes_first(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("first"), text("second"))
    root = lite.ts()
    await lite.mention("start", ts=root)
    reply_ts = lite.ts()
    # In a thread the message copy can arrive before app_mention.
    await lite.event(lite.message(f"<@{BOT}> more please", ts=reply_ts, thread_ts=root))
    await lite.event(lite.message(f"<@{BOT}> more please", ts=reply_ts, thread_ts=root, kind="app_mention"))

    assert len(lite.model_requests()) == 2
    assert [post_words(p) for p in lite.posts(thread_ts=root)] == ["first", "second"]


async def test_messages_in_one_thread_are_answered_in_arrival_order(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("start"), text("to bob"), text("to alice"))
    root = lite.ts()
    await lite.mention("start", ts=root)
    lite.slack.delays["users.info"] = 0.3  # Bob is new: looking him up takes a while; Alice is cached

    async def later(coro: Awaitable[object]) -> None:
        await asyncio.sleep(0.05)
        await coro

    await asyncio.gather(
        lite.reply("bob first", thread_ts=root, user=BOB),
        later(lite.reply("alice second", thread_ts=root, user=ALICE)),
    )

    last = [json.dumps(r["messages"][-1]) for r in lite.model_requests()[1:]]
    assert "bob first" in last[0] and "alice second" in last[1]
    assert [post_words(p) for p in lite.posts(thread_ts=root)] == ["start", "to bob", "to alice"]


async def test_a_mention_in_someone_elses_thread_starts_a_conversation_there(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("Joining in."), text("Still here."))
    parent = lite.ts()
    await lite.mention("what do you think?", ts=lite.ts(), thread_ts=parent)
    await lite.reply("and now?", thread_ts=parent, user=BOB)

    assert [p["thread_ts"] for p in lite.posts()] == [parent, parent]
    assert len(lite.model_requests()) == 2


async def test_direct_message_starts_a_conversation_threaded_under_it(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("Hi in DM."), text("Continuing."))
    root = lite.ts()
    await lite.event(lite.message("hello haven", ts=root, channel=DM, channel_type="im"))
    await lite.event(lite.message("more", ts=lite.ts(), channel=DM, channel_type="im", thread_ts=root))

    posts = lite.posts()
    assert [(p["channel"], p["thread_ts"]) for p in posts] == [(DM, root), (DM, root)]
    assert "hello haven" in json.dumps(lite.model_requests()[0]["messages"])


async def test_bots_own_messages_and_system_subtypes_are_ignored(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("hello"))
    root = lite.ts()
    await lite.mention("start", ts=root)
    lite.slack.reset()
    ignored = [
        # Haven's own reply (Bolt drops it before our listener runs)
        lite.message("hello", ts=lite.ts(), user=BOT, thread_ts=root, bot_id="BHAVENBOT"),
        # another bot
        lite.message(
            "beep", ts=lite.ts(), user="UOTHERBOT", thread_ts=root, bot_id="BOTHER", subtype="bot_message"
        ),
        lite.message("beep", ts=lite.ts(), user="UOTHERBOT", thread_ts=root, bot_id="BOTHER"),
        # system subtypes
        lite.message("<@UNEW> has joined the channel", ts=lite.ts(), user="UNEW", subtype="channel_join"),
        lite.message("", ts=lite.ts(), thread_ts=root, subtype="message_deleted", hidden=True),
        lite.message("topic", ts=lite.ts(), thread_ts=root, subtype="channel_topic"),
    ]
    for event in ignored:
        assert (await lite.event(event)).status == 200

    assert len(lite.model_requests()) == 1
    assert lite.posts() == [] and lite.ephemerals() == []


async def test_a_bare_mention_gets_a_private_hint_and_no_model_call(lite: SlackHarness) -> None:
    root = lite.ts()
    await lite.event(lite.message(f"<@{BOT}>", ts=root, kind="app_mention"))

    assert lite.model_requests() == []
    assert lite.posts() == []
    [hint] = lite.ephemerals(ALICE)
    assert hint["channel"] == CHANNEL and "thread_ts" not in hint


async def test_model_outage_gives_one_short_error_and_the_next_message_works(lite: SlackHarness) -> None:
    from fakes.fake_anthropic import error

    lite.anthropic.default = error(529, "overloaded_error", "Overloaded")
    root = lite.ts()
    await lite.mention("hello?", ts=root)

    [oops] = lite.posts(thread_ts=root)
    assert oops["text"] and len(oops["text"]) < 300
    lite.anthropic.default = text("Back again.")
    await lite.reply("are you there?", thread_ts=root)
    assert post_words(lite.posts(thread_ts=root)[-1]) == "Back again."


async def test_long_reply_is_split_without_breaking_code_blocks(lite: SlackHarness) -> None:
    """Without streaming: one post updated while the model writes, the overflow in further posts."""
    lite.slack.refuse_streaming()
    code = "\n".join(f"line_{i} = {i}  # some commentary to make this longer" for i in range(300))
    lite.anthropic.enqueue(text(f"Here you go:\n\n```python\n{code}\n```\n\nDone."))
    root = lite.ts()
    await lite.mention("write code", ts=root)

    shown = lite.slack.thread(CHANNEL, root)
    assert len(shown) >= 2
    for m in shown:
        assert len(m["text"]) <= 12_000  # Slack's Markdown limit
        assert m["text"].count("```") % 2 == 0
    joined = "".join(m["text"] for m in shown)
    assert "line_0 = 0" in joined and "line_299 = 299" in joined


# -- request verification -----------------------------------------------------------------------------


async def test_bad_signature_old_timestamp_or_tampered_body_is_401_and_no_model_call(
    harness: SlackHarness,
) -> None:
    harness.anthropic.enqueue(text("should never be sent"))
    body = json.dumps(harness.envelope(harness.message(f"<@{BOT}> hi", ts=harness.ts(), kind="app_mention")))

    bad_secret = await harness.dispatch(body, signed_headers(body, secret="not-the-secret"))
    stale = await harness.dispatch(body, signed_headers(body, timestamp=int(time.time()) - 600))
    headers = signed_headers(body)
    tampered = await harness.dispatch(body.replace("hi", "hello"), headers)
    unsigned = await harness.dispatch(body, {"content-type": "application/json"})

    assert [r.status for r in (bad_secret, stale, tampered, unsigned)] == [401, 401, 401, 401]
    assert harness.model_requests() == []
    assert harness.posts() == []


async def test_url_verification_challenge_is_answered(lite: SlackHarness) -> None:
    body = json.dumps({"token": "x", "challenge": "c-123", "type": "url_verification"})
    resp = await lite.dispatch(body, signed_headers(body))
    assert resp.status == 200
    assert "c-123" in resp.body
