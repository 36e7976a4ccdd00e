"""Platform-neutral wording of what Haven shows people: closure notices, crisis resources, reminders.

Adapters supply the platform's "how" (a slash command, a shortcut name) and render the result in their
own format (Block Kit, embeds, plain text). Every text here is the English entry of the catalog
(``bot.i18n``, ``bot/locales/en.toml``; a test keeps the two equal): the functions take the ``Strings``
of the person they are for, and these constants remain for code that speaks to admins and operators,
who get English.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import LANGUAGES, Strings, english, strings_for
from bot.types import CrisisCard, EndReason, WorkspaceSettings

# Markdown (CommonMark ``**bold**``); each adapter converts it where it is drawn (Slack to mrkdwn,
# Discord as it is, the terminal as plain text).
DEFAULT_CRISIS_MESSAGE = """\
**If you or someone else is in immediate danger, call your local emergency number now** (911 in the US \
and Canada, 112 in the EU, 999 in the UK, 000 in Australia).

You don't have to go through this alone. Free, confidential support is available 24/7:
- **US:** call or text **988** (Suicide & Crisis Lifeline)
- **UK & Ireland:** Samaritans, call **116 123**
- **Anywhere:** find a helpline in your country at https://findahelpline.com

If you can, reach out to someone you trust — a friend, a family member, a colleague."""

MISTAKE_BUTTON = "This ending was a mistake"
FEEDBACK_THANKS = "Thank you — your report was recorded and the workspace admins can review it."
ADMIN_ONLY = "Sorry, only workspace admins can do that."
REHEARSAL_BANNER = (
    "Haven is running on its offline rehearsal model (no ANTHROPIC_API_KEY): replies are canned and "
    "driven by the local detectors, for trying Haven out."
)
REHEARSAL_LABEL = "[rehearsal model] "
# A turn that failed for good (after any retry): said in the conversation, never silence.
TURN_FAILED = "Sorry — something went wrong while I was answering. Please send your message again."
ALREADY_ENDED = "This conversation has already ended."
# A command, button or form that needs the database while it is away: said privately, nothing half-done.
DATABASE_UNAVAILABLE = "Haven can't reach its database — try again in a minute."
CLOSED = "Closed. Start a new conversation any time."
NOT_IN_CONVERSATION = "There is no Haven conversation in this thread."
NOT_PARTICIPANT = "Only people taking part in this conversation (or a workspace admin) can end it."
NOT_AUTHOR = "Only the author of that message (or a workspace admin) can fork from it."


@dataclass(frozen=True, slots=True)
class PlatformHints:
    """How a person does things on this platform, in that platform's words and the person's language
    (each adapter builds them from its ``slack.*`` / ``discord.*`` / ``terminal.*`` catalog entries)."""

    new_conversation: str  # e.g. "mention @Haven or use `/haven new`"
    fork: str  # e.g. "use the message shortcut *Edit & fork* on one of your earlier messages"


@dataclass(frozen=True, slots=True)
class ClosureText:
    title: str
    reason: str
    new_conversation: str
    fork: str
    button: str = MISTAKE_BUTTON
    # The language the texts are in (``bot.i18n``): the renderer draws its own labels in it too.
    language: str = "en"

    def plain(self) -> str:
        return "\n".join((self.title, self.reason, self.new_conversation, self.fork))


_REASONS: dict[EndReason, str] = {
    EndReason.USER_REQUEST: "notice.reason_user_request",
    EndReason.ABUSE: "notice.reason_abuse",
    EndReason.USER_COMMAND: "notice.reason_user_command",
}


# Why a conversation ended, as a phrase after "ended" (alerts, admin lists, digests).
_REASON_PHRASES: dict[str, str] = {
    EndReason.USER_REQUEST.value: "at the user's request",
    EndReason.ABUSE.value: "after repeated warnings about abuse",
    EndReason.USER_COMMAND.value: "with the end command",
}


def model_alert_text(failures: int) -> str:
    """The admins' alert when the model keeps failing (content-free; the adapter adds where)."""
    return (
        f"Haven's model calls are failing: {failures} turns in a row in this workspace got the error "
        "note instead of an answer. Check the Anthropic API key, quota and status; "
        "Haven's /readyz endpoint shows whether the model answers again."
    )


def reason_phrase(reason: str | None, unknown: str = "for an unknown reason") -> str:
    """``"ended " + reason_phrase(r)`` reads as a sentence; unknown reasons are named as stored."""
    if not reason:
        return unknown
    return _REASON_PHRASES.get(reason, reason)


def closure_text(reason: EndReason, hints: PlatformHints, strings: Strings | None = None) -> ClosureText:
    t = strings or english()
    return ClosureText(
        title=t("notice.closure_title"),
        reason=t(_REASONS[reason]),
        new_conversation=t("notice.new_conversation", how=hints.new_conversation),
        fork=t("notice.fork", how=hints.fork),
        button=t("notice.mistake_button"),
        language=t.language,
    )


def ended_reminder(hints: PlatformHints, strings: Strings | None = None) -> str:
    return (strings or english())("notice.ended_reminder", new=hints.new_conversation, fork=hints.fork)


def default_crisis_message(strings: Strings | None = None) -> str:
    """The built-in crisis resources in the person's language (the numbers and the link are the same
    in every language)."""
    return (strings or english())("crisis.default_message")


def is_default_crisis(text: str) -> bool:
    """Whether ``text`` is the built-in default in any language (Markdown, converted whole by renderers;
    an admin's own text is drawn as they wrote it)."""
    text = text.strip()
    return any(text == strings_for(language)("crisis.default_message") for language in LANGUAGES)


def crisis_card(settings: WorkspaceSettings, locale: str | None = None) -> CrisisCard:
    """The workspace's resources, in the user's locale when an admin provided a variant for it.

    An admin's message is theirs and stays as written; only the built-in default is translated. The
    card's ``language`` is the person's, for the framing a renderer draws around it.
    """
    language = strings_for(locale).language
    if locale:
        variants = settings.crisis_locales
        for key in (locale, locale.replace("_", "-"), locale.split("-")[0].split("_")[0]):
            if key in variants:
                return CrisisCard(variants[key], language)
    if settings.crisis_message:
        return CrisisCard(settings.crisis_message, language)
    return CrisisCard(default_crisis_message(strings_for(locale)), language)
