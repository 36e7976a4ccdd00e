"""The discord.py client Haven runs: intents, event wiring, persistent views, sharding."""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands

from adapters.discord.commands import build_tree
from adapters.discord.handler import DiscordHandler
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

    async def on_message(self, message: discord.Message) -> None:
        await self.haven.on_message(message)


class HavenShardedClient(discord.AutoShardedClient):
    def __init__(self, handler: DiscordHandler, *, guild_ready_timeout: float = 2.0, **options: Any) -> None:
        super().__init__(**_options(guild_ready_timeout), **options)
        self.haven = handler
        self.tree: app_commands.CommandTree[Any] = build_tree(self, handler)
        handler.bind(self)

    async def setup_hook(self) -> None:
        self.add_dynamic_items(MistakeButton)

    async def on_message(self, message: discord.Message) -> None:
        await self.haven.on_message(message)


def parse_shard_ids(value: str | None) -> list[int] | None:
    if not value or not value.strip():
        return None
    try:
        return [int(part) for part in value.replace(" ", "").split(",") if part]
    except ValueError:
        raise ValueError(f"DISCORD_SHARD_IDS must be comma-separated numbers, got {value!r}") from None


def make_client(
    handler: DiscordHandler,
    *,
    shard_count: int | None = None,
    shard_ids: str | None = None,
    guild_ready_timeout: float = 2.0,
) -> HavenClient | HavenShardedClient:
    ids = parse_shard_ids(shard_ids)
    if shard_count is None and ids is None:
        return HavenClient(handler, guild_ready_timeout=guild_ready_timeout)
    if ids is not None and shard_count is None:
        raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT")
    return HavenShardedClient(
        handler, shard_count=shard_count, shard_ids=ids, guild_ready_timeout=guild_ready_timeout
    )
