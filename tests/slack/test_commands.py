"""The /haven command: new, help, and the admin subcommands with their permission checks."""

from __future__ import annotations

from adapters.slack.blocks import VIEW_NEW, VIEW_RESOURCES
from bot.notices import ADMIN_ONLY, DEFAULT_CRISIS_MESSAGE
from fakes.fake_anthropic import text
from fakes.slack_harness import ADA, ALICE, BOB, CHANNEL, SlackHarness, is_crisis, post_words

NEW_RESOURCES = "*Acme Wellbeing:* call *0800 123 456* (24/7)\n• Or write to care@acme.example"


async def test_resources_set_is_refused_for_non_admins_and_stored_for_admins(harness: SlackHarness) -> None:
    await harness.command("resources set", user=ALICE)
    assert harness.slack.count("views.open") == 0
    assert harness.responses()[-1]["text"] == ADMIN_ONLY

    await harness.command("resources set", user=ADA)
    view = harness.last_view()
    assert view["callback_id"] == VIEW_RESOURCES
    assert view["blocks"][-1]["element"]["initial_value"] == DEFAULT_CRISIS_MESSAGE

    # Even a submission that did not come from an opened modal is checked again.
    await harness.submit(view, "hijacked", user=BOB)
    settings = await harness.services.repo.get_settings("slack", harness.slack.team_id)
    assert settings.crisis_message is None

    resp = await harness.submit(view, NEW_RESOURCES, user=ADA)
    assert resp.status == 200
    settings = await harness.services.repo.get_settings("slack", harness.slack.team_id)
    assert settings.crisis_message == NEW_RESOURCES

    await harness.command("resources preview", user=ADA)
    preview = harness.responses()[-1]
    assert "0800 123 456" in str(preview["blocks"])
    assert preview["blocks"][0]["type"] == "header"


async def test_new_resources_are_what_people_at_risk_see(lite: SlackHarness) -> None:
    await lite.command("resources set", user=ADA)
    await lite.submit(lite.last_view(), NEW_RESOURCES, user=ADA)
    lite.anthropic.enqueue(text("I'm here with you."))
    root = lite.ts()
    await lite.mention("I don't want to live anymore", ts=root)
    card = next(p for p in lite.posts(thread_ts=root) if is_crisis(p))
    assert "0800 123 456" in str(card["blocks"])


async def test_resources_set_rejects_too_long_text_inside_the_modal(lite: SlackHarness) -> None:
    await lite.command("resources set", user=ADA)
    resp = await lite.submit(lite.last_view(), "x" * 3001, user=ADA)
    assert resp.status == 200 and "errors" in resp.body


async def test_resources_show_reset_and_locale_variant(lite: SlackHarness) -> None:
    await lite.command("resources show", user=ADA)
    assert "built-in default" in lite.responses()[-1]["text"]
    await lite.command("resources set de", user=ADA)
    await lite.submit(lite.last_view(), "Telefonseelsorge: 0800 111 0 111", user=ADA)
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.crisis_locales == {"de": "Telefonseelsorge: 0800 111 0 111"}
    await lite.command("resources reset", user=ADA)
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.crisis_message is None and settings.crisis_locales == {}
    await lite.command("resources reset", user=BOB)
    assert lite.responses()[-1]["text"] == ADMIN_ONLY


async def test_settings_endings_feedback_are_admin_only(lite: SlackHarness) -> None:
    for sub in ("settings", "settings warnings 3", "endings", "feedback", "resources show"):
        await lite.command(sub, user=BOB)
        assert lite.responses()[-1]["text"] == ADMIN_ONLY, sub
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.abuse_warnings_before_end == 2

    await lite.command("settings warnings 3", user=ADA)
    assert "Saved" in lite.responses()[-1]["text"]
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.abuse_warnings_before_end == 3
    await lite.command("settings warnings 9", user=ADA)
    assert "didn't work" in lite.responses()[-1]["text"]


async def test_configured_admin_list_counts_as_admin(lite: SlackHarness) -> None:
    await lite.command(f"settings admins <@{BOB}|bob>", user=ADA)
    settings = await lite.services.repo.get_settings("slack", lite.slack.team_id)
    assert settings.admin_users == (BOB,)
    await lite.command("endings", user=BOB)
    assert lite.responses()[-1]["text"] == "No endings yet."


async def test_admin_status_is_checked_on_every_call_not_just_once(lite: SlackHarness) -> None:
    await lite.command("endings", user=ADA)
    assert lite.responses()[-1]["text"] == "No endings yet."
    lite.slack.users[ADA]["is_admin"] = False  # demoted in Slack a moment later
    await lite.command("endings", user=ADA)
    assert lite.responses()[-1]["text"] == ADMIN_ONLY


async def test_endings_and_feedback_lists_link_to_threads(lite: SlackHarness) -> None:
    lite.anthropic.enqueue(text("ok"))
    root = lite.ts()
    await lite.mention("hello", ts=root)
    await lite.command(f"end {lite.slack.permalink(CHANNEL, root)}")
    await lite.command("endings", user=ADA)
    listing = lite.responses()[-1]["text"]
    assert "with the end command" in listing and "/archives/" in listing
    assert "hello" not in listing


async def test_new_with_text_posts_top_level_and_answers_in_its_thread(harness: SlackHarness) -> None:
    harness.anthropic.enqueue(text("New conversation answer."), text("Follow-up answer."))
    await harness.command("new How do I write a haiku?")

    header = harness.posts(top_level=True)[-1]
    assert header["channel"] == CHANNEL
    assert f"<@{ALICE}>" in header["text"] and "How do I write a haiku?" in header["text"]
    thread = harness.slack.ts_of(header)
    assert post_words(harness.posts(thread_ts=thread)[-1]) == "New conversation answer."
    await harness.reply("and a tanka?", thread_ts=thread)
    assert post_words(harness.posts(thread_ts=thread)[-1]) == "Follow-up answer."


async def test_new_without_text_opens_a_modal(lite: SlackHarness) -> None:
    await lite.command("new")
    view = lite.last_view()
    assert view["callback_id"] == VIEW_NEW
    resp = await lite.submit(view, "   ")
    assert "errors" in resp.body
    lite.anthropic.enqueue(text("Hello from the modal."))
    await lite.submit(view, "Tell me a <fun> fact & more")
    header = lite.posts(top_level=True)[-1]
    assert "&lt;fun&gt; fact &amp; more" in header["text"]
    assert "Tell me a <fun> fact & more" in str(lite.model_requests()[-1]["messages"])


async def test_new_in_a_channel_haven_is_not_in_says_so(lite: SlackHarness) -> None:
    lite.slack.fail("chat.postMessage", "not_in_channel")
    await lite.command("new hello")
    assert "Invite it first" in lite.responses()[-1]["text"]
    assert lite.model_requests() == []


async def test_help_and_unknown_subcommands(lite: SlackHarness) -> None:
    await lite.command("")
    await lite.command("help")
    await lite.command("frobnicate")
    texts = [r["text"] for r in lite.responses()]
    assert all("/haven new" in t for t in texts)
    assert "Unknown subcommand" in texts[-1]
    assert lite.posts() == []
