"""Files shared with Haven in Slack, at the wire: the real Bolt app, signed events whose ``files`` point at
the mock Slack's file host, and the scripted Messages API reading what reached it."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.types import Author, ThreadRef
from fakes.fake_anthropic import FakeAnthropic, text
from fakes.file_host import FileHost
from fakes.mock_slack import MockSlack
from fakes.slack_harness import (
    ALICE,
    BOT_TOKEN,
    CHANNEL,
    TEAM,
    SlackHarness,
    harness_on,
    is_crisis,
    post_words,
)
from tests.slack.test_workspaces import (  # the many-workspaces site, built as `haven run` builds it
    ROOM,
    SECOND,
    SECOND_BOT,
    SECOND_TOKEN,
    Site,
    eventually,
    mention,
    second_envelope,
    site,  # noqa: F401  # the fixture itself (SQLite and PostgreSQL), requested by name below
)

# A PNG's signature and a few bytes: the fake API does not decode it, Haven only checks what it is.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
async def files(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> AsyncIterator[SlackHarness]:
    """The SQLite harness with the mock Slack as Slack's file host (in production: files.slack.com)."""
    async for h in harness_on(
        f"sqlite:///{tmp_path}/haven.db",
        slack_mock,
        anthropic,
        HAVEN_SLACK_FILE_ORIGINS=[slack_mock.url],
    ):
        yield h


async def started(h: SlackHarness, words: str = "I'll share a few things") -> str:
    h.anthropic.enqueue(text("Go ahead."))
    root = h.ts()
    await h.mention(words, ts=root)
    return root


async def share(h: SlackHarness, root: str, files: list[dict[str, Any]], words: str = "") -> None:
    event = h.message(words, ts=h.ts(), thread_ts=root, subtype="file_share", files=files)
    await h.event(event)


def user_blocks(request: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for m in request["messages"] if m["role"] == "user" for b in m["content"]]


def strip_cache(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: strip_cache(v) for k, v in obj.items() if k != "cache_control"}
    return [strip_cache(v) for v in obj] if isinstance(obj, list) else obj


def shown_words(h: SlackHarness, root: str) -> str:
    return "\n".join(post_words(m) for m in h.shown(root))


async def test_an_image_shared_in_a_thread_reaches_the_model_as_an_image_block_and_stays_cached(
    files: SlackHarness,
) -> None:
    h = files
    root = await started(h)
    shared = h.slack.add_file("chart.png", PNG, "image/png")
    h.anthropic.enqueue(text("A chart going up."), text("Yes, the same chart."))

    await share(h, root, [shared], "what does this show?")

    # Downloaded once, from Slack's own host, with the workspace's bot token.
    assert len(h.slack.file_requests) == 1
    assert h.slack.file_requests[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"
    first = h.model_requests()[-1]
    images = [b for b in user_blocks(first) if b["type"] == "image"]
    assert len(images) == 1
    assert images[0]["source"] == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert "what does this show?" in json.dumps(first["messages"][-1])

    # The next turn repeats the image block byte for byte: the request extends the previous one.
    await h.reply("is it still going up?", thread_ts=root)
    second = h.model_requests()[-1]
    one = json.dumps(strip_cache(first["messages"]))[:-1]  # without the list's closing bracket
    two = json.dumps(strip_cache(second["messages"]))
    assert two.startswith(one)
    assert len(h.slack.file_requests) == 1  # the bytes came from the cache, not a second download

    # What is stored is a reference and the hash, never the bytes.
    history = await h.services.engine.history(ThreadRef("slack", TEAM, CHANNEL, root))
    stored = json.dumps([m.content for m in history])
    assert base64.b64encode(PNG).decode()[:40] not in stored
    refs = [b for m in history for b in m.content if b.get("type") == "haven_file"]
    assert len(refs) == 1
    assert refs[0]["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert refs[0]["id"] == shared["id"] and refs[0]["media_type"] == "image/png"


async def test_a_file_only_message_is_answered(files: SlackHarness) -> None:
    h = files
    root = await started(h)
    notes = h.slack.add_file("notes.md", b"# Plan\n\n- ship on Friday\n", "text/plain")
    h.anthropic.enqueue(text("A plan to ship on Friday."))

    await share(h, root, [notes])

    request = h.model_requests()[-1]
    words = json.dumps(user_blocks(request))
    assert '<file name=\\"notes.md\\">' in words and "ship on Friday" in words
    assert "A plan to ship on Friday." in shown_words(h, root)


async def test_a_file_url_on_another_host_is_refused_without_any_request_to_it(
    files: SlackHarness,
) -> None:
    h = files
    root = await started(h)
    async with FileHost() as elsewhere:
        url = elsewhere.add("secret.txt", b"internal", "text/plain")
        forged = {
            "id": "FFORGED01",
            "name": "secret.txt",
            "mimetype": "text/plain",
            "size": 8,
            "url_private_download": url,
        }
        h.anthropic.enqueue(text("Noted."))

        await share(h, root, [forged], "look at this")

        assert elsewhere.requests == []
    assert h.slack.file_requests == []
    shown = shown_words(h, root)
    assert "I couldn't read secret.txt (it isn't on Slack's own file servers)." in shown
    assert "internal" not in json.dumps(h.model_requests()[-1])
    assert "[attached file secret.txt was not read" in json.dumps(h.model_requests()[-1])


async def test_a_30_mb_file_is_refused_before_download_with_a_clear_reply(files: SlackHarness) -> None:
    h = files
    root = await started(h)
    big = h.slack.add_file("scan.pdf", b"%PDF-1.7\n", "application/pdf", size=30_000_000)
    h.anthropic.enqueue(text("I'll wait for a smaller one."))

    await share(h, root, [big])

    assert h.slack.file_requests == []  # refused on Slack's metadata alone
    assert "I couldn't read scan.pdf (it is 30 MB, over the 10 MB limit)." in shown_words(h, root)


async def test_an_unsupported_type_gets_a_one_line_note_and_the_rest_is_read(files: SlackHarness) -> None:
    h = files
    root = await started(h)
    archive = h.slack.add_file("logs.zip", b"PK\x03\x04", "application/zip")
    image = h.slack.add_file("shot.png", PNG, "image/png")
    h.anthropic.enqueue(text("The screenshot shows an error."))

    await share(h, root, [archive, image], "here")

    assert len(h.slack.file_requests) == 1  # the zip was never downloaded
    assert "I couldn't read logs.zip (I can't read .zip files). I looked at the rest." in shown_words(h, root)
    assert [b["type"] for b in user_blocks(h.model_requests()[-1])][-3:] == ["text", "image", "text"]


async def test_a_spanish_speaker_gets_the_note_in_spanish_and_the_model_still_reads_english(
    files: SlackHarness,
) -> None:
    h = files
    h.slack.add_user("UESTEBAN", "esteban", locale="es-ES")  # users.info says the person's locale
    h.anthropic.enqueue(text("Adelante."))
    root = h.ts()
    await h.mention("Te paso unas cosas", ts=root, user="UESTEBAN")
    archive = h.slack.add_file("logs.zip", b"PK\x03\x04", "application/zip")
    image = h.slack.add_file("shot.png", PNG, "image/png")
    h.anthropic.enqueue(text("La captura muestra un error."))

    files_shared = [archive, image]
    await h.event(
        h.message(
            "aquí", ts=h.ts(), thread_ts=root, user="UESTEBAN", subtype="file_share", files=files_shared
        )
    )

    shown = shown_words(h, root)
    assert "No pude leer logs.zip (no puedo leer archivos .zip). Revisé el resto." in shown
    assert "I couldn't read" not in shown
    # What the model was told stays in English, as stored: the same bytes on every later turn.
    assert "[attached file logs.zip was not read: I can't read .zip files]" in json.dumps(
        h.model_requests()[-1]
    )


async def test_a_text_file_is_read_by_the_risk_detector(files: SlackHarness) -> None:
    h = files
    root = await started(h)
    letter = h.slack.add_file("letter.txt", b"I want to kill myself tonight.", "text/plain")
    h.anthropic.enqueue(text("I'm here with you."))

    await share(h, root, [letter], "please read this")

    posts = h.posts(thread_ts=root)
    assert any(is_crisis(p) for p in posts)


async def test_after_a_restart_the_file_is_fetched_again_checked_and_the_prefix_holds(
    tmp_path: Path, slack_mock: MockSlack, anthropic: FakeAnthropic
) -> None:
    db = f"sqlite:///{tmp_path}/haven.db"
    origins = {"HAVEN_SLACK_FILE_ORIGINS": [slack_mock.url]}
    shared = slack_mock.add_file("chart.png", PNG, "image/png")
    async for h in harness_on(db, slack_mock, anthropic, **origins):
        root = await started(h)
        h.anthropic.enqueue(text("A chart."))
        await share(h, root, [shared], "what is this?")
    first = [r for r in anthropic.model_requests() if not r.get("tool_choice")][-1]

    # A new process: nothing in memory, so the file is fetched again by its reference and its hash
    # checked. (Its harness counts ts afresh, so the replies take ts of their own.)
    async for h in harness_on(db, slack_mock, anthropic, **origins):
        h.anthropic.enqueue(text("Still a chart."))
        await h.reply("and now?", thread_ts=root, ts=f"{root[:-6]}000101")
        second = h.model_requests()[-1]
    assert len(slack_mock.file_requests) == 2
    one = json.dumps(strip_cache(first["messages"]))[:-1]
    assert json.dumps(strip_cache(second["messages"])).startswith(one)

    # The bytes behind the URL changed: the model gets a note instead of a different file.
    path = next(iter(slack_mock.files))
    slack_mock.files[path] = ("image/png", PNG + b"changed")
    async for h in harness_on(db, slack_mock, anthropic, **origins):
        h.anthropic.enqueue(text("I can't see it any more."))
        await h.reply("and again?", thread_ts=root, ts=f"{root[:-6]}000102")
        third = h.model_requests()[-1]
    assert blocks_of_type(third, "image") == []
    assert "[attached file chart.png is no longer available]" in json.dumps(third["messages"])


async def test_forget_me_leaves_no_file_reference(files: SlackHarness) -> None:
    h = files
    root = await started(h)
    shared = h.slack.add_file("chart.png", PNG, "image/png")
    h.anthropic.enqueue(text("A chart."))
    await share(h, root, [shared], "what is this?")
    thread = ThreadRef("slack", TEAM, CHANNEL, root)
    assert "haven_file" in json.dumps([m.content for m in await h.services.engine.history(thread)])

    await h.services.home.forget_me(Author(ALICE, "alice"), "slack", TEAM)

    stored = json.dumps([m.content for m in await h.services.engine.history(thread)])
    assert "haven_file" not in stored
    assert shared["id"] not in stored and "chart.png" not in stored and "sha256" not in stored


def blocks_of_type(request: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [b for b in user_blocks(request) if b["type"] == kind]


async def test_a_file_in_an_ended_thread_or_a_strangers_thread_is_never_downloaded(
    files: SlackHarness,
) -> None:
    h = files
    root = await started(h)
    await h.services.engine.end_by_command(ThreadRef("slack", TEAM, CHANNEL, root), Author(ALICE, "alice"))
    calls = len(h.model_requests())

    await share(h, root, [h.slack.add_file("late.png", PNG, "image/png")])
    await share(h, h.ts(), [h.slack.add_file("stray.png", PNG, "image/png")])  # a thread that is not Haven's

    assert h.slack.file_requests == []
    assert len(h.model_requests()) == calls


@pytest.fixture
def file_origin_env(monkeypatch: pytest.MonkeyPatch, slack_mock: MockSlack) -> None:
    """For fixtures built from the environment (``test_workspaces.site``): the mock Slack serves files."""
    monkeypatch.setenv("HAVEN_SLACK_FILE_ORIGINS", json.dumps([slack_mock.url]))


async def test_many_workspaces_each_file_is_read_with_its_own_workspaces_token(
    file_origin_env: None,
    site: Site,  # noqa: F811  # test_workspaces's fixture, after file_origin_env set the environment
    slack_mock: MockSlack,
    anthropic: FakeAnthropic,
) -> None:
    status, _ = await site.install(
        slack_mock.add_workspace(SECOND, token=SECOND_TOKEN, bot_user_id=SECOND_BOT)
    )
    assert status == 200
    anthropic.enqueue(text("A chart, in the second workspace."))
    root = "1700000700.000001"
    event = mention(root, "what is this?")
    event["files"] = [slack_mock.add_file("chart.png", PNG, "image/png")]

    assert await site.post_event(second_envelope(event)) == 200
    await eventually(lambda: slack_mock.thread(ROOM, root))

    [download] = slack_mock.file_requests
    assert download.headers["Authorization"] == f"Bearer {SECOND_TOKEN}"
    chats = [r for r in anthropic.model_requests() if not r.get("tool_choice")]
    assert blocks_of_type(chats[-1], "image")
