"""``/haven-admin``'s gate and actions: crisis resources, settings, endings and feedback reports.

The gate (``AdminActions.gate``) is run once per command by ``AdminCommands.interaction_check``; a refusal
is raised as ``AdminRefused`` and answered privately by the group's ``on_error`` (``refusal`` says what
to tell the person). Who is an admin is ``bot.admin``'s decision, which also checks again on every call:
the gate spares the actions a refusal path, it is not the only check.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from adapters.discord import embeds
from adapters.discord.shared import Shared, ephemeral, interaction_author
from adapters.discord.translate import PLATFORM
from adapters.discord.views import InstructionsModal, ResourcesModal
from bot.admin import BadSetting, NotAllowed
from bot.notices import ADMIN_ONLY, DEFAULT_CRISIS_MESSAGE, crisis_card
from bot.types import Author, CrisisCard

NOT_IN_DMS = "Admin commands work in a server, not in DMs."


class AdminRefused(app_commands.CheckFailure):
    """The gate's no; ``answer`` is what the person is told (Haven's words, never theirs)."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


def refusal(error: BaseException) -> str | None:
    """What a refused or rejected admin action tells the person; None when something really failed."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, AdminRefused):
        return error.answer
    if isinstance(error, NotAllowed):  # the core's own check, e.g. admin rights revoked meanwhile
        return ADMIN_ONLY
    if isinstance(error, BadSetting):
        return f"Not changed: {error}"
    return None


def _actor(interaction: discord.Interaction[Any]) -> tuple[Author, str]:
    """Who acts, and in which server; only called past the gate, which refuses DMs."""
    return interaction_author(interaction), str(interaction.guild_id)


class AdminActions:
    def __init__(self, shared: Shared) -> None:
        self._admin = shared.admin

    async def gate(self, interaction: discord.Interaction[Any]) -> None:
        """Raise ``AdminRefused`` unless the person is an admin of this server, as ``bot.admin`` decides
        (the platform's Manage Server, or the workspace's own admin list)."""
        if interaction.guild_id is None:
            raise AdminRefused(NOT_IN_DMS)
        actor, workspace = _actor(interaction)
        try:
            await self._admin.settings(actor, PLATFORM, workspace)
        except NotAllowed:
            raise AdminRefused(ADMIN_ONLY) from None

    async def resources_show(self, interaction: discord.Interaction[Any]) -> None:
        actor, workspace = _actor(interaction)
        settings = await self._admin.settings(actor, PLATFORM, workspace)
        custom = settings.crisis_message is not None
        embed = embeds.crisis_embed(CrisisCard(settings.crisis_message or DEFAULT_CRISIS_MESSAGE))
        embed.title = f"Crisis resources ({'custom' if custom else 'built-in default'})"
        if settings.crisis_locales:
            embed.add_field(name="Locale variants", value=", ".join(sorted(settings.crisis_locales)))
        await ephemeral(interaction, None, embed=embed)

    async def resources_set(self, interaction: discord.Interaction[Any], locale: str | None) -> None:
        actor, workspace = _actor(interaction)
        settings = await self._admin.settings(actor, PLATFORM, workspace)
        current = (settings.crisis_locales.get(locale) if locale else None) or (
            settings.crisis_message or DEFAULT_CRISIS_MESSAGE
        )

        async def submit(submitted: discord.Interaction[Any], text: str) -> None:
            await self._save_resources(submitted, text, locale)

        await interaction.response.send_modal(ResourcesModal(current, submit, locale))

    async def _save_resources(
        self, interaction: discord.Interaction[Any], text: str, locale: str | None
    ) -> None:
        # The form comes back as a new interaction, outside the command group and its check (and anyone
        # could submit it), so it passes the gate again; a refusal is answered here, not by a group.
        try:
            await self.gate(interaction)
            actor, workspace = _actor(interaction)
            saved = await self._admin.set_crisis_message(actor, PLATFORM, workspace, text, locale)
        except (AdminRefused, NotAllowed, BadSetting) as exc:
            await ephemeral(interaction, refusal(exc))
            return
        await ephemeral(
            interaction,
            "Saved. This is what people will see:",
            embed=embeds.crisis_embed(crisis_card(saved, locale), preview=True),
        )

    async def resources_reset(self, interaction: discord.Interaction[Any]) -> None:
        actor, workspace = _actor(interaction)
        await self._admin.reset_crisis_message(actor, PLATFORM, workspace)
        await ephemeral(interaction, "Crisis resources reset to the built-in default.")

    async def resources_preview(self, interaction: discord.Interaction[Any], locale: str | None) -> None:
        actor, workspace = _actor(interaction)
        settings = await self._admin.settings(actor, PLATFORM, workspace)
        await ephemeral(
            interaction, None, embed=embeds.crisis_embed(crisis_card(settings, locale), preview=True)
        )

    async def settings(self, interaction: discord.Interaction[Any], changes: dict[str, str]) -> None:
        actor, workspace = _actor(interaction)
        settings = await self._admin.settings(actor, PLATFORM, workspace)
        for name, value in changes.items():
            settings = await self._admin.change(actor, PLATFORM, workspace, name, value)
        title = "Haven settings — saved" if changes else "Haven settings"
        await ephemeral(interaction, None, embed=embeds.settings_embed(settings, title))

    async def instructions(self, interaction: discord.Interaction[Any]) -> None:
        actor, workspace = _actor(interaction)
        settings = await self._admin.settings(actor, PLATFORM, workspace)

        async def submit(submitted: discord.Interaction[Any], text: str) -> None:
            await self._save_instructions(submitted, text)

        await interaction.response.send_modal(InstructionsModal(settings.instructions, submit))

    async def _save_instructions(self, interaction: discord.Interaction[Any], text: str) -> None:
        # As the crisis form: a new interaction anyone could submit, so it passes the gate again.
        try:
            await self.gate(interaction)
            actor, workspace = _actor(interaction)
            saved = await self._admin.change(actor, PLATFORM, workspace, "instructions", text)
        except (AdminRefused, NotAllowed, BadSetting) as exc:
            await ephemeral(interaction, refusal(exc))
            return
        done = "saved" if saved.instructions else "removed"
        await ephemeral(interaction, f"Haven's instructions for this server were {done}.")

    async def endings(self, interaction: discord.Interaction[Any], limit: int) -> None:
        actor, workspace = _actor(interaction)
        rows = await self._admin.endings(actor, PLATFORM, workspace, limit)
        await ephemeral(interaction, None, embed=embeds.endings_embed(rows))

    async def feedback(self, interaction: discord.Interaction[Any], limit: int) -> None:
        actor, workspace = _actor(interaction)
        rows = await self._admin.feedback(actor, PLATFORM, workspace, limit)
        await ephemeral(interaction, None, embed=embeds.feedback_embed(rows))
