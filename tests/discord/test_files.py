"""Attachments on Discord, at the wire: discord.py's real gateway and HTTP code against the fake Discord,
attachment URLs on a local stand-in for Discord's CDN, and the scripted Messages API reading the blocks."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.app import Services
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.file_host import FileHost
from fakes.harness import make_settings, services_for

from .conftest import World, chat_requests

PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n3 0 obj << /Type /Page >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256))


@pytest.fixture
async def cdn() -> AsyncIterator[FileHost]:
    async with FileHost() as host:
        yield host


@pytest.fixture
async def services(
    db_url: str, anthropic: FakeAnthropic, world: World, cdn: FileHost
) -> AsyncIterator[Services]:
    """As conftest's, with the local file host standing in for Discord's CDN."""
    settings = make_settings(
        db_url, anthropic.url, DISCORD_TOKEN=world.api.token, HAVEN_DISCORD_FILE_ORIGINS=[cdn.url]
    )
    async with services_for(settings) as s:
        yield s


def blocks_of(request: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for m in request["messages"] if m["role"] == "user" for b in m["content"] if b["type"] == kind]


def said(world: World, thread: int) -> str:
    return "\n".join(m["content"] or "" for m in world.api.bot_messages(thread))


async def test_a_pdf_attached_to_a_mention_reaches_the_model_as_a_document_block(
    world: World, bot: Any, anthropic: FakeAnthropic, cdn: FileHost
) -> None:
    api = world.api
    anthropic.enqueue(text("The report has one page."))
    url = cdn.add("report.pdf", PDF, "application/pdf")
    report = api.attachment(url, "report.pdf", len(PDF), "application/pdf")

    mention = await api.post_message(
        world.channel, world.alice, "summarise this", mention_bot=True, attachments=[report]
    )
    thread = int(mention["id"])
    await api.wait_until(lambda: "one page" in said(world, thread), what="the reply")

    [document] = blocks_of(chat_requests(anthropic)[-1], "document")
    assert document["source"] == {
        "type": "base64",
        "media_type": "application/pdf",
        "data": base64.b64encode(PDF).decode(),
    }
    assert document["title"] == "report.pdf"
    assert len(cdn.requests) == 1
    assert "Authorization" not in cdn.requests[0].headers  # Discord's CDN URLs carry their own signature


async def test_an_attachment_only_message_in_the_thread_is_answered(
    world: World, bot: Any, anthropic: FakeAnthropic, cdn: FileHost
) -> None:
    api = world.api
    anthropic.enqueue(text("Hello Alice!"), text("A nice screenshot."))
    mention = await api.post_message(world.channel, world.alice, "hi", mention_bot=True)
    thread = int(mention["id"])
    await api.wait_until(lambda: api.bot_messages(thread), what="the first reply")

    shot = api.attachment(cdn.add("shot.png", PNG, "image/png"), "shot.png", len(PNG), "image/png")
    await api.post_message(thread, world.alice, "", attachments=[shot])
    await api.wait_until(lambda: "nice screenshot" in said(world, thread), what="the reply to the file")

    [image] = blocks_of(chat_requests(anthropic)[-1], "image")
    assert image["source"]["media_type"] == "image/png"
    assert image["source"]["data"] == base64.b64encode(PNG).decode()


async def test_an_attachment_url_elsewhere_is_refused_without_a_request_and_noted(
    world: World, bot: Any, anthropic: FakeAnthropic, cdn: FileHost
) -> None:
    api = world.api
    anthropic.enqueue(text("Noted."))
    async with FileHost() as elsewhere:
        forged = api.attachment(
            elsewhere.add("keys.txt", b"secret", "text/plain"), "keys.txt", 6, "text/plain"
        )
        mention = await api.post_message(
            world.channel, world.alice, "read this", mention_bot=True, attachments=[forged]
        )
        thread = int(mention["id"])
        await api.wait_until(lambda: "Noted." in said(world, thread), what="the reply")
        assert elsewhere.requests == []
    assert cdn.requests == []
    assert "I couldn't read keys.txt (it isn't on Discord's own file servers)." in said(world, thread)
    assert "secret" not in json.dumps(chat_requests(anthropic)[-1]["messages"])


async def test_a_30_mb_attachment_is_refused_before_download_with_a_clear_reply(
    world: World, bot: Any, anthropic: FakeAnthropic, cdn: FileHost
) -> None:
    api = world.api
    anthropic.enqueue(text("Send a smaller one?"))
    big = api.attachment(cdn.add("scan.pdf", b"%PDF-1.7\n"), "scan.pdf", 30_000_000, "application/pdf")

    mention = await api.post_message(world.channel, world.alice, "", mention_bot=True, attachments=[big])
    thread = int(mention["id"])
    await api.wait_until(lambda: "smaller one" in said(world, thread), what="the reply")

    assert cdn.requests == []  # refused on Discord's own size, before any request
    assert "I couldn't read scan.pdf (it is 30 MB, over the 10 MB limit)." in said(world, thread)
