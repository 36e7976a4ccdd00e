"""The durable inbox's codec: an accepted message and a turn's outcome as JSON-safe dicts, and back.

Storage keeps these in JSON columns and the in-memory store keeps them the same way, so what a recovery
reads back is exactly what a database would give it. Every encoding carries ``"v"`` (its version): a
process reading an entry written by a newer version fails loudly instead of guessing. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from bot.types import (
    AdminAlert,
    Attachment,
    Author,
    Closure,
    CrisisCard,
    EndReason,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

VERSION = 1


class UnknownEncoding(ValueError):
    """An encoding of another version (or none): written by a newer Haven, or not ours."""


def _check_version(data: dict[str, Any]) -> None:
    if data.get("v") != VERSION:
        raise UnknownEncoding(f"inbox encoding version {data.get('v')!r}, expected {VERSION}")


def _thread(t: ThreadRef) -> dict[str, str]:
    return {"platform": t.platform, "workspace": t.workspace, "channel": t.channel, "thread": t.thread}


def _thread_from(d: dict[str, Any]) -> ThreadRef:
    return ThreadRef(d["platform"], d["workspace"], d["channel"], d["thread"])


def encode_message(msg: IncomingMessage) -> dict[str, Any]:
    return {
        "v": VERSION,
        "thread": _thread(msg.thread),
        "author": {
            "id": msg.author.id,
            "name": msg.author.name,
            "is_platform_admin": msg.author.is_platform_admin,
        },
        "text": msg.text,
        "message_id": msg.message_id,
        "origin": msg.origin.value,
        "dedupe_key": msg.dedupe_key,
        "locale": msg.locale,
        # References only (where the platform serves each file), never the bytes.
        "attachments": [
            {"id": a.id, "name": a.name, "mimetype": a.mimetype, "url": a.url, "size": a.size}
            for a in msg.attachments
        ],
    }


def forgotten(data: dict[str, Any], user_id: str) -> dict[str, Any] | None:
    """An encoded message of ``user_id``'s without its words, files and display name (``forget_user``: the
    inbox keeps a delivered entry for days, so that a late redelivery is still a duplicate); None when
    it is someone else's or holds nothing to forget."""
    author = data.get("author") or {}
    done = not data.get("text") and not data.get("attachments") and author.get("name") == user_id
    if author.get("id") != user_id or done:
        return None
    # Their files' references (names, links) go with their words.
    return {**data, "text": "", "author": {**author, "name": user_id}, "attachments": []}


def decode_message(data: dict[str, Any]) -> IncomingMessage:
    _check_version(data)
    a = data["author"]
    return IncomingMessage(
        thread=_thread_from(data["thread"]),
        author=Author(a["id"], a["name"], bool(a["is_platform_admin"])),
        text=data["text"],
        message_id=data["message_id"],
        origin=Origin(data["origin"]),
        dedupe_key=data["dedupe_key"],
        locale=data["locale"],
        # Absent in entries written before attachments existed: those had none.
        attachments=tuple(
            Attachment(a["id"], a["name"], a["mimetype"], a["url"], a.get("size"))
            for a in data.get("attachments") or ()
        ),
    )


def _card(card: CrisisCard | None) -> dict[str, Any] | None:
    return None if card is None else {"text": card.text, "language": card.language}


def _card_from(d: dict[str, Any] | None) -> CrisisCard | None:
    return None if d is None else CrisisCard(d["text"], d.get("language", "en"))


def encode_result(result: TurnResult) -> dict[str, Any]:
    closure = result.closure
    alert = result.alert
    return {
        "v": VERSION,
        "status": result.status.value,
        "conversation_id": result.conversation_id,
        "replies": list(result.replies),
        "crisis": _card(result.crisis),
        "closure": None
        if closure is None
        else {
            "conversation_id": closure.conversation_id,
            "reason": closure.reason.value,
            "warnings": closure.warnings,
            "crisis": _card(closure.crisis),
        },
        "alert": None
        if alert is None
        else {
            "channel": alert.channel,
            "kind": alert.kind,
            "conversation_id": alert.conversation_id,
            "thread": _thread(alert.thread),
            "reason": alert.reason,
            "warnings": alert.warnings,
        },
        "error": result.error,
        "crisis_shown": result.crisis_shown,
    }


def decode_result(data: dict[str, Any]) -> TurnResult:
    _check_version(data)
    c = data["closure"]
    a = data["alert"]
    return TurnResult(
        status=TurnStatus(data["status"]),
        conversation_id=data["conversation_id"],
        replies=tuple(data["replies"]),
        crisis=_card_from(data["crisis"]),
        closure=None
        if c is None
        else Closure(c["conversation_id"], EndReason(c["reason"]), c["warnings"], _card_from(c["crisis"])),
        alert=None
        if a is None
        else AdminAlert(
            channel=a["channel"],
            kind=a["kind"],
            conversation_id=a["conversation_id"],
            thread=_thread_from(a["thread"]),
            reason=a["reason"],
            warnings=a["warnings"],
        ),
        error=data["error"],
        crisis_shown=bool(data["crisis_shown"]),
    )
