"""A local fake of Discord — REST API and gateway — for driving discord.py's real code in tests.

    async with FakeDiscord() as discord_api:
        guild = discord_api.add_guild("Guild A")
        channel = discord_api.add_text_channel(guild, "general")
        alice = discord_api.add_member(guild, "alice")
        ...  # start a discord.py client with token discord_api.token; it connects here
        await discord_api.post_message(channel, alice, "hello", mention_bot=True)

aiohttp on 127.0.0.1 (ephemeral port). ``__aenter__`` points discord.py at it by patching
``discord.http.Route.BASE`` and ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (restored on exit).

Gateway: HELLO, IDENTIFY → READY + one GUILD_CREATE per guild (channels, roles, members, active threads, so
discord.py resolves permissions), heartbeat ACKs, RESUME → RESUMED (+ optional replayed events), close
code 4004 for a wrong token and 4014 when the message-content intent is requested but "not enabled".
Tests inject MESSAGE_CREATE, MESSAGE_UPDATE and INTERACTION_CREATE.

REST: every call is recorded in ``calls`` (with the time it arrived). JSON answers use the content type
``application/json`` exactly — discord.py only parses JSON when the header matches it byte for byte. The
endpoints are the ones a bot uses: users/@me, a DM channel (users/@me/channels), applications/@me,
gateway/bot, application commands, create message (with ``enforce_nonce`` dedupe), edit and delete its
messages, start thread from a message / without one / as a forum post, modify and delete channel, typing,
interaction callbacks, webhook follow-ups and the original response. Anything else answers 404 and is
recorded, so an unexpected call shows up in a test.
``fail_next`` injects 5xx answers (optionally after doing the work, as when a response is lost) and 429
rate limits with ``retry_after``.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import WSMsgType, web

from fakes.serving import serve

DISCORD_EPOCH_MS = 1420070400000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
EMBED_LINKS = 1 << 14
READ_MESSAGE_HISTORY = 1 << 16
USE_APPLICATION_COMMANDS = 1 << 31
MANAGE_THREADS = 1 << 34
CREATE_PUBLIC_THREADS = 1 << 35
SEND_MESSAGES_IN_THREADS = 1 << 38
ALL_PERMISSIONS = (1 << 51) - 1

MEMBER_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | READ_MESSAGE_HISTORY
    | USE_APPLICATION_COMMANDS
    | CREATE_PUBLIC_THREADS
    | SEND_MESSAGES_IN_THREADS
)
BOT_PERMISSIONS = (
    VIEW_CHANNEL
    | SEND_MESSAGES
    | SEND_MESSAGES_IN_THREADS
    | CREATE_PUBLIC_THREADS
    | MANAGE_THREADS
    | READ_MESSAGE_HISTORY
    | EMBED_LINKS
)
MESSAGE_CONTENT_INTENT = 1 << 15
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def _iso(snowflake: int) -> str:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Call:
    method: str
    path: str  # without the /api/v10 prefix
    json: Any
    query: dict[str, str]
    at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ChannelOption:
    """A channel-typed slash command option value."""

    id: int


@dataclass
class FakeUser:
    id: int
    name: str
    bot: bool = False
    # The language of this person's Discord client: what their interactions carry as ``locale``.
    locale: str = "en-US"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.name,
            "discriminator": "0",
            "global_name": self.name,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


@dataclass
class FakeGuild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, dict[str, Any]] = field(default_factory=dict)
    members: dict[int, list[int]] = field(default_factory=dict)  # user id → role ids
    channels: list[int] = field(default_factory=list)
    preferred_locale: str = "en-US"  # the server's language (Server Settings → Overview)

    @property
    def everyone(self) -> int:
        return self.id


@dataclass
class FakeInteraction:
    id: int
    token: str
    payload: dict[str, Any]
    callbacks: list[dict[str, Any]] = field(default_factory=list)  # {"type": n, "data": {...}}
    followups: list[dict[str, Any]] = field(default_factory=list)  # message payloads
    original: dict[str, Any] | None = None

    @property
    def modal(self) -> dict[str, Any] | None:
        for cb in self.callbacks:
            if cb["type"] == 9:
                return dict(cb["data"])
        return None

    @property
    def complete(self) -> bool:
        """Answered, and not still "thinking" after a deferral."""
        return bool(self.callbacks) and not (self.original and self.original["flags"] & LOADING)

    def messages(self) -> list[dict[str, Any]]:
        """Everything the bot said in answer: the original response (if any) and the follow-ups."""
        return ([self.original] if self.original else []) + self.followups

    def texts(self) -> list[str]:
        out = []
        for m in self.messages():
            out.append(m.get("content") or "")
            out += [
                " ".join(str(e.get(k) or "") for k in ("title", "description")) for e in m.get("embeds", [])
            ]
        return out


@dataclass
class _Session:
    ws: web.WebSocketResponse
    session_id: str
    shard: tuple[int, int] | None = None
    seq: int = 0
    identified: bool = False

    def wants(self, guild_id: int | None) -> bool:
        if guild_id is None or self.shard is None:
            return guild_id is None or self.shard is None or self.shard[0] == 0
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id


class _Failure:
    def __init__(
        self, method: str, pattern: str, status: int, times: int, after_effect: bool, retry_after: float
    ) -> None:
        self.method, self.pattern, self.status = method, re.compile(pattern), status
        self.times, self.after_effect, self.retry_after = times, after_effect, retry_after


class FakeDiscord:
    def __init__(self, *, token: str | None = None, message_content_allowed: bool = True) -> None:
        self.token = token or "fake." + secrets.token_urlsafe(24)
        self.message_content_allowed = message_content_allowed
        self._snowflake = 0
        self.app_id = self.next_id()
        self.bot = FakeUser(self.app_id, "Haven", bot=True)  # bot user id == application id, as on Discord
        self.users: dict[int, FakeUser] = {self.bot.id: self.bot}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[str, Any]] = {}
        self.commands: list[dict[str, Any]] = []
        self.calls: list[Call] = []
        self.interactions: dict[str, FakeInteraction] = {}
        self.url = ""
        self._sessions: list[_Session] = []
        self._replay: list[tuple[str, dict[str, Any]]] = []
        self.resumes = 0
        self._nonces: dict[tuple[int, str], int] = {}
        # Every edit of a bot message: (message id, time.monotonic(), content after the edit).
        self.edit_log: list[tuple[int, float, str]] = []
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._saved: tuple[str, yarl.URL] | None = None

    # ------------------------------------------------------------------------------------------ ids
    def next_id(self) -> int:
        self._snowflake += 1
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return (ms << 22) | (self._snowflake & 0x3FFFFF)

    # ------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> FakeDiscord:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_route("*", "/api/v10/{tail:.*}", self._rest)
        self._runner, self.url = await serve(app)
        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
        discord.http.Route.BASE = f"{self.url}/api/v10"  # type: ignore[misc]
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for session in list(self._sessions):
            await session.ws.close(code=1001)
        self._sessions.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._saved is not None:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved  # type: ignore[misc]
            self._saved = None

    @property
    def gateway_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/gateway"

    # ------------------------------------------------------------------------------------ the world
    def add_user(self, name: str, *, bot: bool = False, user_id: int | None = None) -> FakeUser:
        user = FakeUser(user_id or self.next_id(), name, bot)
        self.users[user.id] = user
        return user

    def add_guild(
        self,
        name: str,
        *,
        guild_id: int | None = None,
        bot_permissions: int = BOT_PERMISSIONS,
        preferred_locale: str = "en-US",
    ) -> FakeGuild:
        gid = guild_id or self.next_id()
        owner = self.add_user(f"{name}-owner")
        guild = FakeGuild(gid, name, owner.id, preferred_locale=preferred_locale)
        guild.roles[gid] = self._role(gid, "@everyone", MEMBER_PERMISSIONS, position=0)
        bot_role = self.next_id()
        guild.roles[bot_role] = self._role(bot_role, "Haven", bot_permissions, position=1, bot_id=self.bot.id)
        admin_role = self.next_id()
        guild.roles[admin_role] = self._role(
            admin_role, "Admins", MANAGE_GUILD | MEMBER_PERMISSIONS, position=2
        )
        guild.members[self.bot.id] = [bot_role]
        guild.members[owner.id] = []
        self.guilds[gid] = guild
        return guild

    @staticmethod
    def _role(rid: int, name: str, perms: int, *, position: int, bot_id: int | None = None) -> dict[str, Any]:
        role: dict[str, Any] = {
            "id": str(rid),
            "name": name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": position,
            "permissions": str(perms),
            "managed": bot_id is not None,
            "mentionable": False,
            "flags": 0,
        }
        if bot_id is not None:
            role["tags"] = {"bot_id": str(bot_id)}
        return role

    def admin_role(self, guild: FakeGuild) -> int:
        return next(int(r["id"]) for r in guild.roles.values() if r["name"] == "Admins")

    def add_member(self, guild: FakeGuild, user: FakeUser | str, *, admin: bool = False) -> FakeUser:
        if isinstance(user, str):
            user = self.add_user(user)
        guild.members[user.id] = [self.admin_role(guild)] if admin else []
        return user

    def _guild_channel(self, guild: FakeGuild, cid: int, kind: int, name: str) -> dict[str, Any]:
        """A guild channel's payload as Discord sends it: what text and forum channels have in common."""
        return {
            "id": str(cid),
            "type": kind,
            "guild_id": str(guild.id),
            "name": name,
            "position": len(guild.channels),
            "permission_overwrites": [],
            "topic": None,
            "nsfw": False,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "parent_id": None,
            "default_auto_archive_duration": 1440,
            "flags": 0,
        }

    def add_text_channel(self, guild: FakeGuild, name: str, *, channel_id: int | None = None) -> int:
        cid = channel_id or self.next_id()
        self.channels[cid] = self._guild_channel(guild, cid, 0, name)
        guild.channels.append(cid)
        return cid

    async def start_thread(
        self, guild: FakeGuild, parent: int, owner: FakeUser, name: str = "a thread"
    ) -> int:
        """A person starts a thread (not the bot): THREAD_CREATE to the bot."""
        tid = self.next_id()
        self.channels[tid] = self._thread(guild.id, parent, tid, owner.id, name)
        guild.channels.append(tid)
        await self.dispatch("THREAD_CREATE", {**self.channels[tid], "newly_created": True}, guild_id=guild.id)
        return tid

    async def add_forum_channel(self, guild: FakeGuild, name: str) -> int:
        """A forum channel (type 15): people open posts in it, each a thread with a starter message.
        CHANNEL_CREATE to a connected bot."""
        cid = self.next_id()
        self.channels[cid] = {
            **self._guild_channel(guild, cid, 15, name),
            "available_tags": [],
            "default_reaction_emoji": None,
            "default_sort_order": None,
            "default_forum_layout": 0,
        }
        guild.channels.append(cid)
        await self.dispatch("CHANNEL_CREATE", self.channels[cid], guild_id=guild.id)
        return cid

    async def start_forum_post(
        self,
        guild: FakeGuild,
        forum: int,
        owner: FakeUser,
        title: str,
        content: str,
        *,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A person opens a forum post: THREAD_CREATE, then the starter message (whose id is the post's)
        as a MESSAGE_CREATE in the post, as Discord sends them. Returns the starter message."""
        tid = self.next_id()
        self.channels[tid] = self._thread(guild.id, forum, tid, owner.id, title)
        guild.channels.append(tid)
        await self.dispatch("THREAD_CREATE", {**self.channels[tid], "newly_created": True}, guild_id=guild.id)
        return await self.post_message(tid, owner, content, mention_bot=mention_bot, message_id=tid)

    def dm_channel(self, user: FakeUser) -> int:
        for cid, ch in self.channels.items():
            if ch["type"] == 1 and ch["recipients"][0]["id"] == str(user.id):
                return cid
        cid = self.next_id()
        self.channels[cid] = {
            "id": str(cid),
            "type": 1,
            "last_message_id": None,
            "recipients": [user.payload()],
        }
        return cid

    def _thread(
        self, gid: int, parent: int, tid: int, owner: int, name: str, kind: int = 11
    ) -> dict[str, Any]:
        return {
            "id": str(tid),
            "type": kind,
            "guild_id": str(gid),
            "parent_id": str(parent),
            "owner_id": str(owner),
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "applied_tags": [],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": 1440,
                "archive_timestamp": _now_iso(),
                "locked": False,
                "create_timestamp": _now_iso(),
            },
        }

    def guild_of(self, channel_id: int) -> FakeGuild | None:
        gid = self.channels.get(channel_id, {}).get("guild_id")
        return self.guilds.get(int(gid)) if gid else None

    def permissions(self, guild: FakeGuild, user_id: int) -> int:
        if user_id == guild.owner_id:
            return ALL_PERMISSIONS
        perms = int(guild.roles[guild.everyone]["permissions"])
        for rid in guild.members.get(user_id, []):
            perms |= int(guild.roles[rid]["permissions"])
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def set_bot_permissions(self, guild: FakeGuild, perms: int) -> None:
        rid = guild.members[self.bot.id][0]
        guild.roles[rid]["permissions"] = str(perms)

    def _member(self, guild: FakeGuild, user: FakeUser, *, with_user: bool) -> dict[str, Any]:
        member: dict[str, Any] = {
            "roles": [str(r) for r in guild.members.get(user.id, [])],
            "joined_at": _now_iso(),
            "deaf": False,
            "mute": False,
            "flags": 0,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = user.payload()
        return member

    def _guild_payload(self, guild: FakeGuild) -> dict[str, Any]:
        channels = [self.channels[c] for c in guild.channels if c in self.channels]
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": list(guild.roles.values()),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "vanity_url_code": None,
            "description": None,
            "banner": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.preferred_locale,
            "public_updates_channel_id": None,
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "joined_at": _now_iso(),
            "large": False,
            "unavailable": False,
            "member_count": len(guild.members),
            "voice_states": [],
            "members": [
                self._member(guild, self.users[uid], with_user=True)
                for uid in guild.members
                if uid == self.bot.id
            ],
            "channels": [c for c in channels if c["type"] != 11 and c["type"] != 12],
            "threads": [
                c for c in channels if c["type"] in (11, 12) and not c["thread_metadata"]["archived"]
            ],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }

    # ----------------------------------------------------------------------------------------- gateway
    async def _send(self, session: _Session, payload: dict[str, Any]) -> None:
        if not session.ws.closed:
            await session.ws.send_str(json.dumps(payload))

    async def _dispatch_to(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        await self._send(session, {"op": 0, "t": event, "s": session.seq, "d": data})

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: int | None = None) -> None:
        """Send one event to every identified session that handles ``guild_id``."""
        for session in list(self._sessions):
            if session.identified and session.wants(guild_id):
                await self._dispatch_to(session, event, data)

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True, max_msg_size=0)
        await ws.prepare(request)
        session = _Session(ws, secrets.token_hex(16))
        self._sessions.append(session)
        try:
            await self._send(session, {"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                data = json.loads(msg.data)
                op = data.get("op")
                if op == 1:
                    await self._send(session, {"op": 11, "d": None, "s": None, "t": None})
                elif op == 2:
                    await self._identify(session, data["d"])
                elif op == 6:
                    await self._resume(session, data["d"])
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
        return ws

    async def _identify(self, session: _Session, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        if int(data.get("intents", 0)) & MESSAGE_CONTENT_INTENT and not self.message_content_allowed:
            await session.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard = data.get("shard")
        session.shard = (int(shard[0]), int(shard[1])) if shard else None
        session.identified = True
        guilds = [g for g in self.guilds.values() if session.wants(g.id)]
        await self._dispatch_to(
            session,
            "READY",
            {
                "v": 10,
                "user": {**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
                "guilds": [{"id": str(g.id), "unavailable": True} for g in guilds],
                "session_id": session.session_id,
                "resume_gateway_url": self.gateway_url,
                "shard": list(session.shard) if session.shard else [0, 1],
                "application": {"id": str(self.app_id), "flags": 1 << 19},
                "private_channels": [],
                "relationships": [],
            },
        )
        for guild in guilds:
            await self._dispatch_to(session, "GUILD_CREATE", self._guild_payload(guild))

    async def _resume(self, session: _Session, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await session.ws.close(code=4004, message=b"Authentication failed.")
            return
        session.identified = True
        session.seq = int(data.get("seq") or 0)
        self.resumes += 1
        await self._dispatch_to(session, "RESUMED", {})
        replay, self._replay = self._replay, []
        for event, payload in replay:
            await self._dispatch_to(session, event, payload)

    async def reconnect(self, *, replay: list[tuple[str, dict[str, Any]]] = ()) -> None:  # type: ignore[assignment]
        """Ask every client to reconnect (op 7); they RESUME and get ``replay`` re-delivered."""
        self._replay = list(replay)
        for session in list(self._sessions):
            await self._send(session, {"op": 7, "d": None, "s": None, "t": None})

    @property
    def shards(self) -> list[tuple[int, int] | None]:
        return [s.shard for s in self._sessions if s.identified and not s.ws.closed]

    @property
    def connected(self) -> int:
        return sum(1 for s in self._sessions if s.identified and not s.ws.closed)

    # ------------------------------------------------------------------------------------- injection
    def _author_fields(self, channel_id: int, user: FakeUser) -> dict[str, Any]:
        guild = self.guild_of(channel_id)
        fields: dict[str, Any] = {"author": user.payload()}
        if guild is not None:
            fields["guild_id"] = str(guild.id)
            if not user.bot or user.id in guild.members:
                fields["member"] = self._member(guild, user, with_user=False)
        return fields

    def _message(
        self,
        channel_id: int,
        user: FakeUser,
        content: str,
        *,
        message_id: int | None = None,
        mentions: list[FakeUser] = (),  # type: ignore[assignment]
        embeds: list[dict[str, Any]] = (),  # type: ignore[assignment]
        components: list[dict[str, Any]] = (),  # type: ignore[assignment]
        kind: int = 0,
        flags: int = 0,
        nonce: str | None = None,
        webhook_id: int | None = None,
        attachments: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        mid = message_id or self.next_id()
        guild = self.guild_of(channel_id)
        mention_payloads = []
        for m in mentions:
            p = m.payload()
            if guild is not None and m.id in guild.members:
                p["member"] = self._member(guild, m, with_user=False)
            mention_payloads.append(p)
        msg: dict[str, Any] = {
            "id": str(mid),
            "channel_id": str(channel_id),
            "content": content,
            "timestamp": _iso(mid),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": mention_payloads,
            "mention_roles": [],
            "attachments": list(attachments),
            "embeds": list(embeds),
            "pinned": False,
            "type": kind,
            "flags": flags,
            "components": list(components),
            **self._author_fields(channel_id, user),
        }
        if nonce is not None:
            msg["nonce"] = nonce
        if webhook_id is not None:
            msg["webhook_id"] = str(webhook_id)
        return msg

    async def post_message(
        self,
        channel_id: int,
        user: FakeUser,
        content: str,
        *,
        mention_bot: bool = False,
        message_id: int | None = None,
        kind: int = 0,
        attachments: list[dict[str, Any]] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """A person (or another bot) writes: MESSAGE_CREATE to the bot. ``attachments``: Discord's
        attachment objects (``attachment``), whose URLs point wherever the test serves the files."""
        if mention_bot:
            content = f"<@{self.bot.id}> {content}"
        channel = self.channels[channel_id]
        meta = channel.get("thread_metadata")
        if meta and meta["archived"]:
            # Discord unarchives a thread when someone who may post writes in it.
            meta["archived"] = False
            await self.dispatch("THREAD_UPDATE", channel, guild_id=int(channel["guild_id"]))
        msg = self._message(
            channel_id,
            user,
            content,
            message_id=message_id,
            mentions=[self.bot] if mention_bot else [],
            kind=kind,
            attachments=attachments,
        )
        self.messages[int(msg["id"])] = msg
        guild = self.guild_of(channel_id)
        await self.dispatch("MESSAGE_CREATE", msg, guild_id=guild.id if guild else None)
        return msg

    def attachment(
        self, url: str, filename: str, size: int, content_type: str | None = None
    ) -> dict[str, Any]:
        """An attachment object as the gateway sends it (``url`` and ``proxy_url`` both ``url`` here)."""
        found: dict[str, Any] = {
            "id": str(self.next_id()),
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
        }
        if content_type is not None:
            found["content_type"] = content_type
        return found

    async def edit_message(self, message: dict[str, Any], content: str) -> dict[str, Any]:
        updated = {**message, "content": content, "edited_timestamp": _now_iso()}
        self.messages[int(message["id"])] = updated
        guild = self.guild_of(int(message["channel_id"]))
        await self.dispatch("MESSAGE_UPDATE", updated, guild_id=guild.id if guild else None)
        return updated

    def _interaction_base(self, kind: int, user: FakeUser, channel_id: int) -> dict[str, Any]:
        iid = self.next_id()
        token = "itok." + secrets.token_urlsafe(16)
        channel = self.channels[channel_id]
        guild = self.guild_of(channel_id)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.app_id),
            "type": kind,
            "token": token,
            "version": 1,
            "channel_id": str(channel_id),
            "channel": channel,
            "locale": user.locale,
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)} if guild else {"1": str(user.id)},
            "attachment_size_limit": 10 * 1024 * 1024,
        }
        if guild is not None:
            payload["guild_id"] = str(guild.id)
            payload["guild_locale"] = guild.preferred_locale
            payload["guild"] = {"id": str(guild.id), "locale": guild.preferred_locale, "features": []}
            member = self._member(guild, user, with_user=True)
            member["permissions"] = str(self.permissions(guild, user.id))
            payload["member"] = member
            payload["app_permissions"] = str(self.permissions(guild, self.bot.id))
            payload["context"] = 0
        else:
            payload["user"] = user.payload()
            payload["app_permissions"] = str(MEMBER_PERMISSIONS)
            payload["context"] = 1
        self.interactions[token] = FakeInteraction(iid, token, payload)
        return payload

    def _command_id(self, name: str, kind: int) -> str:
        for c in self.commands:
            if c["name"] == name and c.get("type", 1) == kind:
                return str(c["id"])
        return str(self.next_id())

    async def _send_interaction(self, payload: dict[str, Any]) -> FakeInteraction:
        guild_id = int(payload["guild_id"]) if "guild_id" in payload else None
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return self.interactions[payload["token"]]

    async def slash(
        self,
        user: FakeUser,
        channel_id: int,
        name: str,
        *path: str,
        resolved: dict[str, Any] | None = None,
        **options: Any,
    ) -> FakeInteraction:
        """``/name path… option=value``: e.g. ``slash(u, ch, "haven-admin", "resources", "show")``."""
        payload = self._interaction_base(2, user, channel_id)
        leaf: list[dict[str, Any]] = []
        resolved = dict(resolved or {})
        for key, value in options.items():
            if value is None:
                continue
            if isinstance(value, ChannelOption):
                channel = self.channels[value.id]
                guild = self.guild_of(value.id)
                perms = self.permissions(guild, user.id) if guild else 0
                resolved.setdefault("channels", {})[str(value.id)] = {
                    "id": str(value.id),
                    "name": channel.get("name", ""),
                    "type": channel["type"],
                    "permissions": str(perms),
                }
                leaf.append({"name": key, "type": 7, "value": str(value.id)})
                continue
            if isinstance(value, bool):
                kind = 5
            elif isinstance(value, int):
                kind = 4
            else:
                kind = 3
            leaf.append({"name": key, "type": kind, "value": value})
        opts = leaf
        for depth, part in enumerate(reversed(path)):
            opts = [{"name": part, "type": 1 if depth == 0 else 2, "options": opts}]
        data: dict[str, Any] = {"id": self._command_id(name, 1), "name": name, "type": 1, "options": opts}
        if resolved:
            data["resolved"] = resolved
        payload["data"] = data
        return await self._send_interaction(payload)

    async def message_command(self, user: FakeUser, name: str, target: dict[str, Any]) -> FakeInteraction:
        """A message context-menu command on ``target`` (a message payload)."""
        payload = self._interaction_base(2, user, int(target["channel_id"]))
        payload["data"] = {
            "id": self._command_id(name, 3),
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: target}},
        }
        return await self._send_interaction(payload)

    async def click(self, user: FakeUser, message: dict[str, Any], custom_id: str) -> FakeInteraction:
        payload = self._interaction_base(3, user, int(message["channel_id"]))
        payload["message"] = message
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        return await self._send_interaction(payload)

    async def submit_modal(
        self, user: FakeUser, channel_id: int, modal: dict[str, Any], *values: str
    ) -> FakeInteraction:
        """Submit ``modal`` (the data of a type-9 callback) with one value per text input, in order."""
        queue = list(values)
        components: list[dict[str, Any]] = []
        for comp in modal["components"]:
            if comp["type"] == 18:
                inner = comp["component"]
                components.append(
                    {
                        "type": 18,
                        "component": {"type": 4, "custom_id": inner["custom_id"], "value": queue.pop(0)},
                    }
                )
            elif comp["type"] == 1:
                components.append(
                    {
                        "type": 1,
                        "components": [
                            {"type": 4, "custom_id": c["custom_id"], "value": queue.pop(0)}
                            for c in comp["components"]
                        ],
                    }
                )
        payload = self._interaction_base(5, user, channel_id)
        payload["data"] = {"custom_id": modal["custom_id"], "components": components}
        return await self._send_interaction(payload)

    # ---------------------------------------------------------------------------------- test helpers
    async def wait_until(self, predicate: Callable[[], Any], within: float = 5.0, what: str = "") -> Any:
        """Poll ``predicate`` until it is truthy (and return it); fail after ``within`` seconds."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            value = predicate()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}")
            await asyncio.sleep(0.01)

    async def settle(self, seconds: float = 0.15) -> None:
        """Let in-flight events finish (for asserting that nothing happens)."""
        await asyncio.sleep(seconds)

    def bot_messages(self, channel_id: int) -> list[dict[str, Any]]:
        return [
            m
            for m in self.messages.values()
            if m["channel_id"] == str(channel_id) and m["author"]["id"] == str(self.bot.id)
        ]

    def threads(self, parent_id: int | None = None) -> list[dict[str, Any]]:
        return [
            c
            for c in self.channels.values()
            if c["type"] in (11, 12) and (parent_id is None or c["parent_id"] == str(parent_id))
        ]

    def calls_to(self, method: str, pattern: str) -> list[Call]:
        rx = re.compile(pattern)
        return [c for c in self.calls if c.method == method and rx.fullmatch(c.path)]

    def fail_next(
        self,
        method: str,
        pattern: str,
        status: int = 500,
        *,
        times: int = 1,
        after_effect: bool = False,
        retry_after: float = 0.05,
    ) -> None:
        """Answer the next matching call(s) with ``status``; ``after_effect``: do the work first (a
        response lost on the way back), so a retry sees the effect of the first attempt. A 429 is a
        per-route rate limit as Discord sends it (``retry_after`` seconds, in the body and headers)."""
        self._failures.append(_Failure(method, pattern, status, times, after_effect, retry_after))

    # -------------------------------------------------------------------------------------------- REST
    @staticmethod
    def _json(data: Any, status: int = 200) -> web.Response:
        return web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return self._json({"message": message, "code": code}, status)

    def _failure_response(self, failure: _Failure, message: str) -> web.Response:
        if failure.status != 429:
            return self._error(failure.status, 0, message)
        body = {"message": "You are being rate limited.", "retry_after": failure.retry_after, "global": False}
        response = self._json(body, 429)
        # discord.py treats a 429 without ``Via`` as a Cloudflare ban and gives up.
        response.headers.update(
            {
                "Via": "1.1 google",
                "Retry-After": str(max(1, round(failure.retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": str(failure.retry_after),
                "X-RateLimit-Scope": "user",
            }
        )
        return response

    def _failure_for(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method == method and failure.pattern.fullmatch(path) and failure.times > 0:
                failure.times -= 1
                return failure
        return None

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if raw and request.content_type == "application/json":
                body = json.loads(raw)
            elif raw and request.content_type.startswith("multipart/"):
                body = {"multipart": True}
        self.calls.append(Call(request.method, path, body, dict(request.query)))
        # Interaction callbacks and follow-ups authenticate with the interaction token in the URL.
        by_url = path.startswith(("/interactions/", "/webhooks/"))
        if not by_url and request.headers.get("Authorization") != f"Bot {self.token}":
            return self._error(401, 0, "401: Unauthorized")
        failure = self._failure_for(request.method, path)
        if failure is not None and not failure.after_effect:
            return self._failure_response(failure, "injected failure")
        response = await self._route(request.method, path, body, request.query)
        if failure is not None:
            return self._failure_response(failure, "injected failure after effect")
        return response

    async def _route(self, method: str, path: str, body: Any, query: Any) -> web.Response:
        routes: list[tuple[str, str, Callable[..., Awaitable[web.Response]]]] = [
            ("GET", r"/users/@me", self._get_me),
            ("POST", r"/users/@me/channels", self._create_dm),
            ("GET", r"/oauth2/applications/@me", self._get_application),
            ("GET", r"/gateway(/bot)?", self._get_gateway),
            ("PUT", r"/applications/(\d+)/commands", self._put_commands),
            ("GET", r"/applications/(\d+)/commands", self._get_commands),
            ("POST", r"/channels/(\d+)/messages", self._create_message),
            ("GET", r"/channels/(\d+)/messages/(\d+)", self._get_message),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_bot_message),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message),
            ("POST", r"/channels/(\d+)/messages/(\d+)/threads", self._thread_from_message),
            ("POST", r"/channels/(\d+)/threads", self._thread_without_message),
            ("PATCH", r"/channels/(\d+)", self._modify_channel),
            ("DELETE", r"/channels/(\d+)", self._delete_channel),
            ("GET", r"/channels/(\d+)", self._get_channel),
            ("POST", r"/channels/(\d+)/typing", self._typing),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._followup),
            ("GET", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._get_original),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/@original", self._edit_original),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path)
            if verb == method and match:
                return await handler(*match.groups(), body=body or {}, query=query)
        return self._error(404, 0, f"404: Not Found ({method} {path})")

    async def _get_me(self, *_: Any, **__: Any) -> web.Response:
        return self._json({**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0})

    async def _create_dm(self, *, body: Any, **_: Any) -> web.Response:
        """Open (or find) the bot's DM channel with a person, as ``User.send`` does before its first DM."""
        user = self.users.get(int(body.get("recipient_id", 0)))
        if user is None:
            return self._error(400, 50033, "Invalid Recipient(s)")
        return self._json(self.channels[self.dm_channel(user)])

    async def _get_application(self, *_: Any, **__: Any) -> web.Response:
        return self._json(
            {
                "id": str(self.app_id),
                "name": "Haven",
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "bot": self.bot.payload(),
                "terms_of_service_url": None,
                "privacy_policy_url": None,
                "owner": self.bot.payload(),
                "verify_key": "0" * 64,
                "team": None,
                "flags": 1 << 19,
                "tags": [],
                "interactions_endpoint_url": None,
                "redirect_uris": [],
                "approximate_guild_count": len(self.guilds),
            }
        )

    async def _get_gateway(self, *_: Any, **__: Any) -> web.Response:
        return self._json(
            {
                "url": self.gateway_url,
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _put_commands(self, app: str, *, body: Any, **_: Any) -> web.Response:
        """Bulk overwrite: the stored commands are what GET reports afterwards, the way Discord reports
        them: with ``id``, ``application_id`` and ``version``, the permission bitfield as a string, and
        the option fields that hold their default left out (so Haven's comparison must fill them in)."""
        out = []
        for command in body:
            known = next((c for c in self.commands if c["name"] == command["name"]), None)
            cid = known["id"] if known else str(self.next_id())
            stored = {
                "id": cid,
                "application_id": app,
                "version": str(self.next_id()),
                "default_member_permissions": None,
                "dm_permission": True,
                "nsfw": False,
                "type": 1,
                "description": "",
                **command,
            }
            if stored["default_member_permissions"] is not None:
                stored["default_member_permissions"] = str(stored["default_member_permissions"])
            if "options" in stored:
                stored["options"] = [_as_reported(o) for o in stored["options"]]
            out.append(stored)
        self.commands = out
        return self._json(out)

    async def _get_commands(self, *_: Any, **__: Any) -> web.Response:
        return self._json(self.commands)

    def _may(self, channel_id: int, perm: int) -> bool:
        guild = self.guild_of(channel_id)
        return guild is None or bool(self.permissions(guild, self.bot.id) & perm)

    def _store_bot_message(self, channel_id: int, body: dict[str, Any], *, flags: int = 0) -> dict[str, Any]:
        msg = self._message(
            channel_id,
            self.bot,
            body.get("content") or "",
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            nonce=body.get("nonce"),
            flags=flags or int(body.get("flags") or 0),
        )
        if not (msg["flags"] & EPHEMERAL):
            self.messages[int(msg["id"])] = msg
        return msg

    async def _create_message(self, channel: str, *, body: Any, **_: Any) -> web.Response:
        cid = int(channel)
        if cid not in self.channels:
            return self._error(404, 10003, "Unknown Channel")
        meta = self.channels[cid].get("thread_metadata")
        if meta and meta["locked"] and not self._may(cid, MANAGE_THREADS):
            return self._error(403, 50083, "Thread is archived")
        in_thread = meta is not None
        if not self._may(cid, SEND_MESSAGES_IN_THREADS if in_thread else SEND_MESSAGES):
            return self._error(403, 50013, "Missing Permissions")
        if len(body.get("content") or "") > 2000:
            return self._error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length.")
        nonce = body.get("nonce")
        if nonce and body.get("enforce_nonce") and self._nonces.get((cid, nonce)) in self.messages:
            return self._json(self.messages[self._nonces[(cid, nonce)]])
        msg = self._store_bot_message(cid, body)
        if nonce:
            self._nonces[(cid, nonce)] = int(msg["id"])
        guild = self.guild_of(cid)
        await self.dispatch("MESSAGE_CREATE", msg, guild_id=guild.id if guild else None)
        return self._json(msg)

    async def _get_message(self, channel: str, message: str, **_: Any) -> web.Response:
        msg = self.messages.get(int(message))
        if msg is None or msg["channel_id"] != channel:
            return self._error(404, 10008, "Unknown Message")
        return self._json(msg)

    async def _edit_bot_message(self, channel: str, message: str, *, body: Any, **_: Any) -> web.Response:
        msg = self.messages.get(int(message))
        if msg is None or msg["channel_id"] != channel:
            return self._error(404, 10008, "Unknown Message")
        if msg["author"]["id"] != str(self.bot.id):
            return self._error(403, 50005, "Cannot edit a message authored by another user")
        if len(body.get("content") or "") > 2000:
            return self._error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length.")
        for key in ("content", "embeds", "components"):
            if key in body:
                msg[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        msg["edited_timestamp"] = _now_iso()
        self.edit_log.append((int(message), time.monotonic(), msg["content"]))
        guild = self.guild_of(int(channel))
        await self.dispatch("MESSAGE_UPDATE", msg, guild_id=guild.id if guild else None)
        return self._json(msg)

    async def _delete_message(self, channel: str, message: str, **_: Any) -> web.Response:
        msg = self.messages.get(int(message))
        if msg is None or msg["channel_id"] != channel:
            return self._error(404, 10008, "Unknown Message")
        if msg["author"]["id"] != str(self.bot.id):
            return self._error(403, 50013, "Missing Permissions")
        del self.messages[int(message)]
        guild = self.guild_of(int(channel))
        event = {"id": message, "channel_id": channel, **({"guild_id": str(guild.id)} if guild else {})}
        await self.dispatch("MESSAGE_DELETE", event, guild_id=guild.id if guild else None)
        return web.Response(status=204)

    async def _new_thread(self, parent: int, tid: int, name: str, kind: int) -> web.Response:
        guild = self.guild_of(parent)
        if guild is None:
            return self._error(400, 50024, "Cannot execute action on this channel type")
        if not self._may(parent, CREATE_PUBLIC_THREADS):
            return self._error(403, 50013, "Missing Permissions")
        thread = self._thread(guild.id, parent, tid, self.bot.id, name, kind)
        self.channels[tid] = thread
        guild.channels.append(tid)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, guild_id=guild.id)
        return self._json(thread)

    async def _thread_from_message(self, channel: str, message: str, *, body: Any, **_: Any) -> web.Response:
        mid = int(message)
        if mid in self.channels:
            return self._error(400, 160004, "A thread has already been created for this message")
        if mid not in self.messages:
            return self._error(404, 10008, "Unknown Message")
        return await self._new_thread(int(channel), mid, body.get("name", "thread"), 11)

    async def _thread_without_message(self, channel: str, *, body: Any, **_: Any) -> web.Response:
        if self.channels.get(int(channel), {}).get("type") == 15:
            return await self._forum_post(int(channel), body)
        return await self._new_thread(
            int(channel), self.next_id(), body.get("name", "thread"), int(body.get("type", 12))
        )

    async def _forum_post(self, forum: int, body: Any) -> web.Response:
        """The bot opens a forum post: a thread, and its first message (``body["message"]``) under the
        post's id; the answer is the thread with that ``message``, as Discord sends it."""
        guild = self.guild_of(forum)
        if guild is None:
            return self._error(400, 50024, "Cannot execute action on this channel type")
        if not self._may(forum, SEND_MESSAGES):
            return self._error(403, 50013, "Missing Permissions")
        first = body.get("message") or {}
        if not (first.get("content") or first.get("embeds")):
            return self._error(400, 50006, "Cannot send an empty message")
        tid = self.next_id()
        thread = self._thread(guild.id, forum, tid, self.bot.id, body.get("name", "post"))
        self.channels[tid] = thread
        guild.channels.append(tid)
        await self.dispatch("THREAD_CREATE", {**thread, "newly_created": True}, guild_id=guild.id)
        msg = self._message(
            tid,
            self.bot,
            first.get("content") or "",
            message_id=tid,
            embeds=first.get("embeds") or [],
            components=first.get("components") or [],
        )
        self.messages[tid] = msg
        await self.dispatch("MESSAGE_CREATE", msg, guild_id=guild.id)
        return self._json({**thread, "message": msg})

    async def _modify_channel(self, channel: str, *, body: Any, **_: Any) -> web.Response:
        cid = int(channel)
        current = self.channels.get(cid)
        if current is None:
            return self._error(404, 10003, "Unknown Channel")
        meta = current.get("thread_metadata")
        if meta is not None:
            if "locked" in body and not self._may(cid, MANAGE_THREADS):
                return self._error(403, 50013, "Missing Permissions")
            for key in ("archived", "locked", "auto_archive_duration"):
                if key in body:
                    meta[key] = body[key]
            meta["archive_timestamp"] = _now_iso()
        if "name" in body:
            current["name"] = body["name"]
        guild = self.guild_of(cid)
        event = "THREAD_UPDATE" if meta is not None else "CHANNEL_UPDATE"
        await self.dispatch(event, current, guild_id=guild.id if guild else None)
        return self._json(current)

    async def _delete_channel(self, channel: str, **_: Any) -> web.Response:
        current = self.channels.pop(int(channel), None)
        if current is None:
            return self._error(404, 10003, "Unknown Channel")
        guild = self.guild_of(int(current.get("parent_id") or 0))
        if guild is not None and current.get("thread_metadata"):
            event = {
                "id": current["id"],
                "guild_id": current["guild_id"],
                "parent_id": current["parent_id"],
                "type": current["type"],
            }
            await self.dispatch("THREAD_DELETE", event, guild_id=guild.id)
        return self._json(current)

    async def _get_channel(self, channel: str, **_: Any) -> web.Response:
        current = self.channels.get(int(channel))
        return self._json(current) if current else self._error(404, 10003, "Unknown Channel")

    async def _typing(self, *_: Any, **__: Any) -> web.Response:
        return web.Response(status=204)

    def _interaction(self, token: str) -> FakeInteraction | None:
        return self.interactions.get(token)

    async def _callback(self, iid: str, token: str, *, body: Any, **_: Any) -> web.Response:
        ix = self._interaction(token)
        if ix is None or str(ix.id) != iid:
            return self._error(404, 10062, "Unknown interaction")
        if ix.callbacks:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        kind = int(body.get("type", 0))
        data = body.get("data") or {}
        ix.callbacks.append({"type": kind, "data": data})
        channel_id = int(ix.payload["channel_id"])
        info: dict[str, Any] = {"id": iid, "type": ix.payload["type"]}
        out: dict[str, Any] = {"interaction": info}
        if kind in (4, 5):
            flags = int(data.get("flags") or 0)
            if kind == 5:
                flags |= LOADING
            msg = self._store_bot_message(channel_id, data if kind == 4 else {}, flags=flags)
            ix.original = msg
            info.update(
                response_message_id=msg["id"],
                response_message_loading=kind == 5,
                response_message_ephemeral=bool(flags & EPHEMERAL),
            )
            out["resource"] = {"type": kind, "message": msg}
            if not flags & EPHEMERAL:
                guild = self.guild_of(channel_id)
                await self.dispatch("MESSAGE_CREATE", msg, guild_id=guild.id if guild else None)
        return self._json(out)

    async def _followup(self, app: str, token: str, *, body: Any, **_: Any) -> web.Response:
        ix = self._interaction(token)
        if ix is None:
            return self._error(404, 10015, "Unknown Webhook")
        if not ix.callbacks:
            return self._error(404, 10015, "Unknown Webhook")
        channel_id = int(ix.payload["channel_id"])
        guild = self.guild_of(channel_id)
        original = ix.original
        if original is not None and original["flags"] & LOADING:
            # The first follow-up after a "thinking" defer fills in the loading message (keeping its
            # visibility), as on Discord.
            original["flags"] &= ~LOADING
            for key in ("content", "embeds", "components"):
                original[key] = body.get(key) or ([] if key != "content" else "")
            if not original["flags"] & EPHEMERAL:
                await self.dispatch("MESSAGE_UPDATE", original, guild_id=guild.id if guild else None)
            return self._json(original)
        msg = self._store_bot_message(channel_id, body)
        msg["webhook_id"] = app
        ix.followups.append(msg)
        if not msg["flags"] & EPHEMERAL:
            await self.dispatch("MESSAGE_CREATE", msg, guild_id=guild.id if guild else None)
        return self._json(msg)

    async def _get_original(self, app: str, token: str, **_: Any) -> web.Response:
        ix = self._interaction(token)
        if ix is None or ix.original is None:
            return self._error(404, 10008, "Unknown Message")
        return self._json(ix.original)

    async def _edit_original(self, app: str, token: str, *, body: Any, **_: Any) -> web.Response:
        ix = self._interaction(token)
        if ix is None or ix.original is None:
            return self._error(404, 10008, "Unknown Message")
        ix.original.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
        return self._json(ix.original)


def _as_reported(option: dict[str, Any]) -> dict[str, Any]:
    """An application-command option as Discord reports it: fields holding their default left out."""
    out = {k: v for k, v in option.items() if v is not None and v is not False and v != [] and v != {}}
    if "options" in out:
        out["options"] = [_as_reported(o) for o in out["options"]]
    return out
