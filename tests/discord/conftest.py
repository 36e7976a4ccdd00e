"""Fixtures for the Discord adapter: a fake Discord (REST + gateway), the fake Anthropic API, real storage,
and Haven's real ``DiscordConnector`` running discord.py against them.

``db_url`` is SQLite here; a test module that overrides it with ``database_url`` runs on PostgreSQL too.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from adapters.discord import DiscordConnector
from bot.app import Services
from bot.prompts import END_TOOL, VERDICT_TOOL
from fakes.fake_anthropic import CutStream, FakeAnthropic, Reply, text, tool_use
from fakes.fake_discord import FakeDiscord, FakeGuild, FakeUser
from fakes.harness import make_settings, services_for


@dataclass
class World:
    api: FakeDiscord
    guild: FakeGuild
    channel: int
    alice: FakeUser
    bob: FakeUser
    admin: FakeUser


class PacedAnthropic(FakeAnthropic):
    """The fake Anthropic API, but with ``pace`` > 0 a streamed reply's text comes word by word (or in
    pieces of ``piece_chars`` characters), ``pace`` seconds apart, as from a real model. HAVEN_STREAM is
    on by default, so every turn in these tests streams."""

    pace = 0.0
    piece_chars = 0

    def _events(  # type: ignore[override]
        self, message: dict[str, Any], delta_chars: int = 0
    ) -> list[tuple[str, dict[str, Any]]]:
        events = FakeAnthropic._events(message, delta_chars)
        if not self.pace:
            return events
        out: list[tuple[str, dict[str, Any]]] = []
        for name, data in events:
            delta = data.get("delta") or {}
            if name != "content_block_delta" or delta.get("type") != "text_delta":
                out.append((name, data))
                continue
            whole, n = delta["text"], self.piece_chars
            pieces = (
                [whole[i : i + n] for i in range(0, len(whole), n)]
                if n
                else re.findall(r"\s*\S+\s*|\s+", whole)
            )
            out += [(name, {**data, "delta": {**delta, "text": piece}}) for piece in pieces]
        return out

    async def _stream(
        self, request: web.Request, message: dict[str, Any], cut: CutStream | None, reply: Reply
    ) -> web.StreamResponse:
        if not self.pace:
            return await super()._stream(request, message, cut, reply)
        resp = web.StreamResponse(headers={"Cache-Control": "no-cache"})
        resp.content_type = "text/event-stream"
        await resp.prepare(request)
        events = self._events(message)
        if cut:
            events = events[: cut.after_events]
            if cut.error_event:
                events.append(("error", {"type": "error", "error": cut.error_event}))
        for name, data in events:
            if name == "content_block_delta":
                await asyncio.sleep(self.pace)
            await resp.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        if cut and not cut.error_event:
            assert request.transport is not None
            request.transport.abort()
            return resp
        await resp.write_eof()
        return resp


@pytest.fixture
async def anthropic() -> AsyncIterator[PacedAnthropic]:
    async with PacedAnthropic(default=text("Happy to help.")) as server:
        yield server


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with FakeDiscord() as api:
        guild = api.add_guild("Guild A")
        channel = api.add_text_channel(guild, "general")
        yield World(
            api,
            guild,
            channel,
            api.add_member(guild, "alice"),
            api.add_member(guild, "bob"),
            api.add_member(guild, "ada", admin=True),
        )


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
async def services(db_url: str, anthropic: FakeAnthropic, world: World) -> AsyncIterator[Services]:
    settings = make_settings(db_url, anthropic.url, DISCORD_TOKEN=world.api.token)
    async with services_for(settings) as s:
        yield s


@asynccontextmanager
async def running(services: Services, **options: Any) -> AsyncIterator[DiscordConnector]:
    """Haven's connector, connected and ready, listening in the background; disconnected on exit."""
    connector = DiscordConnector(services, guild_ready_timeout=0.01, **options)
    await connector.connect()
    listening = asyncio.create_task(connector.listen())
    try:
        await asyncio.wait_for(connector.wait_until_ready(), 5)
        yield connector
    finally:
        await connector.disconnect()
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)


@pytest.fixture
async def bot(services: Services, tmp_path: Path) -> AsyncIterator[DiscordConnector]:
    async with running(services) as connector:
        yield connector


# -- scripted model steps ----------------------------------------------------------------------------


def abuse_proposal(text_before: str | None = None) -> Reply:
    return tool_use(END_TOOL, {"reason": "abuse", "note": "insults after warnings"}, text_before=text_before)


def verdict(persistent_abuse: bool = True, risk: bool = False) -> Reply:
    return tool_use(VERDICT_TOOL, {"persistent_abuse": persistent_abuse, "risk": risk})


def user_texts(body: dict[str, Any]) -> list[str]:
    """The person-written text blocks of one model request, in order."""
    return [
        b["text"]
        for m in body["messages"]
        if m["role"] == "user"
        for b in m["content"]
        if b.get("type") == "text"
    ]


def chat_requests(server: FakeAnthropic) -> list[dict[str, Any]]:
    """Model requests of conversation turns (not the verifier's classification calls)."""
    return [b for b in server.model_requests() if not b.get("tool_choice")]


def closure_messages(api: FakeDiscord, channel: int, title: str = "has ended") -> list[dict[str, Any]]:
    """The closure notices the bot posted in ``channel`` (their title holds ``title``)."""
    return [
        m
        for m in api.bot_messages(channel)
        if any(title in (e.get("title") or "") for e in m.get("embeds", []))
    ]
