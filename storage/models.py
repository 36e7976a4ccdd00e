"""The tables, as SQLAlchemy 2 declarative classes. Every row carries its platform and workspace, so
tenants never mix.

Alembic's migrations (``storage/migrations/versions``) create the schema; these declarations must match
them exactly (``tests/test_storage.py`` compares the two). Column types are spelled out rather than
inferred from the annotations, so that the schema is visible here. Python-side defaults apply to inserts
that leave a column out; there are no server defaults.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, MappedColumn, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Base(DeclarativeBase):
    # Every table here is a ``Table`` (no joined or selectable mappings).
    __table__: ClassVar[Table]

    def as_json(self, *, exclude: Collection[str] = ()) -> dict[str, Any]:
        """The row's columns as JSON values (datetimes in ISO 8601), in column order."""
        return {
            c.key: to_jsonable_python(getattr(self, c.key))
            for c in self.__table__.columns
            if c.key not in exclude
        }


def _ts(*, nullable: bool = False, index: bool = False) -> MappedColumn[Any]:
    return mapped_column(DateTime(timezone=True), nullable=nullable, index=index)


def _conversation_fk(*, index: bool = False) -> MappedColumn[Any]:
    return mapped_column(String(32), ForeignKey("conversations.id"), nullable=False, index=index)


def _serial_id() -> MappedColumn[Any]:
    return mapped_column(Integer, primary_key=True)


class WorkspaceRow(Base):
    __tablename__ = "workspaces"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), primary_key=True)
    crisis_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    crisis_locales: Mapped[dict[str, str]] = mapped_column(JSON, nullable=False)
    ending_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    abuse_warnings_before_end: Mapped[int] = mapped_column(Integer, nullable=False, default=2)
    verify_endings: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    alert_channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    retention_days: Mapped[int] = mapped_column(Integer, nullable=False, default=90)
    admin_users: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    # Added by migration 0008; NULL (a row saved before it) reads as none set.
    instructions: Mapped[str | None] = mapped_column(Text, nullable=True)
    allowed_channels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    denied_channels: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # Added by migration 0010; NULL: the process-wide default (``Settings.suggested_prompts``).
    suggested_prompts: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = _ts()


class ConversationRow(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("platform", "workspace", "channel", "thread", name="uq_conversation_thread"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    thread: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="active")  # active | ended
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ended_at: Mapped[datetime | None] = _ts(nullable=True)
    warnings: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    confirm_pending: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # A hard risk signal: nothing ends, ever.
    at_risk: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    # What first set at_risk: detector | crisis_tool | verifier (NULL: not at risk, or not recorded).
    risk_source: Mapped[str | None] = mapped_column(String(16), nullable=True)
    # Comma-separated cue names of the local detector at "possible" (a soft mark); NULL: none.
    soft_risk_cues: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Turn number (count of user messages) when crisis resources were last shown.
    crisis_shown_turn: Mapped[int | None] = mapped_column(Integer, nullable=True)
    user_turns: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    forked_from: Mapped[str | None] = mapped_column(String(32), nullable=True)
    forked_from_message: Mapped[str | None] = mapped_column(String(64), nullable=True)
    started_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = _ts()


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_message_seq"),
        Index("ix_messages_platform_msg", "conversation_id", "platform_message_id"),
        Index("ix_messages_author", "platform", "author_id"),
        Index("ix_messages_created", "workspace", "created_at"),
        # The history cache's freshness check counts redactions per conversation on every turn.
        Index("ix_messages_redacted", "conversation_id", "redacted"),
    )

    id: Mapped[int] = _serial_id()
    conversation_id: Mapped[str] = _conversation_fk()
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)  # user | assistant
    # "text": a person's message; "tool_use"/"tool_result": model plumbing, never shown or forked.
    kind: Mapped[str] = mapped_column(String(16), nullable=False, default="text")
    author_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    author_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    platform_message_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Anthropic content blocks exactly as sent/received, so the history replays byte for byte.
    content: Mapped[list[dict[str, Any]]] = mapped_column(JSON, nullable=False)
    redacted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    created_at: Mapped[datetime] = _ts()


class ProcessedEventRow(Base):
    __tablename__ = "processed_events"
    __table_args__ = (UniqueConstraint("platform", "workspace", "dedupe_key", name="uq_processed_event"),)

    id: Mapped[int] = _serial_id()
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    dedupe_key: Mapped[str] = mapped_column(String(128), nullable=False)
    created_at: Mapped[datetime] = _ts(index=True)


class DecisionRow(Base):
    """The audit log: every ending decision, with the model's note and the signals, no message text."""

    __tablename__ = "decisions"

    id: Mapped[int] = _serial_id()
    conversation_id: Mapped[str] = _conversation_fk(index=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    decision: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    signals: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = _ts()


class FeedbackRow(Base):
    """A "this ending was a mistake" report: one per person per ending, edited by a later submission."""

    __tablename__ = "feedback"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id", name="uq_feedback_user"),)

    id: Mapped[int] = _serial_id()
    conversation_id: Mapped[str] = _conversation_fk(index=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The first report; ``updated_at`` is the last submission (the same time until one edits it).
    created_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts()


class ReminderRow(Base):
    """Who has been told that an ended thread is ended (Slack: one ephemeral per user per thread)."""

    __tablename__ = "ended_reminders"
    __table_args__ = (UniqueConstraint("conversation_id", "user_id", name="uq_reminder"),)

    id: Mapped[int] = _serial_id()
    conversation_id: Mapped[str] = _conversation_fk()
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    user_id: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = _ts()


class ModelUsageRow(Base):
    """Tokens per model call, for cost accounting (no content)."""

    __tablename__ = "model_usage"
    __table_args__ = (Index("ix_usage_workspace", "platform", "workspace", "created_at"),)

    id: Mapped[int] = _serial_id()
    conversation_id: Mapped[str] = mapped_column(String(32), nullable=False, index=True)
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    model: Mapped[str] = mapped_column(String(64), nullable=False)
    purpose: Mapped[str] = mapped_column(String(16), nullable=False, default="turn")  # turn | verify
    input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cache_creation_input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    cache_read_input_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = _ts()


class LeaseRow(Base):
    """A named lease (e.g. the scheduler leader); taken over when it expires."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128), nullable=False)
    expires_at: Mapped[datetime] = _ts()


class JobRunRow(Base):
    """One row per job and period, so a job runs once per period across every process."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "period", name="uq_job_period"),)

    id: Mapped[int] = _serial_id()
    job: Mapped[str] = mapped_column(String(64), nullable=False)
    period: Mapped[str] = mapped_column(String(64), nullable=False)
    holder: Mapped[str] = mapped_column(String(128), nullable=False)
    result: Mapped[str | None] = mapped_column(String(256), nullable=True)
    created_at: Mapped[datetime] = _ts()


class InboxRow(Base):
    """The durable inbox (``bot.ports.InboxStore``): every accepted message, from its arrival until its
    outcome reached the platform; the outcome is written in the transactions that store the turn."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "workspace", "dedupe_key", name="uq_inbox_dedupe"),
        # take_expired and pending: the undelivered entries whose lease ran out; retention: old deliveries.
        Index("ix_inbox_due", "delivered_at", "lease_until"),
        Index("ix_inbox_thread", "platform", "workspace", "channel", "thread"),
        Index("ix_inbox_owner", "owner"),
    )

    # A serial number (the port's ids are its decimal strings): the order of acceptance, oldest first.
    id: Mapped[int] = _serial_id()
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    dedupe_key: Mapped[str] = mapped_column(String(128), nullable=False)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    thread: Mapped[str] = mapped_column(String(64), nullable=False)
    # ``bot.inbox.encode_message``: the whole ``IncomingMessage``, versioned.
    message: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)  # received | answering | answered | failed
    owner: Mapped[str] = mapped_column(String(128), nullable=False)  # the process holding it
    lease_until: Mapped[datetime] = _ts()
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    received_at: Mapped[datetime] = _ts()
    updated_at: Mapped[datetime] = _ts()
    delivered_at: Mapped[datetime | None] = _ts(nullable=True)
    # The platform's id of the reply once one exists (a recovery edits it rather than posting again).
    reply_ref: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # ``bot.inbox.encode_result``: the outcome to draw (again), once answered or failed.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class AdminAuditRow(Base):
    """The admin audit (``bot.types.AuditRecord``): who changed which setting, from what to what, when.
    Written in the transaction that saves the change (``save_settings``); crisis texts only summarised."""

    __tablename__ = "admin_audit"
    __table_args__ = (Index("ix_admin_audit_workspace", "platform", "workspace", "created_at"),)

    id: Mapped[int] = _serial_id()
    platform: Mapped[str] = mapped_column(String(16), nullable=False)
    workspace: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_id: Mapped[str] = mapped_column(String(64), nullable=False)
    actor_name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)  # settings.set | resources.set | …
    setting: Mapped[str] = mapped_column(String(64), nullable=False)
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = _ts()


class DepartedWorkspaceRow(Base):
    """A workspace Haven was removed from (Slack ``app_uninstalled``, Discord guild removal): what
    ``haven admin purge`` asks before deleting its data. Cleared when Haven is installed there again."""

    __tablename__ = "departed_workspaces"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    workspace: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32), nullable=False)  # app_uninstalled | guild_remove | …
    departed_at: Mapped[datetime] = _ts()


# Slack installations (many workspaces through OAuth; ``storage.slack_installations``): the tables of
# slack_sdk's ``SQLAlchemyInstallationStore`` and ``SQLAlchemyOAuthStateStore`` (slack_sdk 3.48), column
# for column, naive UTC timestamps included, so either implementation reads the other's rows.


class SlackInstallationRow(Base):
    __tablename__ = "slack_installations"
    __table_args__ = (
        Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32), nullable=False)
    app_id: Mapped[str] = mapped_column(String(32), nullable=False)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    enterprise_url: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(String(200))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200))
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    user_id: Mapped[str] = mapped_column(String(32), nullable=False)
    user_token: Mapped[str | None] = mapped_column(String(200))
    user_scopes: Mapped[str | None] = mapped_column(String(1000))
    user_refresh_token: Mapped[str | None] = mapped_column(String(200))
    user_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    incoming_webhook_url: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_channel: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_channel_id: Mapped[str | None] = mapped_column(String(200))
    incoming_webhook_configuration_url: Mapped[str | None] = mapped_column(String(200))
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    token_type: Mapped[str | None] = mapped_column(String(32))
    installed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class SlackBotRow(Base):
    __tablename__ = "slack_bots"
    __table_args__ = (Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    client_id: Mapped[str] = mapped_column(String(32), nullable=False)
    app_id: Mapped[str] = mapped_column(String(32), nullable=False)
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    enterprise_name: Mapped[str | None] = mapped_column(String(200))
    team_id: Mapped[str | None] = mapped_column(String(32))
    team_name: Mapped[str | None] = mapped_column(String(200))
    bot_token: Mapped[str | None] = mapped_column(String(200))
    bot_id: Mapped[str | None] = mapped_column(String(32))
    bot_user_id: Mapped[str | None] = mapped_column(String(32))
    bot_scopes: Mapped[str | None] = mapped_column(String(1000))
    bot_refresh_token: Mapped[str | None] = mapped_column(String(200))
    bot_token_expires_at: Mapped[datetime | None] = mapped_column(DateTime)
    is_enterprise_install: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    installed_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class SlackOAuthStateRow(Base):
    __tablename__ = "slack_oauth_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    state: Mapped[str] = mapped_column(String(200), nullable=False)
    expire_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
