"""discord.ui pieces: the persistent "mistake" button and the modals. They collect input and hand it on.

The button is a ``DynamicItem``: its ``custom_id`` carries the conversation id, so a click on a closure
notice posted before a restart still reaches the handler of whichever client is running now. Modals are
short-lived (they exist between a click and its submit) and keep their state on the instance.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import discord
from discord import ui

from adapters.discord.translate import (
    DM_WORKSPACE,
    MODAL_TITLE_LIMIT,
    PLATFORM,
    TEXT_INPUT_LIMIT,
    interaction_locale,
    truncate,
)
from bot.admin import MAX_CRISIS_CHARS, MAX_INSTRUCTIONS_CHARS
from bot.failures import log_failure
from bot.i18n import Strings, english, strings_for
from bot.notices import DATABASE_UNAVAILABLE, MISTAKE_BUTTON
from bot.ports import StorageUnavailable

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

MISTAKE_PREFIX = "haven:mistake:"
# Our conversation ids are uuid4 hex; anything else in a custom_id is not ours.
MISTAKE_TEMPLATE = re.compile(r"^haven:mistake:(?P<conversation>[0-9a-f]{32})$")
FEEDBACK_COMMENT_LIMIT = 1000

Submit = Callable[[discord.Interaction[Any], str], Awaitable[None]]


class FeedbackTarget(Protocol):
    async def feedback_clicked(self, interaction: discord.Interaction[Any], conversation_id: str) -> None: ...


def _target(interaction: discord.Interaction[Any]) -> FeedbackTarget | None:
    # The client carries the handler; no module-level registry needed.
    return getattr(interaction.client, "haven", None)


async def first_delivery(interaction: discord.Interaction[Any]) -> bool:
    """Whether this interaction (a button press, a form submitted) is acted on for the first time: the
    same interaction delivered again is dropped (``Engine.first_delivery``, by Discord's interaction id).
    Raises ``StorageUnavailable`` when the database is away."""
    shared = getattr(getattr(interaction.client, "haven", None), "shared", None)
    engine: Engine | None = getattr(shared, "engine", None)
    if engine is None:
        return True
    workspace = str(interaction.guild_id) if interaction.guild_id else DM_WORKSPACE
    return await engine.first_delivery(PLATFORM, workspace, str(interaction.id))


async def answer_failure(interaction: discord.Interaction[Any], error: Exception, what: str) -> None:
    """Log a failed button or form by type and place, and tell the person privately: the database being
    away gets its own note."""
    log_failure(log, f"{what} failed", error)
    unavailable = isinstance(error, StorageUnavailable)
    t = strings_for(interaction_locale(interaction))
    message = t.localise(DATABASE_UNAVAILABLE) if unavailable else t("notice.something_wrong")
    with contextlib.suppress(discord.HTTPException):
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)


class MistakeButton(ui.DynamicItem[ui.Button[Any]], template=MISTAKE_TEMPLATE):
    """``label`` is in the language of the closure notice it sits under; a click is routed by the
    ``custom_id`` alone, so the label a restarted client rebuilds it with is never shown."""

    def __init__(self, conversation_id: str, label: str = MISTAKE_BUTTON) -> None:
        super().__init__(
            ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=MISTAKE_PREFIX + conversation_id,
            )
        )
        self.conversation_id = conversation_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: ui.Item[Any], match: re.Match[str], /
    ) -> MistakeButton:
        return cls(match["conversation"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        target = _target(interaction)
        if target is None:
            log.warning("mistake button clicked on a client without a Haven handler")
            return
        await target.feedback_clicked(interaction, self.conversation_id)


def closure_view(conversation_id: str, label: str = MISTAKE_BUTTON) -> ui.View:
    view = ui.View(timeout=None)
    view.add_item(MistakeButton(conversation_id, label))
    return view


class _TextModal(ui.Modal):
    """One paragraph field; the submitted value goes to ``submit``."""

    def __init__(
        self,
        *,
        title: str,
        label: str,
        submit: Submit,
        default: str | None = None,
        placeholder: str | None = None,
        required: bool = True,
        max_length: int = TEXT_INPUT_LIMIT,
        description: str | None = None,
    ) -> None:
        super().__init__(title=truncate(title, MODAL_TITLE_LIMIT), timeout=900)
        self.field: ui.TextInput[Any] = ui.TextInput(
            style=discord.TextStyle.paragraph,
            default=truncate(default, max_length) if default else None,
            placeholder=placeholder,
            required=required,
            max_length=max_length,
        )
        self.add_item(ui.Label(text=truncate(label, 45), component=self.field, description=description))
        self._submit = submit

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        # The same submission delivered twice (before discord.py forgets the form) is acted on once.
        return await first_delivery(interaction)

    async def on_submit(self, interaction: discord.Interaction[Any], /) -> None:
        await self._submit(interaction, self.field.value or "")

    async def on_error(  # type: ignore[override]  # Modal's hook has no ``item`` argument
        self, interaction: discord.Interaction[Any], error: Exception, /
    ) -> None:
        await answer_failure(interaction, error, f"modal {type(self).__name__}")


# The forms people use are in their language (``strings``, from the interaction's locale); the admins'
# forms below stay English.


class FeedbackModal(_TextModal):
    def __init__(self, submit: Submit, strings: Strings | None = None) -> None:
        t = strings or english()
        super().__init__(
            title=t("discord.feedback_title"),
            label=t("discord.feedback_label"),
            submit=submit,
            required=False,
            max_length=FEEDBACK_COMMENT_LIMIT,
            placeholder=t("discord.feedback_placeholder"),
        )


class ForkModal(_TextModal):
    def __init__(self, text: str, submit: Submit, strings: Strings | None = None) -> None:
        t = strings or english()
        super().__init__(
            title=t("discord.fork_title"),
            label=t("discord.fork_label"),
            default=text,
            submit=submit,
            description=t("discord.fork_description"),
        )


class NewConversationModal(_TextModal):
    def __init__(self, submit: Submit, strings: Strings | None = None) -> None:
        t = strings or english()
        super().__init__(
            title=t("discord.new_title"),
            label=t("discord.new_label"),
            submit=submit,
            placeholder=t("discord.new_placeholder"),
        )


class ResourcesModal(_TextModal):
    def __init__(self, current: str, submit: Submit, locale: str | None = None) -> None:
        super().__init__(
            title=f"Crisis resources ({locale})" if locale else "Crisis resources",
            label="Message shown to people who may be at risk",
            default=current,
            submit=submit,
            max_length=MAX_CRISIS_CHARS,
            description="Markdown. Keep emergency numbers and a helpline directory.",
        )


class InstructionsModal(_TextModal):
    def __init__(self, current: str | None, submit: Submit) -> None:
        super().__init__(
            title="Haven's instructions",
            label="Persona and preferences for Haven here",
            default=current,
            submit=submit,
            required=False,  # sent empty, the instructions are removed
            max_length=MAX_INSTRUCTIONS_CHARS,
            description="After Haven's safety rules, which they cannot change. Empty: none.",
        )
