"""Attached files in a turn: reading them once (``read``), and before every model call turning the stored
references back into the blocks the API reads (``resolve``). What is read, the limits and the blocks
themselves are ``bot.files``'s (pure); the bytes come only through each platform's ``FileFetcher``.

The bytes of the files read lately are kept in memory, by SHA-256 (``ByteCache``), so that a
conversation does not download its files again on every turn; a restarted process (or one that recovers
another's turn) fetches them again by reference and checks the hash. A file that cannot be fetched again,
or whose bytes changed, becomes a short note instead; that turn then misses the prompt cache once.

Forgetting a person and retention replace the stored message, references included
(``storage.maintenance``). The cache holds bytes by hash only, so nothing leads to them afterwards, and
they leave it after ``CACHE_SECONDS`` at the latest (or sooner, when newer files need the room).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from bot.files import (
    FileLimits,
    FileRefused,
    FileTooBig,
    FileUnavailable,
    Reason,
    api_block,
    attachment_of,
    check_before_fetch,
    gone_block,
    is_ref,
    max_bytes,
    megabytes,
    person_note,
    read_file,
    sha256,
    unread_block,
)
from bot.i18n import Strings, english
from bot.ports import FileFetcher
from bot.types import Attachment, HistoryMessage, ThreadRef

log = logging.getLogger(__name__)

# The in-memory cache of files' bytes: at most this much, each kept at most this long after its last use.
CACHE_BYTES = 64_000_000
CACHE_SECONDS = 900.0


@dataclass(frozen=True, slots=True)
class FilesRead:
    """One message's files, read: what the stored message keeps (a reference per file read, a note per
    file not read, in the order they were attached), text files' contents for the detectors, and why
    each file that was not read was not (``refused``), for the person's note (``note_in``).

    The stored notes (``unread_block``) are in English whoever attached the files: they are the model's
    copy, written once and kept in the history, which must stay byte for byte the same on every later
    turn (the prompt cache), whoever writes next. Only the person's note follows their language."""

    stored: tuple[dict[str, Any], ...] = ()
    texts: tuple[str, ...] = ()
    refused: tuple[tuple[str, Reason], ...] = ()
    read_any: bool = True

    def note_in(self, strings: Strings) -> str:
        """The one line for the person about the files that were not read ("" when all were)."""
        return person_note(self.refused, self.read_any, strings)

    @property
    def note(self) -> str:
        """The same line in English (logs and tests)."""
        return self.note_in(english())


class ByteCache:
    """Files' bytes by SHA-256, bounded in total bytes and in time since last use. Also remembers, for as
    long, the hashes that could not be fetched again, so a thread whose file is gone does not wait for
    the platform on every turn (and keeps one stable note in its prompt)."""

    def __init__(
        self,
        max_bytes: int = CACHE_BYTES,
        seconds: float = CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_bytes
        self._seconds = seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes | None]] = OrderedDict()
        self._size = 0

    def __len__(self) -> int:
        self._expire()
        return len(self._entries)

    def get(self, digest: str) -> bytes | None:
        """The bytes, or None (unknown, or known to be gone: see ``gone``)."""
        self._expire()
        hit = self._entries.pop(digest, None)
        if hit is None:
            return None
        self._entries[digest] = (self._clock(), hit[1])
        return hit[1]

    def gone(self, digest: str) -> bool:
        self._expire()
        hit = self._entries.get(digest)
        return hit is not None and hit[1] is None

    def put(self, digest: str, data: bytes | None) -> None:
        """Keep ``data`` (None: remember that it is gone); more than the whole budget is not kept."""
        self._drop(digest)
        if data is not None and len(data) > self._max:
            return
        self._entries[digest] = (self._clock(), data)
        self._size += len(data or b"")
        while self._size > self._max:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        self._entries.clear()
        self._size = 0

    def _drop(self, digest: str) -> None:
        old = self._entries.pop(digest, None)
        if old is not None:
            self._size -= len(old[1] or b"")

    def _expire(self) -> None:
        cutoff = self._clock() - self._seconds
        while self._entries:
            digest, (used, _) = next(iter(self._entries.items()))
            if used >= cutoff:
                return
            self._drop(digest)


class Attachments:
    """The engine's files: each platform's fetcher (``attach``), the limits, and the byte cache."""

    def __init__(self, limits: FileLimits | None = None, cache: ByteCache | None = None) -> None:
        self.limits = limits or FileLimits()
        self.cache = cache or ByteCache()
        self._fetchers: dict[str, FileFetcher] = {}

    def attach(self, platform: str, fetcher: FileFetcher) -> None:
        self._fetchers[platform] = fetcher

    async def read(self, thread: ThreadRef, files: Sequence[Attachment]) -> FilesRead:
        """Fetch and read ``files`` (attached to one message in ``thread``) within the limits.

        The downloads run at once (a message's five files cost one download's wait, not five), planned
        and read in the order the files were attached: what the metadata refuses is refused before any
        request, each file may take what the declared sizes of the files before it leave of the total,
        and the total of the bytes actually read is checked again, in order, once they are in."""
        limits = self.limits
        planned: list[FileRefused | int] = []  # per file: why it is refused now, or its byte cap
        room = limits.max_total_bytes
        for index, file in enumerate(files):
            try:
                planned.append(self._plan(thread, file, index, room))
            except FileRefused as refusal:
                planned.append(refusal)
                continue
            room -= file.size or 0
        fetched = await asyncio.gather(
            *(self._fetch(thread, f, p) for f, p in zip(files, planned, strict=True)), return_exceptions=True
        )
        stored: list[dict[str, Any]] = []
        texts: list[str] = []
        refused: list[tuple[str, Reason]] = []
        total = 0
        for file, data in zip(files, fetched, strict=True):
            try:
                if isinstance(data, BaseException):
                    raise data  # a FileRefused is this file's; anything else is the turn's failure
                if total + len(data) > limits.max_total_bytes:
                    raise FileTooBig("files.total_too_big", limit=megabytes(limits.max_total_bytes))
                got = read_file(file, data, limits)
            except FileRefused as refusal:
                log.info(
                    "attached file not read",
                    extra={
                        "platform": thread.platform,
                        "workspace": thread.workspace,
                        "why": type(refusal).__name__,
                    },
                )
                refused.append((file.name, refusal.why))
                # The model's copy, in English (see ``FilesRead``).
                stored.append(unread_block(file.name, refusal.reason))
                continue
            total += len(data)
            self.cache.put(got.ref["sha256"], data)
            stored.append(got.ref)
            if got.text is not None:
                texts.append(got.text)
        read_any = len(refused) < len(files)
        return FilesRead(tuple(stored), tuple(texts), tuple(refused), read_any)

    def _plan(self, thread: ThreadRef, file: Attachment, index: int, room: int) -> int:
        """The most bytes ``file`` may bring, given ``room`` left of the total; ``FileRefused`` when
        it is refused from what is known before any request (count, type, declared size, platform)."""
        limits = self.limits
        if index >= limits.max_files:
            raise FileRefused("files.too_many_files", count=limits.max_files)
        kind = check_before_fetch(file, limits)  # type and size from metadata: before any request
        if file.size is not None and file.size > room:
            raise FileTooBig("files.total_too_big", limit=megabytes(limits.max_total_bytes))
        if thread.platform not in self._fetchers:
            raise FileUnavailable("files.not_here")
        return min(max_bytes(kind, limits), room)

    async def _fetch(self, thread: ThreadRef, file: Attachment, plan: FileRefused | int) -> bytes:
        if isinstance(plan, FileRefused):
            raise plan
        fetcher, seconds = self._fetchers[thread.platform], self.limits.timeout_seconds
        return await fetcher.fetch(thread.workspace, file, max_bytes=plan, seconds=seconds)

    async def resolve(self, thread: ThreadRef, history: Sequence[HistoryMessage]) -> list[HistoryMessage]:
        """``history`` as the model reads it: every stored file reference replaced by its API block
        (the same bytes give the same block), or by a short note when the file is gone or changed."""
        out: list[HistoryMessage] = []
        for message in history:
            if not any(is_ref(b) for b in message.content):
                out.append(message)
                continue
            blocks = [await self._block(thread, b) if is_ref(b) else b for b in message.content]
            out.append(replace(message, content=tuple(blocks)))
        return out

    async def _block(self, thread: ThreadRef, ref: dict[str, Any]) -> dict[str, Any]:
        digest = str(ref.get("sha256"))
        data = self.cache.get(digest)
        if data is None and not self.cache.gone(digest):
            data = await self._fetch_again(thread, ref)
            self.cache.put(digest, data)
        if data is None:
            return gone_block(ref)
        return api_block(ref, data, self.limits)

    async def _fetch_again(self, thread: ThreadRef, ref: dict[str, Any]) -> bytes | None:
        fetcher = self._fetchers.get(thread.platform)
        where = {"platform": thread.platform, "workspace": thread.workspace}
        if fetcher is None:
            return None
        try:
            file = attachment_of(ref)
            size = file.size or 0
            data = await fetcher.fetch(
                thread.workspace, file, max_bytes=size, seconds=self.limits.timeout_seconds
            )
        except (FileRefused, KeyError, TypeError, ValueError) as exc:
            log.info("stored file could not be fetched again", extra={**where, "why": type(exc).__name__})
            return None
        if sha256(data) != ref.get("sha256"):
            log.warning("stored file changed since it was read; not sent", extra=where)
            return None
        return data
