""" "This ending was a mistake": the closure notice's button, its form, and the admins' alert.

The button (``views.MistakeButton``) survives restarts; a click reaches ``Feedback.clicked`` through the
running client's handler. The engine records the report and says whether admins are alerted.
"""

from __future__ import annotations

from typing import Any

import discord

from adapters.discord import posts
from adapters.discord.shared import Shared, ephemeral, workspace_of
from adapters.discord.translate import PLATFORM, interaction_locale
from adapters.discord.views import FeedbackModal, answer_failure, first_delivery
from bot.i18n import strings_for
from bot.notices import FEEDBACK_THANKS
from bot.ports import StorageUnavailable


class Feedback:
    def __init__(self, shared: Shared) -> None:
        self._shared = shared

    async def clicked(self, interaction: discord.Interaction[Any], conversation_id: str) -> None:
        try:
            if not await first_delivery(interaction):
                return  # this very press was answered already
        except StorageUnavailable as exc:
            await answer_failure(interaction, exc, "feedback button")
            return

        async def submit(submitted: discord.Interaction[Any], comment: str) -> None:
            await self._record(submitted, conversation_id, comment)

        strings = strings_for(interaction_locale(interaction))
        await interaction.response.send_modal(FeedbackModal(submit, strings))

    async def _record(
        self, interaction: discord.Interaction[Any], conversation_id: str, comment: str
    ) -> None:
        try:
            # One record per person and ending: a repeat edits it, and only the first alerts.
            alert = await self._shared.engine.record_feedback(
                PLATFORM,
                workspace_of(interaction),
                conversation_id,
                str(interaction.user.id),
                comment or None,
            )
        except LookupError:
            await ephemeral(interaction, "I couldn't find that conversation here.")
            return
        await ephemeral(interaction, strings_for(interaction_locale(interaction)).localise(FEEDBACK_THANKS))
        if alert is not None:
            await posts.send_alert(self._shared, alert, source=str(interaction.id))
