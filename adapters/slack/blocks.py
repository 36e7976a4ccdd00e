"""Block Kit messages and modals, built with slack_sdk's models so Slack's limits are checked here."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from adapters.slack.translate import MAX_INPUT_CHARS, markdown_to_mrkdwn, split_message
from bot.i18n import Strings, english, strings_for
from bot.notices import ClosureText, is_default_crisis
from bot.types import CrisisCard

ACTION_MISTAKE = "haven_mistake"
ACTION_FORK_EDIT = "haven_fork_edit"
VIEW_FEEDBACK = "haven_feedback"
VIEW_FORK = "haven_fork"
VIEW_RESOURCES = "haven_resources"
VIEW_NEW = "haven_new"
VIEW_INSTRUCTIONS = "haven_instructions"
# block_id / action_id of the single text input in each modal
INPUT = "text"

# Section text is limited to 3,000 characters; a button value to 2,000.
_SECTION_CHARS = 3000
BUTTON_VALUE_CHARS = 2000

Blocks = list[dict[str, Any]]


def _dicts(blocks: Sequence[Block]) -> Blocks:
    return [b.to_dict() for b in blocks]


def _md(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _sections(text: str) -> list[Block]:
    return [SectionBlock(text=_md(part)) for part in split_message(text, _SECTION_CHARS)]


def closure_blocks(conversation_id: str, text: ClosureText) -> Blocks:
    return _dicts(
        [
            HeaderBlock(text=PlainTextObject(text=text.title, emoji=False)),
            SectionBlock(text=_md(text.reason)),
            ContextBlock(elements=[_md(text.new_conversation), _md(text.fork)]),
            ActionsBlock(
                block_id="haven_closure",
                elements=[ButtonElement(text=text.button, action_id=ACTION_MISTAKE, value=conversation_id)],
            ),
        ]
    )


_MD_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")


def crisis_mrkdwn(text: str) -> str:
    """The crisis resources in Slack's markup. The built-in default is Markdown and is converted whole;
    an admin's own text stays as written (admins write Slack's markup), except the two Markdown forms
    that mean nothing in Slack's: ``**bold**`` and ``[text](url)``."""
    if is_default_crisis(text):
        return markdown_to_mrkdwn(text)
    text = _MD_LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    return _MD_BOLD.sub(r"*\1*", text)


def crisis_blocks(card: CrisisCard) -> Blocks:
    """The workspace's own resources (see ``crisis_mrkdwn``), under a heading in the person's language."""
    title = strings_for(card.language)("crisis.title")
    return _dicts(
        [
            HeaderBlock(text=PlainTextObject(text=title, emoji=False)),
            *_sections(crisis_mrkdwn(card.text)),
        ]
    )


def fork_offer_blocks(value: str | None, strings: Strings | None = None) -> Blocks:
    """Shown (ephemerally) to someone who edited a message in an ended thread."""
    t = strings or english()
    intro = t("slack.fork_offer_intro")
    if value is None:
        # The edit is too long to carry in a button; the shortcut reads it from the message itself.
        return _dicts([SectionBlock(text=_md(f"{intro} {t('slack.fork_offer_shortcut')}"))])
    return _dicts(
        [
            SectionBlock(text=_md(f"{intro} {t('slack.fork_offer_question')}")),
            ActionsBlock(
                elements=[
                    ButtonElement(
                        text=t("slack.fork_offer_button"),
                        action_id=ACTION_FORK_EDIT,
                        value=value,
                        style="primary",
                    )
                ]
            ),
        ]
    )


def _text_input(
    label: str, initial: str | None, *, optional: bool, hint: str | None, max_chars: int
) -> InputBlock:
    return InputBlock(
        block_id=INPUT,
        label=label,
        optional=optional,
        hint=hint,
        element=PlainTextInputElement(
            action_id=INPUT,
            multiline=True,
            initial_value=(initial or "")[:max_chars] or None,
            max_length=max_chars,
            focus_on_load=True,
        ),
    )


def _modal(
    callback_id: str,
    title: str,
    submit: str,
    metadata: Mapping[str, Any],
    blocks: Sequence[Block],
    close: str = "Cancel",
) -> dict[str, Any]:
    return View(
        type="modal",
        callback_id=callback_id,
        title=title,
        submit=submit,
        close=close,
        private_metadata=json.dumps(dict(metadata), separators=(",", ":")),
        blocks=list(blocks),
    ).to_dict()


# The forms people use are in their language (``strings``); the admins' forms below stay English.


def feedback_modal(metadata: Mapping[str, Any], strings: Strings | None = None) -> dict[str, Any]:
    t = strings or english()
    return _modal(
        VIEW_FEEDBACK,
        t("slack.feedback_title"),
        t("slack.feedback_submit"),
        metadata,
        [
            SectionBlock(text=_md(t("slack.feedback_intro"))),
            _text_input(t("slack.feedback_label"), None, optional=True, hint=None, max_chars=MAX_INPUT_CHARS),
        ],
        close=t("slack.cancel"),
    )


def fork_modal(prefill: str, metadata: Mapping[str, Any], strings: Strings | None = None) -> dict[str, Any]:
    t = strings or english()
    return _modal(
        VIEW_FORK,
        t("slack.fork_title"),
        t("slack.fork_submit"),
        metadata,
        [
            SectionBlock(text=_md(t("slack.fork_intro"))),
            _text_input(t("slack.fork_label"), prefill, optional=False, hint=None, max_chars=MAX_INPUT_CHARS),
        ],
        close=t("slack.cancel"),
    )


def new_conversation_modal(metadata: Mapping[str, Any], strings: Strings | None = None) -> dict[str, Any]:
    t = strings or english()
    return _modal(
        VIEW_NEW,
        t("slack.new_title"),
        t("slack.new_submit"),
        metadata,
        [_text_input(t("slack.new_label"), None, optional=False, hint=None, max_chars=MAX_INPUT_CHARS)],
        close=t("slack.cancel"),
    )


def resources_modal(
    current: str, locale: str | None, metadata: Mapping[str, Any], max_chars: int
) -> dict[str, Any]:
    label = f"Crisis resources ({locale})" if locale else "Crisis resources"
    return _modal(
        VIEW_RESOURCES,
        "Crisis resources",
        "Save",
        metadata,
        [
            SectionBlock(
                text=_md(
                    "Haven shows this message when someone may be at risk. Use Slack formatting "
                    "(*bold*, • bullets, links). `/haven resources preview` shows how it looks."
                )
            ),
            _text_input(label, current, optional=False, hint=None, max_chars=max_chars),
        ],
    )


def instructions_modal(current: str | None, metadata: Mapping[str, Any], max_chars: int) -> dict[str, Any]:
    return _modal(
        VIEW_INSTRUCTIONS,
        "Haven's instructions",
        "Save",
        metadata,
        [
            SectionBlock(
                text=_md(
                    "A persona and preferences for Haven in this workspace: its name, tone, what to focus "
                    "on. They come after Haven's own safety rules and cannot change them: when and how a "
                    "conversation may end, and the crisis resources, stay as they are. Leave the field "
                    "empty to remove the instructions."
                )
            ),
            _text_input("Instructions", current, optional=True, hint=None, max_chars=max_chars),
        ],
    )
