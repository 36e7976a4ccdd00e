"""``DiscordConnector``: the Connector lifecycle (connect, listen, disconnect) around a discord.py client.

Application commands are synced at start-up only when they differ from the ones Discord reports for the
application (Discord limits daily command creates). Nothing is kept locally, so a container with a fresh
filesystem, or several replicas, decides the same way. ``haven discord sync`` forces a sync.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from typing import TYPE_CHECKING

import discord

from adapters.discord.api_errors import count_api_errors
from adapters.discord.client import HavenClient, HavenShardedClient, make_client
from adapters.discord.commands import command_payload, commands_differ
from adapters.discord.guilds import Departed, GuildLifecycle, Returned
from adapters.discord.handler import DiscordHandler
from adapters.discord.stream import StreamTiming
from adapters.discord.translate import PLATFORM
from bot.admission import NOTE_SECONDS
from bot.ports import CoreServices, StartupError

if TYPE_CHECKING:
    from bot.types import Digest

log = logging.getLogger(__name__)

TOKEN_MISSING = "DISCORD_TOKEN is not set."
TOKEN_REJECTED = (
    "Discord rejected DISCORD_TOKEN (401 Unauthorized). Copy the bot token again from the Developer "
    "Portal (your application → Bot → Reset Token) — see docs/discord.md."
)
INTENT_MISSING = (
    "Discord closed the gateway with code 4014 (disallowed intent): the Message Content intent is not "
    "enabled for this bot. Enable it in the Developer Portal (your application → Bot → Privileged Gateway "
    "Intents → Message Content Intent) and start Haven again — without it Haven cannot read what people "
    "write. See docs/discord.md."
)


class DiscordStartupError(StartupError):
    """Discord refused us in a way a person must fix (token, intents); the message says how."""


def _explain(exc: BaseException) -> BaseException:
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return DiscordStartupError(INTENT_MISSING)
    if isinstance(exc, discord.LoginFailure):
        return DiscordStartupError(TOKEN_REJECTED)
    if isinstance(exc, discord.ConnectionClosed):
        if exc.code == 4004:
            return DiscordStartupError(TOKEN_REJECTED)
        if exc.code == 4014:
            return DiscordStartupError(INTENT_MISSING)
    return exc


class DiscordConnector:
    name = "discord"

    def __init__(
        self,
        services: CoreServices,
        *,
        guild_ready_timeout: float = 2.0,
        connect_timeout: float = 30.0,
        stream_timing: StreamTiming | None = None,
        departed: Departed | None = None,
        returned: Returned | None = None,
    ) -> None:
        self._services = services
        self._guild_ready_timeout = guild_ready_timeout
        self._connect_timeout = connect_timeout
        self.handler = DiscordHandler(services, stream_timing=stream_timing)
        # Removed from a server: recorded (``haven admin purge``); joining again clears it.
        self._guilds = GuildLifecycle(departed, returned) if departed and returned else None
        self._client: HavenClient | HavenShardedClient | None = None
        self._gateway: asyncio.Task[None] | None = None

    @property
    def client(self) -> HavenClient | HavenShardedClient:
        if self._client is None:
            raise RuntimeError("the Discord connector is not connected")
        return self._client

    async def login(self) -> None:
        """Check the token and learn the application id (no gateway yet)."""
        settings = self._services.settings
        token = settings.discord_token.get_secret_value().strip() if settings.discord_token else ""
        if not token:
            raise DiscordStartupError(TOKEN_MISSING)
        try:
            self._client = make_client(
                self.handler,
                shard_count=settings.discord_shard_count,
                shard_ids=settings.discord_shard_ids,
                guild_ready_timeout=self._guild_ready_timeout,
            )
        except ValueError as exc:
            raise DiscordStartupError(str(exc)) from None
        if self._guilds is not None:
            self._guilds.attach(self._client)
        engine = self._services.engine
        count_api_errors(self._client.http, lambda: engine.metrics)
        if settings.discord_shard_ids and settings.database_url.startswith("sqlite"):
            # Other processes run the other shards; they must share one database.
            log.warning("DISCORD_SHARD_IDS is set but DATABASE_URL is SQLite: use one shared PostgreSQL")
        try:
            await self._client.login(token)
        except discord.LoginFailure:
            await self._client.close()
            raise DiscordStartupError(TOKEN_REJECTED) from None
        log.info("discord login ok", extra={"application": self._client.application_id})

    async def connect(self) -> None:
        await self.login()
        try:
            await self.sync_commands()
        except discord.HTTPException as exc:
            # Commands from the last sync still work; a later start (or `haven discord sync`) retries.
            log.warning("app command sync failed", extra={"status": exc.status, "code": exc.code})
        client = self.client
        self._gateway = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
        identified = asyncio.ensure_future(client.wait_for("connect"))
        try:
            done, _ = await asyncio.wait(
                {self._gateway, identified},
                timeout=self._connect_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            identified.cancel()
        if self._gateway.done():
            # Closed right after IDENTIFY: a bad token (4004) or the message-content intent (4014).
            failure = self._gateway.exception()
            await self.disconnect()
            if failure is not None:
                raise _explain(failure) from failure
            raise DiscordStartupError("the Discord gateway closed during start-up")
        if identified not in done:
            log.warning(
                "discord gateway slow to connect; continuing", extra={"seconds": self._connect_timeout}
            )
        # Inbox entries whose holder is gone are answered here too (at once, then every few seconds).
        self._services.engine.attach(PLATFORM, self.handler.recovery)

    async def listen(self) -> None:
        if self._gateway is None:
            raise RuntimeError("connect() first")
        try:
            await self._gateway
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise _explain(exc) from exc

    async def disconnect(self) -> None:
        client = self._client
        if client is not None and not client.is_closed():
            # Turns being answered get HAVEN_SHUTDOWN_SECONDS; the engine then stops what is unfinished
            # and leaves it to recovery (its inbox entry is released to every process). The gateway
            # stays open meanwhile: Discord does not deliver a missed message again, so one that arrives
            # now is better recorded and answered than dropped. A message still waiting for the database
            # (kept in memory only) stops waiting by the deadline and gets the failure note in its
            # thread within NOTE_SECONDS: the drain waits for those too.
            seconds = self._services.settings.shutdown_seconds
            self._services.engine.begin_shutdown(seconds)
            await self.handler.drain(seconds + NOTE_SECONDS, stop_waiting=seconds)
            await client.close()
        gateway = self._gateway
        if gateway is not None and not gateway.done():
            gateway.cancel()
            with contextlib.suppress(BaseException):
                await gateway

    async def ready(self) -> bool:
        """``bot.ports.Connector.ready``: the gateway said READY, the client is not closed and its gateway
        socket (every shard's, when sharded) is open: not while discord.py reconnects."""
        client = self._client
        if client is None or client.is_closed() or not client.is_ready():
            return False
        if isinstance(client, discord.AutoShardedClient):
            return all(not shard.is_closed() for shard in client.shards.values())
        return client.ws is not None and client.ws.open

    async def send_digest(self, digest: Digest) -> None:
        """The scheduler's weekly summary for a guild's alert channel (``bot.ports.DigestSink``)."""
        await self.handler.send_digest(digest)

    async def wait_until_ready(self) -> None:
        await self.client.wait_until_ready()

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync the global commands when they differ from the ones Discord reports (or ``force``); True
        when synced. One GET at every start; the PUT only when something changed."""
        client = self.client
        tree = client.tree
        payload = await command_payload(tree)
        if not force and client.application_id is not None:
            # The JSON that ``tree.fetch_commands()`` requests, read as is: discord.py 2.7's ``AppCommand``
            # decodes ``contexts`` and ``integration_types`` with the wrong flag class ([0, 1] comes out
            # as [0]), so its objects cannot be compared with what ``tree.sync()`` sends.
            registered = await client.http.get_global_commands(client.application_id)
            if not commands_differ(payload, registered):
                log.info("app commands match Discord's; not syncing", extra={"commands": len(payload)})
                return False
        await tree.sync()
        log.info("app commands synced", extra={"commands": len(payload), "forced": force})
        return True


async def sync_command(services: CoreServices) -> int:
    """``haven discord sync``: push the application commands to Discord now."""
    connector = DiscordConnector(services)
    try:
        await connector.login()
        await connector.sync_commands(force=True)
    except (DiscordStartupError, discord.HTTPException) as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return 1
    finally:
        await connector.disconnect()
    print("Discord application commands synced.")
    return 0
