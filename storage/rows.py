"""The repository's tables and columns, and how stored rows become the core's records (and back)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.inbox import decode_message, decode_result
from bot.types import (
    Conversation,
    ConversationStatus,
    HistoryMessage,
    InboxEntry,
    InboxState,
    NewMessage,
    ThreadRef,
    WorkspaceSettings,
)
from storage.models import (
    CONVERSATIONS,
    INBOX,
    MESSAGES,
    WORKSPACES,
    utcnow,
)

ENDED = ConversationStatus.ENDED.value
# The risk_source of a hard mark set by the local detector (the engine names the others).
DETECTOR = "detector"


_C = CONVERSATIONS.c
_M = MESSAGES.c
_W = WORKSPACES.c
# The columns a ``Conversation`` is made of, in ``conversation_from_row``'s order.
CONVERSATION_COLUMNS = (
    _C.id,
    _C.platform,
    _C.workspace,
    _C.channel,
    _C.thread,
    _C.status,
    _C.end_reason,
    _C.warnings,
    _C.confirm_pending,
    _C.at_risk,
    _C.crisis_shown_turn,
    _C.user_turns,
    _C.forked_from,
    _C.forked_from_message,
    _C.soft_risk_cues,
    _C.risk_source,
)
# The columns a ``HistoryMessage`` is made of, in ``history_from_row``'s order.
HISTORY_COLUMNS = (_M.seq, _M.role, _M.kind, _M.content, _M.author_id, _M.platform_message_id, _M.text)
SETTINGS_COLUMNS = (
    _W.crisis_message,
    _W.crisis_locales,
    _W.ending_enabled,
    _W.abuse_warnings_before_end,
    _W.verify_endings,
    _W.alert_channel,
    _W.retention_days,
    _W.admin_users,
    _W.instructions,
    _W.allowed_channels,
    _W.denied_channels,
    _W.suggested_prompts,
)


def conversation_from_row(row: Sequence[Any]) -> Conversation:
    (
        id_,
        platform,
        workspace,
        channel,
        thread,
        status,
        end_reason,
        warnings,
        confirm_pending,
        at_risk,
        crisis_shown_turn,
        user_turns,
        forked_from,
        forked_from_message,
        soft_risk_cues,
        risk_source,
    ) = row
    return Conversation(
        id=id_,
        thread=ThreadRef(platform, workspace, channel, thread),
        status=ConversationStatus(status),
        end_reason=end_reason,
        warnings=warnings,
        confirm_pending=confirm_pending,
        at_risk=at_risk,
        crisis_shown_turn=crisis_shown_turn,
        user_turns=user_turns,
        forked_from=forked_from,
        forked_from_message=forked_from_message,
        soft_cues=decode_cues(soft_risk_cues),
        risk_source=risk_source,
    )


CUE_CHARS_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_:.\-]")


def decode_cues(stored: str | None) -> tuple[str, ...]:
    return tuple(c for c in (stored or "").split(",") if c)


def encode_cues(cues: Sequence[str]) -> str | None:
    """Cue names as stored: sorted, unique, comma-separated; None when there are none."""
    clean = {CUE_CHARS_NOT_ALLOWED.sub("", c)[:64] for c in cues} - {""}
    return ",".join(sorted(clean)) or None


def merge_cues(old: Sequence[str], new: Sequence[str]) -> tuple[str, ...]:
    return decode_cues(encode_cues([*old, *new]))


def history_from_row(row: Sequence[Any]) -> HistoryMessage:
    seq, role, kind, content, author_id, platform_message_id, text = row
    return HistoryMessage(
        seq=seq,
        role=role,
        kind=kind,
        content=tuple(content),
        author_id=author_id,
        platform_message_id=platform_message_id,
        text=text,
    )


def stored_message(seq: int, m: NewMessage, row: dict[str, Any]) -> HistoryMessage:
    """A message as reading it back would give it (content through JSON, like the column)."""
    return HistoryMessage(
        seq=seq,
        role=m.role,
        kind=m.kind,
        content=tuple(json.loads(json.dumps(row["content"]))),
        author_id=m.author_id,
        platform_message_id=m.platform_message_id,
        text=m.text,
    )


def settings_from_row(platform: str, workspace: str, row: Any) -> WorkspaceSettings:
    if row is None:
        return WorkspaceSettings(platform=platform, workspace=workspace)
    return WorkspaceSettings(
        platform=platform,
        workspace=workspace,
        crisis_message=row.crisis_message,
        crisis_locales=dict(row.crisis_locales or {}),
        ending_enabled=row.ending_enabled,
        abuse_warnings_before_end=row.abuse_warnings_before_end,
        verify_endings=row.verify_endings,
        alert_channel=row.alert_channel,
        retention_days=row.retention_days,
        admin_users=tuple(row.admin_users or ()),
        instructions=row.instructions,
        allowed_channels=tuple(row.allowed_channels or ()),
        denied_channels=tuple(row.denied_channels or ()),
        suggested_prompts=None if row.suggested_prompts is None else tuple(row.suggested_prompts),
    )


def thread_params(thread: ThreadRef) -> dict[str, str]:
    return {
        "t_platform": thread.platform,
        "t_workspace": thread.workspace,
        "t_channel": thread.channel,
        "t_thread": thread.thread,
    }


def new_conversation_row(conv: Conversation, started_by: str | None) -> dict[str, Any]:
    t = conv.thread
    return {
        "id": conv.id,
        "platform": t.platform,
        "workspace": t.workspace,
        "channel": t.channel,
        "thread": t.thread,
        "status": conv.status.value,
        "end_reason": conv.end_reason,
        "ended_at": None,
        "warnings": conv.warnings,
        "confirm_pending": conv.confirm_pending,
        "at_risk": conv.at_risk,
        "risk_source": conv.risk_source,
        "soft_risk_cues": encode_cues(conv.soft_cues),
        "crisis_shown_turn": conv.crisis_shown_turn,
        "user_turns": conv.user_turns,
        "forked_from": conv.forked_from,
        "forked_from_message": conv.forked_from_message,
        "started_by": started_by,
        "created_at": utcnow(),
    }


def message_row(conv: Conversation, m: NewMessage, seq: int | None) -> dict[str, Any]:
    row: dict[str, Any] = {
        "conversation_id": conv.id,
        "platform": conv.thread.platform,
        "workspace": conv.thread.workspace,
        "role": m.role,
        "kind": m.kind,
        "author_id": m.author_id,
        "author_name": m.author_name,
        "platform_message_id": m.platform_message_id,
        "text": m.text,
        "content": [dict(b) for b in m.content],
        "redacted": False,
        "created_at": utcnow(),
    }
    if seq is not None:
        row["seq"] = seq
    return row


_I = INBOX.c
# The columns an ``InboxEntry`` is made of, in ``entry_from_row``'s order.
ENTRY_COLUMNS = (
    _I.id,
    _I.message,
    _I.state,
    _I.owner,
    _I.attempts,
    _I.received_at,
    _I.delivered_at,
    _I.reply_ref,
    _I.result,
)


def aware(ts: datetime) -> datetime:
    """SQLite hands back naive datetimes; Haven only ever writes UTC."""
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def entry_from_row(row: Sequence[Any]) -> InboxEntry:
    id_, message, state, owner, attempts, received_at, delivered_at, reply_ref, result = row
    return InboxEntry(
        id=str(id_),
        message=decode_message(message),
        state=InboxState(state),
        owner=owner,
        attempts=attempts,
        received_at=aware(received_at),
        delivered=delivered_at is not None,
        reply_ref=reply_ref,
        result=decode_result(result) if result is not None else None,
    )


def row_id(value: str) -> int:
    """The row id an entry id names (ids are the table's serial numbers as text); -1 names none."""
    return int(value) if value.isascii() and value.isdigit() and len(value) < 19 else -1
