"""SQLModel tables. Every row carries its platform and workspace, so tenants never mix."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, DateTime, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def _ts(**kw: Any) -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False, **kw))


class WorkspaceRow(SQLModel, table=True):
    __tablename__ = "workspaces"

    platform: str = Field(primary_key=True, max_length=16)
    workspace: str = Field(primary_key=True, max_length=64)
    crisis_message: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    crisis_locales: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    ending_enabled: bool = True
    abuse_warnings_before_end: int = 2
    verify_endings: bool | None = None
    alert_channel: str | None = Field(default=None, max_length=64)
    retention_days: int = 90
    admin_users: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    updated_at: datetime = _ts()


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("platform", "workspace", "channel", "thread", name="uq_conversation_thread"),
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    channel: str = Field(max_length=64)
    thread: str = Field(max_length=64)
    status: str = Field(default="active", max_length=16)  # active | ended
    end_reason: str | None = Field(default=None, max_length=32)
    ended_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))
    warnings: int = 0
    confirm_pending: bool = False
    at_risk: bool = False  # a hard risk signal: nothing ends, ever
    # What first set at_risk: detector | crisis_tool | verifier (NULL: not at risk, or not recorded).
    risk_source: str | None = Field(default=None, max_length=16)
    # Comma-separated cue names of the local detector at "possible" (a soft mark); NULL: none.
    soft_risk_cues: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Turn number (count of user messages) when crisis resources were last shown.
    crisis_shown_turn: int | None = None
    user_turns: int = 0
    forked_from: str | None = Field(default=None, max_length=32)
    forked_from_message: str | None = Field(default=None, max_length=64)
    started_by: str | None = Field(default=None, max_length=64)
    created_at: datetime = _ts()


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_message_seq"),
        Index("ix_messages_platform_msg", "conversation_id", "platform_message_id"),
        Index("ix_messages_author", "platform", "author_id"),
        Index("ix_messages_created", "workspace", "created_at"),
        # The history cache's freshness check counts redactions per conversation on every turn.
        Index("ix_messages_redacted", "conversation_id", "redacted"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    seq: int
    role: str = Field(max_length=16)  # user | assistant
    # "text": a person's message; "tool_use"/"tool_result": model plumbing, never shown or forked.
    kind: str = Field(default="text", max_length=16)
    author_id: str | None = Field(default=None, max_length=64)
    author_name: str | None = Field(default=None, max_length=128)
    platform_message_id: str | None = Field(default=None, max_length=64)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # Anthropic content blocks exactly as sent/received, so the history replays byte for byte.
    content: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    redacted: bool = False
    created_at: datetime = _ts()


class ProcessedEventRow(SQLModel, table=True):
    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "workspace", "dedupe_key", name="uq_processed_event"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    dedupe_key: str = Field(max_length=128)
    created_at: datetime = _ts(index=True)


class DecisionRow(SQLModel, table=True):
    """The audit log: every ending decision, with the model's note and the signals, no message text."""

    __tablename__ = "decisions"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32, index=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64, index=True)
    decision: str = Field(max_length=16)
    reason: str | None = Field(default=None, max_length=32)
    note: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    warnings: int = 0
    signals: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = _ts()


class FeedbackRow(SQLModel, table=True):
    __tablename__ = "feedback"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32, index=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64, index=True)
    user_id: str = Field(max_length=64)
    comment: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = _ts()


class ReminderRow(SQLModel, table=True):
    """Who has been told that an ended thread is ended (Slack: one ephemeral per user per thread)."""

    __tablename__ = "ended_reminders"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id", name="uq_reminder"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversations.id", max_length=32)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    user_id: str = Field(max_length=64)
    created_at: datetime = _ts()


class ModelUsageRow(SQLModel, table=True):
    """Tokens per model call, for cost accounting (no content)."""

    __tablename__ = "model_usage"
    __table_args__ = (Index("ix_usage_workspace", "platform", "workspace", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(max_length=32, index=True)
    platform: str = Field(max_length=16)
    workspace: str = Field(max_length=64)
    model: str = Field(max_length=64)
    purpose: str = Field(default="turn", max_length=16)  # turn | verify
    input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0
    created_at: datetime = _ts()


class LeaseRow(SQLModel, table=True):
    """A named lease (e.g. the scheduler leader); taken over when it expires."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=128)
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class JobRunRow(SQLModel, table=True):
    """One row per job and period, so a job runs once per period across every process."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_period"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    period: str = Field(max_length=64)
    holder: str = Field(max_length=128)
    result: str | None = Field(default=None, max_length=256)
    created_at: datetime = _ts()
