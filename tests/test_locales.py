"""The catalogs of what Haven says (``bot/locales``): complete in every language, placeholders and
Markdown intact, locales resolved to a language, and presentation choosing the person's language."""

from __future__ import annotations

import string

import pytest

from adapters.discord import conversation as discord_conversation
from adapters.discord import edits as discord_edits
from adapters.discord import fork as discord_fork
from adapters.discord import views
from adapters.discord.embeds import HELP as DISCORD_HELP
from adapters.slack import blocks as bk
from adapters.slack import home_blocks as hb
from adapters.slack.listeners import admin as slack_admin
from adapters.slack.listeners import fork as slack_fork
from adapters.slack.listeners import shared as slack_shared
from adapters.slack.listeners.admin import HELP as SLACK_HELP
from bot import i18n, notices, prompts
from bot.admission import RESTARTING_NOTE, TOO_SLOW_NOTE
from bot.channels import elsewhere_note
from bot.i18n import LANGUAGES, english, language_of, parse, placeholders, read_catalog_file, strings_for
from bot.notices import PlatformHints, crisis_card, is_default_crisis
from bot.presentation import ClosureNotice, CrisisResources, PrivateNotice, Reply, present
from bot.types import Closure, CrisisCard, EndReason, TurnResult, TurnStatus, WorkspaceSettings

REQUIRED = ("es", "pt", "fr", "de", "it", "ja", "ko", "zh", "hi", "ar", "tr", "pl", "nl", "ru", "id")
TRANSLATED = [lang for lang in LANGUAGES if lang != "en"]
ENGLISH = parse(read_catalog_file("en"))


def catalog(language: str) -> dict[str, str]:
    return parse(read_catalog_file(language))


def test_every_required_language_has_a_catalog() -> None:
    assert set(REQUIRED) | {"en"} == set(LANGUAGES)
    for language in LANGUAGES:
        assert catalog(language), language


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_key_exists_in_every_language_and_no_other(language: str) -> None:
    texts = catalog(language)
    assert sorted(set(ENGLISH) - set(texts)) == [], "missing"
    assert sorted(set(texts) - set(ENGLISH)) == [], "not in en.toml"
    assert all(text.strip() for text in texts.values())


@pytest.mark.parametrize("language", TRANSLATED)
def test_placeholders_match_english(language: str) -> None:
    texts = catalog(language)
    for key, english_text in ENGLISH.items():
        assert placeholders(texts[key]) == placeholders(english_text), key
        # And each formats with English's names and nothing else (no stray or doubled braces).
        values = dict.fromkeys(placeholders(english_text), "X")
        string.Formatter().format(texts[key], **values)


_MARKERS = ("**", "`")


@pytest.mark.parametrize("language", LANGUAGES)
def test_markdown_markers_are_balanced(language: str) -> None:
    for key, text in catalog(language).items():
        for marker in _MARKERS:
            assert text.count(marker) % 2 == 0, (key, marker)
        single = text.replace("**", "")
        assert single.count("*") % 2 == 0, (key, "*")
        if text.startswith("_"):
            assert text.endswith("_"), key
        # Product and command names stay as they are.
        for name in ("Haven", "/haven new", "/haven fork", "Edit & fork", "@Haven", "/new", "/fork"):
            assert (name in ENGLISH[key]) <= (name in text), (key, name)


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_default_crisis_message_keeps_every_number_and_link(language: str) -> None:
    text = catalog(language)["crisis.default_message"]
    for fact in ("911", "112", "999", "000", "**988**", "**116 123**", " https://findahelpline.com"):
        assert fact in ENGLISH["crisis.default_message"] and fact in text, fact
    assert "Samaritans" in text and "Suicide & Crisis Lifeline" in text
    assert text.count("\n- ") == 3  # the same three lines of helplines


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("es-ES", "es"),
        ("es-419", "es"),
        ("pt-BR", "pt"),
        ("pt_BR", "pt"),
        ("zh-CN", "zh"),
        ("zh-TW", "zh"),
        ("ja-JP", "ja"),
        ("ko-KR", "ko"),
        ("FR", "fr"),
        ("de_DE.UTF-8", "de"),
        ("in-ID", "id"),
        ("en-GB", "en"),
        ("xx", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_locales_resolve_to_a_language(locale: str | None, language: str) -> None:
    assert language_of(locale) == language
    assert strings_for(locale).language == language


def test_the_english_constants_are_the_english_catalog() -> None:
    """Code that speaks to operators uses the constants; people get the catalog. They must agree, and
    ``Strings.localise`` recognises each one."""
    constants = {
        "notice.mistake_button": notices.MISTAKE_BUTTON,
        "notice.feedback_thanks": notices.FEEDBACK_THANKS,
        "notice.admin_only": notices.ADMIN_ONLY,
        "notice.turn_failed": notices.TURN_FAILED,
        "notice.already_ended": notices.ALREADY_ENDED,
        "notice.database_unavailable": notices.DATABASE_UNAVAILABLE,
        "notice.closed": notices.CLOSED,
        "notice.not_in_conversation": notices.NOT_IN_CONVERSATION,
        "notice.not_participant": notices.NOT_PARTICIPANT,
        "notice.not_author": notices.NOT_AUTHOR,
        "notice.restarting": RESTARTING_NOTE,
        "notice.too_slow": TOO_SLOW_NOTE,
        "reply.model_error": prompts.MODEL_ERROR_REPLY,
        "crisis.default_message": notices.DEFAULT_CRISIS_MESSAGE,
        "help.slack": SLACK_HELP,
        "help.discord": DISCORD_HELP,
        "adapter.slack.not_forkable": slack_shared.NOT_FORKABLE,
        "adapter.slack.cannot_post": slack_shared.CANNOT_POST,
        "adapter.slack.end_usage": slack_admin.END_USAGE,
        "adapter.slack.fork_usage": slack_fork.FORK_USAGE,
        "adapter.discord.no_threads_here": discord_conversation.NO_THREADS_HERE,
        "adapter.discord.cannot_create_thread": discord_conversation.CANNOT_CREATE_THREAD,
        "adapter.discord.not_forkable": discord_fork.NOT_FORKABLE,
        "discord.fork_offer_button": discord_edits.FORK_OFFER_BUTTON,
        "discord.only_the_editor": discord_edits.ONLY_THE_AUTHOR,
        "discord.offer_used": discord_edits.ALREADY_USED,
    }
    spanish = strings_for("es")
    for key, constant in constants.items():
        assert ENGLISH[key] == constant, key
        if not placeholders(constant):
            assert spanish.localise(constant) == spanish(key), key
    assert spanish.localise("words of the model") == "words of the model"


def test_a_missing_key_falls_back_to_english_and_an_unknown_one_fails() -> None:
    partial = i18n.Strings("xx", {"notice.closed": "x"}, english())
    assert partial("notice.closed") == "x"
    assert partial("notice.already_ended") == notices.ALREADY_ENDED
    with pytest.raises(KeyError):
        partial("no.such.key")


# -- presentation ------------------------------------------------------------------------------------------

HINTS = PlatformHints(new_conversation="NEW", fork="FORK")


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_item_kind_comes_out_in_the_requested_language(language: str) -> None:
    t = strings_for(language)
    card = crisis_card(WorkspaceSettings("slack", "T1"), language)
    assert card == CrisisCard(t("crisis.default_message"), language)
    ended = TurnResult(
        TurnStatus.REPLIED,
        conversation_id="c",
        replies=("bye",),
        crisis=card,
        closure=Closure("c", EndReason.ABUSE, 2),
    )
    crisis, reply, closure = present(ended, user_id="u", hints=HINTS, strings=t)
    assert crisis == CrisisResources(card) and reply == Reply("bye")
    assert isinstance(closure, ClosureNotice)
    assert closure.text.title == t("notice.closure_title")
    assert closure.text.reason == t("notice.reason_abuse")
    assert closure.text.new_conversation == t("notice.new_conversation", how="NEW")
    assert closure.text.fork == t("notice.fork", how="FORK")
    assert closure.text.button == t("notice.mistake_button")
    assert closure.text.language == language

    reminder = present(TurnResult(TurnStatus.ENDED_REMINDER, "c"), user_id="u", hints=HINTS, strings=t)
    assert reminder == (PrivateNotice("u", t("notice.ended_reminder", new="NEW", fork="FORK")),)

    failed = present(
        TurnResult(TurnStatus.ERROR, error=prompts.MODEL_ERROR_REPLY), user_id="u", hints=HINTS, strings=t
    )
    assert failed == (Reply(t("reply.model_error"), failed=True),)

    refused = TurnResult(TurnStatus.IGNORED, replies=(notices.NOT_PARTICIPANT,))
    assert present(refused, user_id="u", hints=HINTS, strings=t) == (
        PrivateNotice("u", t("notice.not_participant")),
    )

    closed = TurnResult(
        TurnStatus.REPLIED, conversation_id="c", closure=Closure("c", EndReason.USER_COMMAND, 0)
    )
    *_, private = present(closed, user_id="u", hints=HINTS, strings=t, end_command=True)
    assert private == PrivateNotice("u", t("notice.closed"))
    silent = TurnResult(TurnStatus.ENDED_SILENT, "c")
    assert present(silent, user_id="u", hints=HINTS, strings=t, end_command=True) == (
        PrivateNotice("u", t("notice.already_ended")),
    )


def test_an_admins_crisis_message_stays_as_written_and_a_locale_variant_wins() -> None:
    settings = WorkspaceSettings(
        "slack", "T1", crisis_message="Call Dana on 555-0100.", crisis_locales={"de": "Ruf Dana an."}
    )
    assert crisis_card(settings, "es-ES") == CrisisCard("Call Dana on 555-0100.", "es")
    assert crisis_card(settings, "de-AT") == CrisisCard("Ruf Dana an.", "de")
    assert not is_default_crisis(settings.crisis_message or "")
    assert all(is_default_crisis(strings_for(lang)("crisis.default_message")) for lang in LANGUAGES)


# -- the platforms' own limits, in every language ----------------------------------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_slack_modals_and_blocks_fit_slacks_limits(language: str) -> None:
    """slack_sdk's models check Slack's limits (a modal title or button at most 24 characters, …)."""
    t = strings_for(language)
    meta = {"c": "C1"}
    for view in (bk.feedback_modal(meta, t), bk.fork_modal("x", meta, t), bk.new_conversation_modal(meta, t)):
        assert len(view["title"]["text"]) <= 24 and len(view["submit"]["text"]) <= 24
        assert len(view["close"]["text"]) <= 24
    assert bk.fork_offer_blocks("{}", t) and bk.fork_offer_blocks(None, t)
    forget = hb.forget_modal({"c": "D1"}, t)
    assert forget["title"]["text"] == t("home.forget_title") and len(forget["title"]["text"]) <= 24
    assert len(forget["submit"]["text"]) <= 24 and len(forget["close"]["text"]) <= 24
    for key in ("home.new_button", "home.forget_button"):
        assert len(t(key)) <= 75, key
    card = crisis_card(WorkspaceSettings("slack", "T1"), language)
    assert bk.crisis_blocks(card)[0]["text"]["text"] == t("crisis.title")


@pytest.mark.parametrize("language", LANGUAGES)
def test_discord_modals_fit_discords_limits(language: str) -> None:
    async def submit(*_: object) -> None: ...

    t = strings_for(language)
    for modal in (
        views.FeedbackModal(submit, t),
        views.ForkModal("x", submit, t),
        views.NewConversationModal(submit, t),
    ):
        data = modal.to_dict()
        assert data["title"] in {t("discord.feedback_title"), t("discord.fork_title"), t("discord.new_title")}
        assert len(data["title"]) <= 45
    for key in ("discord.feedback_label", "discord.fork_label", "discord.new_label"):
        assert len(t(key)) <= 45, key
    assert len(t("notice.mistake_button")) <= 80
    assert len(t("discord.fork_offer_button")) <= 80
    offer = discord_edits.offer_text(1, in_dm=False, strings=t)
    assert offer.startswith("<@1>") and len(offer) <= 2000


def test_the_catalogs_ship_with_the_package() -> None:
    """pyproject's package data covers every catalog file, so the wheel and the image carry them."""
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    globs = tomllib.loads((root / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]["package-data"]
    files = sorted(p.relative_to(root / "bot").as_posix() for p in (root / "bot" / "locales").glob("*"))
    assert files == sorted(f"locales/{lang}.toml" for lang in LANGUAGES)
    assert all(any(fnmatch.fnmatch(f, g) for g in globs["bot"]) for f in files)


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_where_haven_answers_note_in_every_language(language: str) -> None:
    t = strings_for(language)
    listed = WorkspaceSettings("slack", "T1", allowed_channels=tuple(f"C{i}" for i in range(12)))
    note = elsewhere_note(listed, t)
    assert "<#C0>" in note and "<#C9>" in note and "<#C10>" not in note
    assert t("channels.more_many", count=2) in note and "{" not in note
    one_more = elsewhere_note(
        WorkspaceSettings("slack", "T1", allowed_channels=tuple(f"C{i}" for i in range(11))), t
    )
    assert t("channels.more_one") in one_more
    assert elsewhere_note(WorkspaceSettings("slack", "T1"), t) == t(
        "channels.elsewhere", where=t("channels.where_other")
    )
    nowhere = WorkspaceSettings("slack", "T1", allowed_channels=("C3",), denied_channels=("C3",))
    assert elsewhere_note(nowhere, t) == t("channels.elsewhere_none")


def test_a_card_made_without_the_readers_locale_is_shown_in_their_language() -> None:
    """The end command's card is made by the engine without a locale; presentation knows the reader."""
    es = strings_for("es")
    ended = TurnResult(
        TurnStatus.REPLIED,
        conversation_id="c",
        closure=Closure("c", EndReason.USER_COMMAND, 0, crisis=CrisisCard(notices.DEFAULT_CRISIS_MESSAGE)),
    )
    crisis, _ = present(ended, user_id="u", hints=HINTS, strings=es)
    assert crisis == CrisisResources(CrisisCard(es("crisis.default_message"), "es"))
    own = TurnResult(TurnStatus.REPLIED, crisis=CrisisCard("Call Dana."), replies=("hi",))
    assert present(own, user_id="u", hints=HINTS, strings=es)[0] == CrisisResources(
        CrisisCard("Call Dana.", "es")
    )
    assert present(own, user_id="u", hints=HINTS)[0] == CrisisResources(CrisisCard("Call Dana."))
