"""Files people attach, as model input: which kinds Haven reads, the limits, and the blocks. Pure: no I/O.

The bytes come from the platform's ``bot.ports.FileFetcher``; ``bot.attachments`` does the fetching and
keeps the short-lived cache. This module decides everything else:

* **What is read** (``classify``): PNG, JPEG, GIF and WebP images become ``image`` blocks, PDFs become
  ``document`` blocks, text and code files become ``text`` blocks (UTF-8, errors replaced, capped).
  Anything else gets a one-line note instead. The platform's media type is only a hint: the bytes are
  sniffed (``read_file``), because a block whose declared type does not match its data makes the API
  refuse the request, and a stored block would then break every later turn of the thread.
* **Limits** (``FileLimits``, from ``HAVEN_FILE*`` settings): files per message, bytes per file (checked
  against the platform's metadata before any request), bytes per message, PDF pages, text characters.
* **What is stored** (``ref_block``): a reference per file — the platform's id, name, media type, size,
  where the platform serves it and the SHA-256 of the bytes — never the bytes themselves. Before each
  model call the references become API blocks again (``api_block``); the same bytes always give the same
  block, byte for byte, so each turn's request still extends the previous one and the prompt cache is
  read.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Any, Literal

from bot.i18n import Strings, english
from bot.types import Attachment

Kind = Literal["image", "pdf", "text"]

# The stored reference's block type: never sent to the API as is (``bot.attachments`` resolves it).
REF_TYPE = "haven_file"
PDF = "application/pdf"
# The Messages API refuses base64 images over 5 MB whatever Haven's own limit says.
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Images by their first bytes: what the API is told must be what the data is.
_IMAGE_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),  # after "RIFF" and the length
)
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp"})
# Media types outside text/* that are text all the same (what Slack and browsers say for code and data).
TEXT_MEDIA_TYPES = frozenset(
    {
        "application/json",
        "application/xml",
        "application/javascript",
        "application/x-javascript",
        "application/typescript",
        "application/x-yaml",
        "application/yaml",
        "application/toml",
        "application/x-sh",
        "application/x-shellscript",
        "application/sql",
        "application/x-python",
        "application/x-httpd-php",
        "application/graphql",
        "application/ld+json",
    }
)
# Text and code by extension, for a platform that sends no media type or a generic one
# (application/octet-stream is what Discord and Slack say for many source files).
TEXT_EXTENSIONS = frozenset(
    {
        ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".log", ".json", ".jsonl", ".yaml", ".yml",
        ".toml", ".ini", ".cfg", ".conf", ".env.example", ".xml", ".html", ".htm", ".css", ".scss",
        ".py", ".pyi", ".ipynb", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".java", ".kt", ".kts",
        ".scala", ".go", ".rs", ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift",
        ".m", ".mm", ".sh", ".bash", ".zsh", ".fish", ".ps1", ".sql", ".r", ".lua", ".pl", ".hs",
        ".ex", ".exs", ".erl", ".clj", ".dart", ".vue", ".svelte", ".tf", ".gradle", ".proto",
        ".graphql", ".diff", ".patch", ".tex", ".srt", ".vtt",
    }
)  # fmt: skip
_TEXT_NAMES = frozenset({"dockerfile", "makefile", "readme", "license", "procfile", "gemfile"})
# Counting pages without a PDF library: every page object says "/Type /Page" (the tree's nodes say
# "/Pages", which the lookahead leaves out). Compressed object streams can hide pages from it, so the
# byte limit still applies; an undercount only means the API refuses a PDF that is really too long.
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
# A NUL in the first bytes: a binary file, whatever its name says.
_BINARY_PROBE = 8192


@dataclass(frozen=True, slots=True)
class FileLimits:
    """What one message's files may be (``HAVEN_FILES_MAX_COUNT`` and friends; see the README)."""

    max_files: int = 5
    max_file_bytes: int = 10_000_000
    max_total_bytes: int = 20_000_000
    max_pdf_pages: int = 50
    max_text_chars: int = 50_000
    timeout_seconds: float = 20.0


Param = str | int


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a file was not read, as a catalog key of the ``[files]`` table and its parameters (sizes as
    ``megabytes`` writes them, counts, an extension, a platform's name, an HTTP status): rendered in the
    language of whoever reads it (``render``)."""

    key: str
    params: Mapping[str, Param] = field(default_factory=lambda: MappingProxyType({}))

    def render(self, strings: Strings) -> str:
        return strings(self.key, **self.params)


class FileRefused(Exception):
    """A file Haven does not read: ``key`` and ``params`` say why (``files.too_big``, size and limit);
    ``reason`` is the English rendering ("it is 30 MB, over the 10 MB limit"), for logs and the model."""

    def __init__(self, key: str, /, **params: Param) -> None:
        self.why = Reason(key, MappingProxyType(dict(params)))
        self.reason = self.why.render(english())
        super().__init__(self.reason)

    @property
    def key(self) -> str:
        return self.why.key

    @property
    def params(self) -> Mapping[str, Param]:
        return self.why.params


class FileTooBig(FileRefused):
    """Over the byte limit: said by the platform's metadata, the Content-Length, or the body itself."""


class FileHostRefused(FileRefused):
    """The file's URL is not on one of the platform's own file hosts: no request is made to it."""


class FileUnavailable(FileRefused):
    """The platform did not hand the file over (an HTTP error, a time-out, a dropped connection)."""


@dataclass(frozen=True, slots=True)
class ReadFile:
    """One file, read: the stored reference, the block the API reads, and text for the detectors."""

    ref: dict[str, Any]
    block: dict[str, Any]
    text: str | None = None  # a text file's content (what the risk detector reads too)


def extension(name: str) -> str:
    return PurePosixPath(name.lower()).suffix


def megabytes(size: int) -> str:
    """A size as people read it: "30 MB", "250 KB", "100 bytes"."""
    if size >= 1_000_000:
        return f"{size / 1_000_000:.0f} MB"
    return f"{size / 1000:.0f} KB" if size >= 1000 else f"{size} bytes"


def classify(name: str, mimetype: str) -> Kind | None:
    """What Haven reads a file as, from its name and the platform's media type; None: not at all."""
    media = (mimetype or "").split(";")[0].strip().lower()
    ext = extension(name)
    if media in IMAGE_TYPES or (not media.startswith("text/") and ext in _IMAGE_EXTENSIONS):
        return "image"
    if media == PDF or ext == ".pdf":
        return "pdf"
    if media.startswith("text/") or media in TEXT_MEDIA_TYPES or ext in TEXT_EXTENSIONS:
        return "text"
    if PurePosixPath(name.lower()).name in _TEXT_NAMES:
        return "text"
    return None


def unsupported_reason(name: str) -> FileRefused:
    ext = extension(name)
    return FileRefused("files.unsupported", extension=ext) if ext else FileRefused("files.unsupported_kind")


def check_before_fetch(file: Attachment, limits: FileLimits) -> Kind:
    """Refuse what can be refused from the platform's metadata alone, before any request is made."""
    kind = classify(file.name, file.mimetype)
    if kind is None:
        raise unsupported_reason(file.name)
    if file.size is not None and file.size > max_bytes(kind, limits):
        raise FileTooBig("files.too_big", size=megabytes(file.size), limit=megabytes(max_bytes(kind, limits)))
    return kind


def max_bytes(kind: Kind, limits: FileLimits) -> int:
    return min(limits.max_file_bytes, MAX_IMAGE_BYTES) if kind == "image" else limits.max_file_bytes


def sniff_image(data: bytes) -> str | None:
    for magic, offset, media in _IMAGE_MAGIC:
        if data[offset : offset + len(magic)] == magic and (media != "image/webp" or data[:4] == b"RIFF"):
            return media
    return None


def pdf_pages(data: bytes) -> int:
    return len(_PDF_PAGE.findall(data))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_file(file: Attachment, data: bytes, limits: FileLimits) -> ReadFile:
    """``file``'s fetched bytes as a stored reference and an API block; ``FileRefused`` when the bytes
    are not what Haven reads (an "image" that is none, a PDF over the page limit, a binary "text")."""
    kind = check_before_fetch(file, limits)
    if len(data) > max_bytes(kind, limits):
        raise FileTooBig("files.over_limit", limit=megabytes(max_bytes(kind, limits)))
    if kind == "image":
        media = sniff_image(data)
        if media is None:
            raise FileRefused("files.not_image")
    elif kind == "pdf":
        media = PDF
        if not data.startswith(b"%PDF-"):
            raise FileRefused("files.not_pdf")
        pages = pdf_pages(data)
        if pages > limits.max_pdf_pages:
            raise FileRefused("files.too_many_pages", pages=pages, limit=limits.max_pdf_pages)
    else:
        media = "text/plain"
        if b"\x00" in data[:_BINARY_PROBE]:
            raise FileRefused("files.binary")
    ref = ref_block(file, kind, media, data)
    block = api_block(ref, data, limits)
    return ReadFile(ref, block, text_of(data, limits) if kind == "text" else None)


def ref_block(file: Attachment, kind: Kind, media_type: str, data: bytes) -> dict[str, Any]:
    """What the stored history keeps of a file: enough to fetch it again and check it is the same."""
    return {
        "type": REF_TYPE,
        "kind": kind,
        "id": file.id,
        "name": file.name,
        "media_type": media_type,
        "size": len(data),
        "sha256": sha256(data),
        "url": file.url,
    }


def attachment_of(ref: Mapping[str, Any]) -> Attachment:
    """The reference as the platform's fetcher reads it again."""
    return Attachment(
        str(ref["id"]), str(ref["name"]), str(ref["media_type"]), str(ref["url"]), int(ref["size"])
    )


def text_of(data: bytes, limits: FileLimits) -> str:
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    if len(text) > limits.max_text_chars:
        text = text[: limits.max_text_chars] + f"\n[… cut at {limits.max_text_chars:,} characters]"
    return text


def api_block(ref: Mapping[str, Any], data: bytes, limits: FileLimits) -> dict[str, Any]:
    """The Messages API block for a stored reference and its bytes. Deterministic: the same reference
    and bytes give the same block, byte for byte (the prompt cache depends on it)."""
    kind, name, media = ref["kind"], str(ref["name"]), str(ref["media_type"])
    if kind == "text":
        return {"type": "text", "text": f'<file name="{_attr(name)}">\n{text_of(data, limits)}\n</file>'}
    source = {"type": "base64", "media_type": media, "data": base64.b64encode(data).decode("ascii")}
    if kind == "pdf":
        return {"type": "document", "source": source, "title": name}
    return {"type": "image", "source": source}


def _attr(name: str) -> str:
    return name.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def unread_block(name: str, reason: str) -> dict[str, Any]:
    """What the model reads (and history keeps) in place of a file Haven did not read."""
    return {"type": "text", "text": f"[attached file {name} was not read: {reason}]"}


def gone_block(ref: Mapping[str, Any]) -> dict[str, Any]:
    """In place of a stored file that cannot be fetched again, or whose bytes changed since."""
    return {"type": "text", "text": f"[attached file {ref.get('name', '?')} is no longer available]"}


def person_note(refused: Sequence[tuple[str, Reason]], read_any: bool, strings: Strings) -> str:
    """One line for the person about the files Haven did not read ((name, reason) pairs), in the
    language of ``strings`` (the reader's: ``bot.i18n.strings_for(msg.locale)``)."""
    if not refused:
        return ""
    rest = "_rest" if read_any else ""
    if len(refused) == 1:
        name, why = refused[0]
        return strings(f"files.one{rest}", name=name, reason=why.render(strings))
    listed = strings("files.separator").join(
        strings("files.item", name=name, reason=why.render(strings)) for name, why in refused
    )
    return strings(f"files.many{rest}", count=len(refused), listed=listed)


def is_ref(block: Mapping[str, Any]) -> bool:
    return block.get("type") == REF_TYPE
