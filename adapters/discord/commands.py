"""The application commands: ``/haven …``, ``/haven-admin …`` and the message menu **Edit & fork**.

Commands only parse options and call the handler's parts. Each group answers its own failures
privately in ``on_error`` (the tree's handler answers the rest: the message menu, unknown commands).

``default_permissions`` on ``/haven-admin`` hides it from members without Manage Server, but that is a
convenience: ``AdminCommands.interaction_check`` runs the admin gate once for every command in the group
(``bot.admin`` decides, and checks again on each call), so no command checks for itself.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

import discord
from discord import app_commands

from adapters.discord.admin import refusal
from adapters.discord.handler import DiscordHandler
from adapters.discord.shared import ephemeral, workspace_of
from adapters.discord.translate import PLATFORM, interaction_locale
from bot.failures import log_failure
from bot.i18n import strings_for
from bot.notices import DATABASE_UNAVAILABLE
from bot.ports import StorageUnavailable

log = logging.getLogger(__name__)

FORK_MENU = "Edit & fork"
_EVERYWHERE = app_commands.AppCommandContext(guild=True, dm_channel=True, private_channel=False)
_GUILD_ONLY = app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False)
_GUILD_INSTALL = app_commands.AppInstallationType(guild=True, user=False)
_PROMPT_LIMIT = 4000
FAILED = "Sorry — something went wrong. Please try again."
# Set on an interaction whose error a group has answered, so the tree's handler does not answer twice
# (discord.py calls the group's ``on_error`` and then the tree's, for the same error).
_ANSWERED = "haven_error_answered"


class _HasHandler(Protocol):
    haven: DiscordHandler


def handler_of(interaction: discord.Interaction[Any]) -> DiscordHandler:
    client: _HasHandler = interaction.client  # type: ignore[assignment]
    return client.haven


async def _answer(interaction: discord.Interaction[Any], text: str) -> None:
    """Tell only the person who acted; an interaction that has expired meanwhile gets nothing."""
    with contextlib.suppress(discord.HTTPException):
        await ephemeral(interaction, text)


async def _failed(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
    """Log a command's failure by type and place (never its text, which can quote people) and say so:
    the database being away gets its own note (``bot.notices.DATABASE_UNAVAILABLE``)."""
    name = interaction.command.qualified_name if interaction.command else None
    cause = getattr(error, "original", None) or error  # what the command (or a check) ran into
    log_failure(log, "app command failed", cause, command=name)
    note = DATABASE_UNAVAILABLE if isinstance(cause, StorageUnavailable) else FAILED
    await _answer(interaction, strings_for(interaction_locale(interaction)).localise(note))


class _CheckFailed(app_commands.CheckFailure):
    """A check could not decide (e.g. the database is away); ``original`` is what it ran into."""

    def __init__(self, original: Exception) -> None:
        super().__init__("a check failed")
        self.original = original


class HavenTree(app_commands.CommandTree[Any]):
    """The command tree, acting once per interaction: the same ``INTERACTION_CREATE`` delivered again
    (a gateway replay, a second process) is dropped here, before any command or check runs."""

    def __init__(self, client: discord.Client, handler: DiscordHandler) -> None:
        super().__init__(client)
        self._engine = handler.shared.engine

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        if interaction.type is not discord.InteractionType.application_command:
            return True  # autocomplete: nothing acts on it
        try:
            first = await self._engine.first_delivery(
                PLATFORM, workspace_of(interaction), str(interaction.id)
            )
        except Exception as exc:
            raise _CheckFailed(exc) from exc  # answered by the groups' (or the tree's) on_error
        if not first:
            log.info("discord interaction replay dropped", extra={"interaction": interaction.id})
        return first


class _AnsweringGroup(app_commands.Group):
    """A command group that answers its commands' failures itself, privately."""

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        interaction.extras[_ANSWERED] = True
        await _failed(interaction, error)


class HavenCommands(_AnsweringGroup, name="haven", description="Talk with Haven"):
    def __init__(self, handler: DiscordHandler) -> None:
        super().__init__(allowed_contexts=_EVERYWHERE, allowed_installs=_GUILD_INSTALL)
        self.handler = handler

    @app_commands.command(
        name="new", description="Start a new conversation (a new thread, or the next DM one)"
    )
    @app_commands.describe(prompt="Your first message (leave empty to type it in a form)")
    async def new(
        self,
        interaction: discord.Interaction[Any],
        prompt: app_commands.Range[str, 1, _PROMPT_LIMIT] | None = None,
    ) -> None:
        await self.handler.lifecycle.new_conversation(interaction, prompt)

    @app_commands.command(name="end", description="Close this conversation for good")
    async def end(self, interaction: discord.Interaction[Any]) -> None:
        await self.handler.lifecycle.end_conversation(interaction)

    @app_commands.command(
        name="fork", description="Continue from one of your messages with new text, in a new thread"
    )
    @app_commands.describe(
        message="Link to your message (message menu → Copy Message Link)",
        text="The new text (leave empty to edit it in a form)",
    )
    async def fork(
        self,
        interaction: discord.Interaction[Any],
        message: str,
        text: app_commands.Range[str, 1, _PROMPT_LIMIT] | None = None,
    ) -> None:
        await self.handler.forks.from_link(interaction, message, text or "")

    @app_commands.command(name="help", description="How Haven works")
    async def help(self, interaction: discord.Interaction[Any]) -> None:
        help_text = strings_for(interaction_locale(interaction))("help.discord")
        await interaction.response.send_message(help_text, ephemeral=True)


class AdminCommands(
    _AnsweringGroup,
    name="haven-admin",
    description="Haven settings for this server (Manage Server)",
    guild_only=True,
    default_permissions=discord.Permissions(manage_guild=True),
):
    resources = app_commands.Group(name="resources", description="The crisis resources Haven shows")

    def __init__(self, handler: DiscordHandler) -> None:
        super().__init__(allowed_contexts=_GUILD_ONLY, allowed_installs=_GUILD_INSTALL)
        self.handler = handler

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """The admin gate, once for every command here (the ``resources`` subgroup's too).

        A refusal is raised, not returned, so ``on_error`` can tell the person why. Anything else the
        gate runs into is wrapped in a ``CheckFailure``: discord.py only routes ``AppCommandError`` to
        the error handlers.
        """
        try:
            await self.handler.admin.gate(interaction)
        except app_commands.AppCommandError:
            raise
        except Exception as exc:
            raise _CheckFailed(exc) from exc
        return True

    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError, /
    ) -> None:
        answer = refusal(error)  # refused by the gate, or a setting the core rejected: not a failure
        if answer is None:
            await super().on_error(interaction, error)
            return
        interaction.extras[_ANSWERED] = True
        await _answer(interaction, answer)

    @resources.command(name="show", description="Show the current crisis resources")
    async def resources_show(self, interaction: discord.Interaction[Any]) -> None:
        await self.handler.admin.resources_show(interaction)

    @resources.command(name="set", description="Edit the crisis resources (opens a form)")
    @app_commands.describe(locale="Set a variant for one locale only, e.g. de or pt-BR")
    async def resources_set(
        self, interaction: discord.Interaction[Any], locale: app_commands.Range[str, 2, 10] | None = None
    ) -> None:
        await self.handler.admin.resources_set(interaction, locale)

    @resources.command(name="reset", description="Go back to the built-in crisis resources")
    async def resources_reset(self, interaction: discord.Interaction[Any]) -> None:
        await self.handler.admin.resources_reset(interaction)

    @resources.command(name="preview", description="See the crisis resources card as people see it")
    @app_commands.describe(locale="Preview one locale's variant")
    async def resources_preview(
        self, interaction: discord.Interaction[Any], locale: app_commands.Range[str, 2, 10] | None = None
    ) -> None:
        await self.handler.admin.resources_preview(interaction, locale)

    @app_commands.command(name="settings", description="Show or change Haven's settings here")
    @app_commands.describe(
        ending="May Haven end conversations at all",
        warnings="Warnings (held abuse proposals) before an ending, 1–5",
        verify="Check abuse endings with a second model call",
        alert_channel="Where admins get content-free notices of endings and reports",
        alerts_off="Stop sending those notices",
        retention="Days message text is kept, 1–3650",
        allow_channels="The only channels Haven answers in (#mentions), or none for every channel",
        deny_channels="Channels Haven never answers in (#mentions), or none; wins over allow_channels",
    )
    async def settings(
        self,
        interaction: discord.Interaction[Any],
        ending: Literal["on", "off"] | None = None,
        warnings: app_commands.Range[int, 1, 5] | None = None,
        verify: Literal["on", "off", "default"] | None = None,
        alert_channel: discord.TextChannel | None = None,
        alerts_off: bool | None = None,
        retention: app_commands.Range[int, 1, 3650] | None = None,
        allow_channels: str | None = None,
        deny_channels: str | None = None,
    ) -> None:
        changes: dict[str, str] = {}
        if ending is not None:
            changes["ending"] = ending
        if warnings is not None:
            changes["warnings"] = str(warnings)
        if verify is not None:
            changes["verify"] = verify
        if alert_channel is not None:
            changes["alert-channel"] = str(alert_channel.id)
        if alerts_off:
            changes["alert-channel"] = "none"
        if retention is not None:
            changes["retention"] = str(retention)
        # Several channels fit no channel option: a text of #mentions, which the core's parser reads.
        if allow_channels is not None:
            changes["allow-channels"] = allow_channels
        if deny_channels is not None:
            changes["deny-channels"] = deny_channels
        await self.handler.admin.settings(interaction, changes)

    @app_commands.command(
        name="instructions", description="Haven's persona and preferences in this server (opens a form)"
    )
    async def instructions(self, interaction: discord.Interaction[Any]) -> None:
        await self.handler.admin.instructions(interaction)

    @app_commands.command(name="endings", description="Recently ended conversations")
    async def endings(
        self, interaction: discord.Interaction[Any], limit: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        await self.handler.admin.endings(interaction, limit)

    @app_commands.command(name="feedback", description="Recent “this ending was a mistake” reports")
    async def feedback(
        self, interaction: discord.Interaction[Any], limit: app_commands.Range[int, 1, 25] = 10
    ) -> None:
        await self.handler.admin.feedback(interaction, limit)


async def edit_and_fork(interaction: discord.Interaction[Any], message: discord.Message) -> None:
    await handler_of(interaction).forks.from_menu(interaction, message)


async def _on_tree_error(interaction: discord.Interaction[Any], error: app_commands.AppCommandError) -> None:
    """Failures outside the groups (the message menu, a command Discord knows and we do not)."""
    if interaction.extras.get(_ANSWERED):
        return
    await _failed(interaction, error)


def build_tree(client: discord.Client, handler: DiscordHandler) -> app_commands.CommandTree[Any]:
    tree = HavenTree(client, handler)
    tree.add_command(HavenCommands(handler))
    tree.add_command(AdminCommands(handler))
    tree.add_command(
        app_commands.ContextMenu(
            name=FORK_MENU,
            callback=edit_and_fork,
            allowed_contexts=_EVERYWHERE,
            allowed_installs=_GUILD_INSTALL,
        )
    )
    tree.error(_on_tree_error)
    return tree


async def command_payload(tree: app_commands.CommandTree[Any]) -> list[dict[str, Any]]:
    """Exactly what ``tree.sync()`` sends for the global commands (translated, when a translator is set)."""
    commands = tree.get_commands()
    translator = tree.translator
    if translator is not None:
        return [await command.get_translated_payload(tree, translator) for command in commands]
    return [command.to_dict(tree) for command in commands]


def _localizations(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in (value or {}).items()}


def _option(option: Mapping[str, Any]) -> dict[str, Any]:
    """One option (argument, subcommand or group) with every field Discord may leave out filled in."""
    return {
        "type": int(option["type"]),
        "name": option["name"],
        "description": option.get("description") or "",
        "name_localizations": _localizations(option.get("name_localizations")),
        "description_localizations": _localizations(option.get("description_localizations")),
        "required": bool(option.get("required", False)),
        "autocomplete": bool(option.get("autocomplete", False)),
        "choices": [
            {"name": c["name"], "value": c["value"], "localized": _localizations(c.get("name_localizations"))}
            for c in option.get("choices") or []
        ],
        "channel_types": sorted(int(t) for t in option.get("channel_types") or []),
        **{k: option.get(k) for k in ("min_value", "max_value", "min_length", "max_length")},
        "options": [_option(o) for o in option.get("options") or []],
    }


def _comparable(command: Mapping[str, Any], *, contexts_given: bool, installs_given: bool) -> dict[str, Any]:
    """The fields of a command Haven sets, in one shape for what it sends and what Discord reports (which
    adds ``id``, ``application_id``, ``version`` and leaves defaults out). ``dm_permission`` counts only
    when the command sets no ``contexts`` (Discord derives it from them); ``contexts`` and
    ``integration_types`` only when the command sets them (else Discord picks its defaults)."""
    permissions = command.get("default_member_permissions")
    dm_permission = command.get("dm_permission")
    out: dict[str, Any] = {
        "type": int(command.get("type") or 1),
        "name": command["name"],
        "description": command.get("description") or "",
        "name_localizations": _localizations(command.get("name_localizations")),
        "description_localizations": _localizations(command.get("description_localizations")),
        "options": [_option(o) for o in command.get("options") or []],
        "default_member_permissions": None if permissions is None else int(permissions),
        "nsfw": bool(command.get("nsfw", False)),
    }
    if contexts_given:
        out["contexts"] = sorted(command.get("contexts") or [])
    else:
        out["dm_permission"] = True if dm_permission is None else bool(dm_permission)
    if installs_given:
        out["integration_types"] = sorted(command.get("integration_types") or [])
    return out


def commands_differ(local: Sequence[Mapping[str, Any]], registered: Sequence[Mapping[str, Any]]) -> bool:
    """Whether syncing ``local`` (``command_payload``) would change the commands Discord reports
    (``GET /applications/{id}/commands``, as JSON): another name, type, description, option or
    permission, a command more or fewer. Order of the commands does not count; order of options does."""

    def key(command: Mapping[str, Any]) -> tuple[int, str]:
        return int(command.get("type") or 1), str(command["name"])

    theirs = {key(c): c for c in registered}
    if len(theirs) != len(registered) or {key(c) for c in local} != set(theirs):
        return True
    for mine in local:
        shape = {
            "contexts_given": mine.get("contexts") is not None,
            "installs_given": mine.get("integration_types") is not None,
        }
        if _comparable(mine, **shape) != _comparable(theirs[key(mine)], **shape):
            return True
    return False
