"""The discord.py client Haven runs: intents, event wiring, persistent views, sharding."""

from __future__ import annotations

import re
from typing import Any

import discord
from discord import app_commands

from adapters.discord.commands import build_tree
from adapters.discord.handler import DiscordHandler
from adapters.discord.translate import interaction_locale
from adapters.discord.views import MistakeButton


def haven_intents() -> discord.Intents:
    """Exactly what Haven needs. message_content is privileged: enable it in the Developer Portal."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels, threads, roles → permissions
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


def _options(guild_ready_timeout: float) -> dict[str, Any]:
    return {
        "intents": haven_intents(),
        # The model writes these messages: never let them ping @everyone or anyone else.
        "allowed_mentions": discord.AllowedMentions.none(),
        "chunk_guilds_at_startup": False,
        "guild_ready_timeout": guild_ready_timeout,
    }


class HavenClient(discord.Client):
    def __init__(self, handler: DiscordHandler, *, guild_ready_timeout: float = 2.0, **options: Any) -> None:
        super().__init__(**_options(guild_ready_timeout), **options)
        self.haven = handler
        self.tree: app_commands.CommandTree[Any] = build_tree(self, handler)
        handler.bind(self)

    async def setup_hook(self) -> None:
        # Closure buttons posted before a restart keep working: matched by custom_id template.
        self.add_dynamic_items(MistakeButton)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        self.haven.shared.saw_locale(str(interaction.user.id), interaction_locale(interaction))

    async def on_message(self, message: discord.Message) -> None:
        await self.haven.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # The raw event: the plain one fires only for messages still in discord.py's cache.
        await self.haven.on_message_edit(payload)


class HavenShardedClient(discord.AutoShardedClient):
    def __init__(self, handler: DiscordHandler, *, guild_ready_timeout: float = 2.0, **options: Any) -> None:
        super().__init__(**_options(guild_ready_timeout), **options)
        self.haven = handler
        self.tree: app_commands.CommandTree[Any] = build_tree(self, handler)
        handler.bind(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(MistakeButton)

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        self.haven.shared.saw_locale(str(interaction.user.id), interaction_locale(interaction))

    async def on_message(self, message: discord.Message) -> None:
        await self.haven.on_message(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        # The raw event: the plain one fires only for messages still in discord.py's cache.
        await self.haven.on_message_edit(payload)


_SHARD_PART = re.compile(r"^(\d+)(?:-(\d+))?$")


def parse_shard_ids(value: str | None, shard_count: int | None = None) -> list[int] | None:
    """``DISCORD_SHARD_IDS``: shard numbers and ranges, e.g. ``0,1`` or ``0-3`` or ``0-3,8``.

    None when unset (every shard). Raises ``ValueError`` with a readable message for anything else than
    distinct shard numbers below ``shard_count``.
    """
    if value is None or not value.strip():
        return None
    ids: list[int] = []
    parts = [part for part in value.replace(" ", "").split(",") if part]
    if not parts:
        raise ValueError(f"DISCORD_SHARD_IDS lists no shard: {value!r}")
    for part in parts:
        match = _SHARD_PART.match(part)
        if match is None:
            raise ValueError(
                f"DISCORD_SHARD_IDS must be shard numbers or ranges like 0,1 or 0-3; got {value!r}"
            )
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"DISCORD_SHARD_IDS has a backwards range {part!r}; write it as {last}-{first}")
        ids.extend(range(first, last + 1))
    if len(set(ids)) != len(ids):
        raise ValueError(f"DISCORD_SHARD_IDS lists a shard twice: {value!r}")
    if shard_count is not None and max(ids) >= shard_count:
        raise ValueError(
            f"DISCORD_SHARD_IDS {value!r} names shard {max(ids)}, but DISCORD_SHARD_COUNT={shard_count} "
            f"means shards 0 to {shard_count - 1}"
        )
    return ids


def make_client(
    handler: DiscordHandler,
    *,
    shard_count: int | None = None,
    shard_ids: str | None = None,
    guild_ready_timeout: float = 2.0,
) -> HavenClient | HavenShardedClient:
    """One client for the process: unsharded by default; with DISCORD_SHARD_COUNT an
    ``AutoShardedClient`` running every shard, or only DISCORD_SHARD_IDS (the rest run elsewhere)."""
    if shard_count is not None and shard_count < 1:
        raise ValueError(f"DISCORD_SHARD_COUNT must be 1 or more, got {shard_count}")
    ids = parse_shard_ids(shard_ids, shard_count)
    if shard_count is None and ids is None:
        return HavenClient(handler, guild_ready_timeout=guild_ready_timeout)
    if ids is not None and shard_count is None:
        raise ValueError(
            "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT (the total number of shards across all processes)"
        )
    return HavenShardedClient(
        handler, shard_count=shard_count, shard_ids=ids, guild_ready_timeout=guild_ready_timeout
    )
