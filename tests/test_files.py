"""Attached files as model input, without I/O: what is read as what (``bot.files``), the limits, the
notes, the byte cache, and ``bot.attachments`` with a scripted fetcher (fetch once, resolve by hash)."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from bot.attachments import Attachments, ByteCache
from bot.files import (
    REF_TYPE,
    FileLimits,
    FileRefused,
    FileTooBig,
    FileUnavailable,
    Reason,
    api_block,
    check_before_fetch,
    classify,
    megabytes,
    pdf_pages,
    person_note,
    read_file,
    sha256,
)
from bot.i18n import english, strings_for
from bot.types import Attachment, HistoryMessage, ThreadRef

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
GIF = b"GIF89a" + b"\x00" * 32
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + b"\x00" * 32
PDF_2 = b"%PDF-1.4\n<< /Type /Pages /Kids [3 0 R 4 0 R] >>\n<< /Type /Page >>\n<</Type/Page>>\n%%EOF"
LIMITS = FileLimits()
THREAD = ThreadRef("slack", "T1", "C1", "1.0")


def file(
    name: str, mimetype: str = "", size: int | None = None, url: str = "https://files.example/x"
) -> Attachment:
    return Attachment("F1", name, mimetype, url, size)


@pytest.mark.parametrize(
    ("name", "mimetype", "kind"),
    [
        ("shot.png", "image/png", "image"),
        ("photo.JPG", "", "image"),  # no media type (Discord may send none): the extension decides
        ("anim.gif", "image/gif", "image"),
        ("pic.webp", "image/webp", "image"),
        ("scan.tiff", "image/tiff", None),
        ("vector.svg", "image/svg+xml", None),
        ("report.pdf", "application/pdf", "pdf"),
        ("report.pdf", "application/octet-stream", "pdf"),
        ("notes.txt", "text/plain", "text"),
        ("main.py", "text/x-python", "text"),
        ("main.rs", "application/octet-stream", "text"),
        ("data.json", "application/json", "text"),
        ("Dockerfile", "", "text"),
        ("page.html", "text/html", "text"),
        ("logs.zip", "application/zip", None),
        ("deck.pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation", None),
        ("binary", "application/octet-stream", None),
    ],
)
def test_classify(name: str, mimetype: str, kind: str | None) -> None:
    assert classify(name, mimetype) == kind


@pytest.mark.parametrize(
    ("name", "mimetype", "data", "block"),
    [
        ("a.png", "image/png", PNG, {"type": "image", "media_type": "image/png"}),
        ("a.jpg", "image/jpeg", JPEG, {"type": "image", "media_type": "image/jpeg"}),
        ("a.gif", "image/gif", GIF, {"type": "image", "media_type": "image/gif"}),
        ("a.webp", "image/webp", WEBP, {"type": "image", "media_type": "image/webp"}),
        # The platform said PNG; the bytes are a JPEG: the API is told what the bytes are.
        ("a.png", "image/png", JPEG, {"type": "image", "media_type": "image/jpeg"}),
        ("r.pdf", "application/pdf", PDF_2, {"type": "document", "media_type": "application/pdf"}),
        (
            "n.txt",
            "text/plain",
            b"hello\n",
            {"type": "text", "text": '<file name="n.txt">\nhello\n\n</file>'},
        ),
        (
            'a"<b>.md',
            "text/markdown",
            b"x",
            {"type": "text", "text": '<file name="a&quot;&lt;b&gt;.md">\nx\n</file>'},
        ),
        (
            "bad.txt",
            "text/plain",
            b"caf\xe9",
            {"type": "text", "text": '<file name="bad.txt">\ncaf\ufffd\n</file>'},
        ),
    ],
)
def test_read_file_builds_the_block(name: str, mimetype: str, data: bytes, block: dict[str, Any]) -> None:
    got = read_file(file(name, mimetype, len(data)), data, LIMITS)
    if block["type"] == "text":
        assert got.block == block
        assert got.text is not None
        return
    assert got.block["type"] == block["type"]
    assert got.block["source"] == {
        "type": "base64",
        "media_type": block["media_type"],
        "data": base64.b64encode(data).decode(),
    }
    assert got.text is None


@pytest.mark.parametrize(
    ("name", "mimetype", "data", "limits", "key", "params", "reason"),
    [
        (
            "a.png",
            "image/png",
            b"<html>",
            LIMITS,
            "files.not_image",
            {},
            "it isn't a PNG, JPEG, GIF or WebP image",
        ),
        ("r.pdf", "application/pdf", b"not a pdf", LIMITS, "files.not_pdf", {}, "it isn't a PDF"),
        (
            "r.pdf",
            "application/pdf",
            PDF_2,
            FileLimits(max_pdf_pages=1),
            "files.too_many_pages",
            {"pages": 2, "limit": 1},
            "it has 2 pages; I read at most 1",
        ),
        (
            "n.txt",
            "text/plain",
            b"ab\x00cd",
            LIMITS,
            "files.binary",
            {},
            "it looks like a binary file, not text",
        ),
        (
            "z.zip",
            "application/zip",
            b"PK",
            LIMITS,
            "files.unsupported",
            {"extension": ".zip"},
            "I can't read .zip files",
        ),
        (
            "blob",
            "application/x-foo",
            b"PK",
            LIMITS,
            "files.unsupported_kind",
            {},
            "I can't read that kind of file",
        ),
        (
            "n.txt",
            "text/plain",
            b"x" * 101,
            FileLimits(max_file_bytes=100),
            "files.over_limit",
            {"limit": "100 bytes"},
            "it is over the 100 bytes limit",
        ),
    ],
)
def test_read_file_refuses(
    name: str, mimetype: str, data: bytes, limits: FileLimits, key: str, params: dict[str, Any], reason: str
) -> None:
    with pytest.raises(FileRefused) as refused:
        read_file(file(name, mimetype), data, limits)
    assert (refused.value.key, dict(refused.value.params), refused.value.reason) == (key, params, reason)


def test_a_file_too_big_by_its_metadata_is_refused_with_its_size_and_the_limit() -> None:
    with pytest.raises(FileTooBig) as refused:
        check_before_fetch(file("scan.pdf", "application/pdf", size=30_000_000), LIMITS)
    assert refused.value.key == "files.too_big"
    assert dict(refused.value.params) == {"size": "30 MB", "limit": "10 MB"}
    assert refused.value.reason == "it is 30 MB, over the 10 MB limit"


def test_a_long_text_file_is_cut() -> None:
    got = read_file(file("big.log", "text/plain"), b"a" * 500, FileLimits(max_text_chars=100))
    assert got.text is not None and got.text.startswith("a" * 100) and "cut at 100 characters" in got.text


def test_pdf_pages_counts_page_objects_not_the_page_tree() -> None:
    assert pdf_pages(PDF_2) == 2
    assert pdf_pages(b"%PDF-1.4\n<< /Type /Pages >>") == 0


def test_the_same_bytes_give_the_same_block_and_the_reference_keeps_no_bytes() -> None:
    got = read_file(file("a.png", "image/png"), PNG, LIMITS)
    again = api_block(got.ref, PNG, LIMITS)
    assert json.dumps(again) == json.dumps(got.block)
    assert got.ref == {
        "type": REF_TYPE,
        "kind": "image",
        "id": "F1",
        "name": "a.png",
        "media_type": "image/png",
        "size": len(PNG),
        "sha256": sha256(PNG),
        "url": "https://files.example/x",
    }


ZIP = Reason("files.unsupported", {"extension": ".zip"})
BIG = Reason("files.too_big", {"size": "30 MB", "limit": "10 MB"})
SLOW = Reason("files.timed_out", {"platform": "Slack"})


@pytest.mark.parametrize(
    ("refused", "read_any", "note"),
    [
        ([], True, ""),
        ([("a.zip", ZIP)], True, "I couldn't read a.zip (I can't read .zip files). I looked at the rest."),
        ([("a.zip", ZIP)], False, "I couldn't read a.zip (I can't read .zip files)."),
        (
            [("a.zip", ZIP), ("b.pdf", BIG)],
            False,
            "I couldn't read 2 files: a.zip (I can't read .zip files); "
            "b.pdf (it is 30 MB, over the 10 MB limit).",
        ),
    ],
)
def test_person_note(refused: list[tuple[str, Reason]], read_any: bool, note: str) -> None:
    assert person_note(refused, read_any, english()) == note


@pytest.mark.parametrize(
    ("locale", "refused", "read_any", "note"),
    [
        (
            "es-ES",
            [("a.zip", ZIP)],
            True,
            "No pude leer a.zip (no puedo leer archivos .zip). Revisé el resto.",
        ),
        (
            "es-419",
            [("a.zip", ZIP), ("b.pdf", BIG)],
            False,
            "No pude leer 2 archivos: a.zip (no puedo leer archivos .zip); "
            "b.pdf (ocupa 30 MB, más que el límite de 10 MB).",
        ),
        (
            "ja",
            [("b.pdf", BIG)],
            False,
            "b.pdf を読み込めませんでした (サイズが 30 MB で、上限の 10 MB を超えています)。",
        ),
        (
            "ja-JP",
            [("a.zip", ZIP), ("c.txt", SLOW)],
            True,
            "2 件のファイルを読み込めませんでした: a.zip (.zip ファイルは読み込めません)、"
            "c.txt (Slack から時間内にファイルを受け取れませんでした)。残りのファイルは確認しました。",
        ),
    ],
)
def test_person_note_in_the_readers_language(
    locale: str, refused: list[tuple[str, Reason]], read_any: bool, note: str
) -> None:
    assert person_note(refused, read_any, strings_for(locale)) == note


async def test_the_model_reads_english_and_the_person_their_own_language() -> None:
    got = await Attachments().read(THREAD, [Attachment("F1", "a.png", "image/png", "u", 10)])
    assert got.stored == (
        {"type": "text", "text": "[attached file a.png was not read: files can't be read here]"},
    )
    assert got.note_in(strings_for("es")) == "No pude leer a.png (aquí no se pueden leer archivos)."
    assert got.note == got.note_in(english()) == "I couldn't read a.png (files can't be read here)."


# -- the byte cache ------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_byte_cache_is_bounded_in_bytes_and_in_time() -> None:
    clock = Clock()
    cache = ByteCache(max_bytes=10, seconds=60, clock=clock)
    cache.put("a", b"12345")
    cache.put("b", b"12345")
    assert cache.get("a") == b"12345"  # used: now the newest
    cache.put("c", b"123")  # over 10 bytes: the least recently used ("b") goes
    assert cache.get("b") is None and cache.get("a") == b"12345" and cache.get("c") == b"123"
    cache.put("huge", b"x" * 11)  # more than the whole budget is never kept
    assert cache.get("huge") is None
    clock.now = 61
    assert len(cache) == 0  # forgotten within ``seconds`` whatever happens to the stored references


# -- reading and resolving with a scripted fetcher ----------------------------------------------------


class Fetcher:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.calls: list[tuple[str, str, int]] = []

    async def fetch(self, workspace: str, file: Attachment, *, max_bytes: int, seconds: float) -> bytes:
        self.calls.append((workspace, file.url, max_bytes))
        if file.size is not None and file.size > max_bytes:
            raise FileTooBig("files.over_limit", limit=megabytes(max_bytes))
        if file.url not in self.files:
            raise FileUnavailable("files.not_handed_over", platform="Slack")
        return self.files[file.url]


async def test_read_applies_count_and_total_limits_before_fetching() -> None:
    fetcher = Fetcher({f"u{i}": PNG for i in range(4)})
    files = Attachments(FileLimits(max_files=2, max_total_bytes=len(PNG) * 3))
    files.attach("slack", fetcher)
    shared = [Attachment(f"F{i}", f"{i}.png", "image/png", f"u{i}", len(PNG)) for i in range(3)]
    shared.append(Attachment("F9", "9.png", "image/png", "u9", 10**9))

    got = await files.read(THREAD, shared)

    assert [b["type"] for b in got.stored] == [REF_TYPE, REF_TYPE, "text", "text"]
    assert [c[1] for c in fetcher.calls] == ["u0", "u1"]  # the third and fourth were never asked for
    assert got.note == (
        "I couldn't read 2 files: 2.png (I read at most 2 files a message); "
        "9.png (I read at most 2 files a message). I looked at the rest."
    )


class SlowFetcher(Fetcher):
    """Every download waits until all of the message's downloads have begun."""

    def __init__(self, files: dict[str, bytes], expected: int) -> None:
        super().__init__(files)
        self.expected = expected
        self.all_begun = asyncio.Event()

    async def fetch(self, workspace: str, file: Attachment, *, max_bytes: int, seconds: float) -> bytes:
        self.calls.append((workspace, file.url, max_bytes))
        if len(self.calls) == self.expected:
            self.all_begun.set()
        await self.all_begun.wait()  # sequential downloads would wait here for ever
        return self.files[file.url]


async def test_a_messages_files_are_downloaded_at_once_and_read_in_their_order() -> None:
    fetcher = SlowFetcher({f"u{i}": PNG for i in range(3)}, expected=3)
    files = Attachments()
    files.attach("slack", fetcher)
    shared = [Attachment(f"F{i}", f"{i}.png", "image/png", f"u{i}", len(PNG)) for i in range(3)]

    async with asyncio.timeout(2):
        got = await files.read(THREAD, shared)

    assert [b["name"] for b in got.stored] == ["0.png", "1.png", "2.png"]
    assert not got.refused and got.note == ""


async def test_files_without_a_declared_size_still_keep_to_the_total_in_their_order() -> None:
    # Neither size is known beforehand, so both are asked for with the whole total as their cap; once
    # in, the first is read and the second would take the total over its limit.
    fetcher = Fetcher({"u0": PNG, "u1": PNG})
    files = Attachments(FileLimits(max_total_bytes=len(PNG) + 10))
    files.attach("slack", fetcher)
    shared = [Attachment(f"F{i}", f"{i}.png", "image/png", f"u{i}", None) for i in range(2)]

    got = await files.read(THREAD, shared)

    assert [b["type"] for b in got.stored] == [REF_TYPE, "text"]
    assert [c[2] for c in fetcher.calls] == [len(PNG) + 10, len(PNG) + 10]
    assert got.note is not None and got.note.startswith("I couldn't read 1.png (")


async def test_a_platform_without_a_fetcher_gets_a_note() -> None:
    got = await Attachments().read(THREAD, [Attachment("F1", "a.png", "image/png", "u", 10)])
    assert got.note == "I couldn't read a.png (files can't be read here)."


async def test_resolve_uses_the_cache_then_fetches_again_and_checks_the_hash() -> None:
    fetcher = Fetcher({"u": PNG})
    files = Attachments()
    files.attach("slack", fetcher)
    got = await files.read(THREAD, [Attachment("F1", "a.png", "image/png", "u", len(PNG))])
    history = [HistoryMessage(seq=1, role="user", kind="text", content=got.stored)]

    first = await files.resolve(THREAD, history)
    assert first[0].content[0]["type"] == "image" and len(fetcher.calls) == 1  # from the cache

    files.cache.clear()  # as after a restart
    again = await files.resolve(THREAD, history)
    assert json.dumps(again[0].content) == json.dumps(first[0].content) and len(fetcher.calls) == 2

    files.cache.clear()
    fetcher.files["u"] = PNG + b"!"  # the bytes behind the URL changed
    changed = await files.resolve(THREAD, history)
    assert changed[0].content == ({"type": "text", "text": "[attached file a.png is no longer available]"},)
    await files.resolve(THREAD, history)
    assert len(fetcher.calls) == 3  # remembered as gone: not asked again every turn


# -- the inbox keeps references; the rehearsal model takes the new blocks --------------------------------


def test_the_inbox_keeps_attachment_references_and_reads_entries_written_before_them() -> None:
    from bot.inbox import decode_message, encode_message
    from bot.types import Author, IncomingMessage

    shared = Attachment("F1", "a.png", "image/png", "https://files.slack.com/x", 12)
    msg = IncomingMessage(THREAD, Author("U1", "alice"), "", "1.1", attachments=(shared,))
    encoded = encode_message(msg)
    assert decode_message(json.loads(json.dumps(encoded))) == msg

    older = {k: v for k, v in encoded.items() if k != "attachments"}
    assert decode_message(older).attachments == ()


async def test_the_rehearsal_model_reads_text_files_and_counts_the_others() -> None:
    from bot.model import ModelRequest
    from bot.prompts import CRISIS_TOOL
    from bot.rehearsal import RehearsalModel

    image = read_file(file("a.png", "image/png"), PNG, LIMITS).block
    note = read_file(file("n.txt", "text/plain"), b"some notes", LIMITS).block
    words = {"type": "text", "text": "[alice] what do you see?"}
    request = ModelRequest(
        system=[], tools=[], messages=[{"role": "user", "content": [image, note, words]}], max_tokens=100
    )
    reply = await RehearsalModel().respond(request)
    assert "4 words and 2 attached files" in reply.text

    letter = read_file(file("l.txt", "text/plain"), b"I want to kill myself.", LIMITS).block
    risky = ModelRequest(
        system=[], tools=[], messages=[{"role": "user", "content": [letter, words]}], max_tokens=100
    )
    assert [t["name"] for t in (await RehearsalModel().respond(risky)).tool_uses] == [CRISIS_TOOL]
