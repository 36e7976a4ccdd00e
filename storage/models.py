"""The tables, as typed SQLAlchemy Core declarations. Every row carries its platform and workspace, so
tenants never mix.

Each table is a ``Table`` built from a ``TypedColumns`` class (SQLAlchemy 2.1), so its columns are
typed: ``CONVERSATIONS.c.status`` is a ``Column[str]``. Haven reads and writes with Core statements
only; the ORM (about 6 MB of a process's memory just to import) is never loaded.

Alembic's migrations (``storage/migrations/versions``) create the schema; these declarations must match
them exactly (``tests/test_storage.py`` compares the two). Python-side defaults apply to inserts that
leave a column out; there are no server defaults.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    RowMapping,
    String,
    Table,
    Text,
    TypedColumns,
    UniqueConstraint,
)

metadata = MetaData()


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


def as_json(row: RowMapping, *, exclude: Collection[str] = ()) -> dict[str, Any]:
    """A row's columns as JSON values (datetimes in ISO 8601), in column order."""
    return {key: to_jsonable_python(value) for key, value in row.items() if key not in exclude}


def _ts(*, nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=nullable, index=index)


def _conversation_fk(*, index: bool = False) -> Column[str]:
    return Column(String(32), ForeignKey("conversations.id"), nullable=False, index=index)


def _serial_id() -> Column[int]:
    return Column(Integer, primary_key=True)


# Every table that is scoped to a workspace names it the same way (and every query filters on it).
def _platform(*, primary_key: bool = False) -> Column[str]:
    if primary_key:
        return Column(String(16), primary_key=True)
    return Column(String(16), nullable=False)


def _workspace(*, primary_key: bool = False, index: bool = False) -> Column[str]:
    if primary_key:
        return Column(String(64), primary_key=True)
    return Column(String(64), nullable=False, index=index)


class WorkspaceColumns(TypedColumns):
    platform = _platform(primary_key=True)
    workspace = _workspace(primary_key=True)
    crisis_message = Column(Text, nullable=True)
    crisis_locales = Column(JSON, nullable=False)
    ending_enabled = Column(Boolean, nullable=False, default=True)
    abuse_warnings_before_end = Column(Integer, nullable=False, default=2)
    verify_endings = Column(Boolean, nullable=True)
    alert_channel = Column(String(64), nullable=True)
    retention_days = Column(Integer, nullable=False, default=90)
    admin_users = Column(JSON, nullable=False)
    # Added by migration 0008; NULL (a row saved before it) reads as none set.
    instructions = Column(Text, nullable=True)
    allowed_channels = Column(JSON, nullable=True)
    denied_channels = Column(JSON, nullable=True)
    # Added by migration 0010; NULL: the process-wide default (``Settings.suggested_prompts``).
    suggested_prompts = Column(JSON, nullable=True)
    updated_at = _ts()


WORKSPACES = Table("workspaces", metadata, WorkspaceColumns)


class ConversationColumns(TypedColumns):
    id = Column(String(32), primary_key=True, default=new_id)
    platform = _platform()
    workspace = _workspace()
    channel = Column(String(64), nullable=False)
    thread = Column(String(64), nullable=False)
    status = Column(String(16), nullable=False, default="active")  # active | ended
    end_reason = Column(String(32), nullable=True)
    ended_at = _ts(nullable=True)
    warnings = Column(Integer, nullable=False, default=0)
    confirm_pending = Column(Boolean, nullable=False, default=False)
    # A hard risk signal: nothing ends, ever.
    at_risk = Column(Boolean, nullable=False, default=False)
    # What first set at_risk: detector | crisis_tool | verifier (NULL: not at risk, or not recorded).
    risk_source = Column(String(16), nullable=True)
    # Comma-separated cue names of the local detector at "possible" (a soft mark); NULL: none.
    soft_risk_cues = Column(Text, nullable=True)
    # Turn number (count of user messages) when crisis resources were last shown.
    crisis_shown_turn = Column(Integer, nullable=True)
    user_turns = Column(Integer, nullable=False, default=0)
    forked_from = Column(String(32), nullable=True)
    forked_from_message = Column(String(64), nullable=True)
    started_by = Column(String(64), nullable=True)
    created_at = _ts()


CONVERSATIONS = Table(
    "conversations",
    metadata,
    ConversationColumns,
    UniqueConstraint("platform", "workspace", "channel", "thread", name="uq_conversation_thread"),
)


class MessageColumns(TypedColumns):
    id = _serial_id()
    conversation_id = _conversation_fk()
    platform = _platform()
    workspace = _workspace()
    seq = Column(Integer, nullable=False)
    role = Column(String(16), nullable=False)  # user | assistant
    # "text": a person's message; "tool_use"/"tool_result": model plumbing, never shown or forked.
    kind = Column(String(16), nullable=False, default="text")
    author_id = Column(String(64), nullable=True)
    author_name = Column(String(128), nullable=True)
    platform_message_id = Column(String(64), nullable=True)
    text = Column(Text, nullable=True)
    # Anthropic content blocks exactly as sent/received, so the history replays byte for byte.
    content = Column(JSON, nullable=False)
    redacted = Column(Boolean, nullable=False, default=False)
    created_at = _ts()


MESSAGES = Table(
    "messages",
    metadata,
    MessageColumns,
    UniqueConstraint("conversation_id", "seq", name="uq_message_seq"),
    Index("ix_messages_platform_msg", "conversation_id", "platform_message_id"),
    Index("ix_messages_author", "platform", "author_id"),
    Index("ix_messages_created", "workspace", "created_at"),
    # The history cache's freshness check counts redactions per conversation on every turn.
    Index("ix_messages_redacted", "conversation_id", "redacted"),
)


class ProcessedEventColumns(TypedColumns):
    id = _serial_id()
    platform = _platform()
    workspace = _workspace()
    dedupe_key = Column(String(128), nullable=False)
    created_at = _ts(index=True)


EVENTS = Table(
    "processed_events",
    metadata,
    ProcessedEventColumns,
    UniqueConstraint("platform", "workspace", "dedupe_key", name="uq_processed_event"),
)


class DecisionColumns(TypedColumns):
    """The audit log: every ending decision, with the model's note and the signals, no message text."""

    id = _serial_id()
    conversation_id = _conversation_fk(index=True)
    platform = _platform()
    workspace = _workspace(index=True)
    decision = Column(String(16), nullable=False)
    reason = Column(String(32), nullable=True)
    note = Column(Text, nullable=True)
    warnings = Column(Integer, nullable=False, default=0)
    signals = Column(JSON, nullable=False)
    created_at = _ts()


DECISIONS = Table("decisions", metadata, DecisionColumns)


class FeedbackColumns(TypedColumns):
    """A "this ending was a mistake" report: one per person per ending, edited by a later submission."""

    id = _serial_id()
    conversation_id = _conversation_fk(index=True)
    platform = _platform()
    workspace = _workspace(index=True)
    user_id = Column(String(64), nullable=False)
    comment = Column(Text, nullable=True)
    # The first report; ``updated_at`` is the last submission (the same time until one edits it).
    created_at = _ts()
    updated_at = _ts()


FEEDBACK = Table(
    "feedback",
    metadata,
    FeedbackColumns,
    UniqueConstraint("conversation_id", "user_id", name="uq_feedback_user"),
)


class ReminderColumns(TypedColumns):
    """Who has been told that an ended thread is ended (Slack: one ephemeral per user per thread)."""

    id = _serial_id()
    conversation_id = _conversation_fk()
    platform = _platform()
    workspace = _workspace()
    user_id = Column(String(64), nullable=False)
    created_at = _ts()


REMINDERS = Table(
    "ended_reminders",
    metadata,
    ReminderColumns,
    UniqueConstraint("conversation_id", "user_id", name="uq_reminder"),
)


class ModelUsageColumns(TypedColumns):
    """Tokens per model call, for cost accounting (no content)."""

    id = _serial_id()
    conversation_id = Column(String(32), nullable=False, index=True)
    platform = _platform()
    workspace = _workspace()
    model = Column(String(64), nullable=False)
    purpose = Column(String(16), nullable=False, default="turn")  # turn | verify
    input_tokens = Column(Integer, nullable=False, default=0)
    cache_creation_input_tokens = Column(Integer, nullable=False, default=0)
    cache_read_input_tokens = Column(Integer, nullable=False, default=0)
    output_tokens = Column(Integer, nullable=False, default=0)
    created_at = _ts()


USAGE = Table(
    "model_usage",
    metadata,
    ModelUsageColumns,
    Index("ix_usage_workspace", "platform", "workspace", "created_at"),
)


class LeaseColumns(TypedColumns):
    """A named lease (e.g. the scheduler leader); taken over when it expires."""

    name = Column(String(64), primary_key=True)
    holder = Column(String(128), nullable=False)
    expires_at = _ts()


LEASES = Table("leases", metadata, LeaseColumns)


class JobRunColumns(TypedColumns):
    """One row per job and period, so a job runs once per period across every process."""

    id = _serial_id()
    job = Column(String(64), nullable=False)
    period = Column(String(64), nullable=False)
    holder = Column(String(128), nullable=False)
    result = Column(String(256), nullable=True)
    created_at = _ts()


JOB_RUNS = Table(
    "job_runs",
    metadata,
    JobRunColumns,
    UniqueConstraint("job", "period", name="uq_job_period"),
)


class InboxColumns(TypedColumns):
    """The durable inbox (``bot.ports.InboxStore``): every accepted message, from its arrival until its
    outcome reached the platform; the outcome is written in the transactions that store the turn."""

    # A serial number (the port's ids are its decimal strings): the order of acceptance, oldest first.
    id = _serial_id()
    platform = _platform()
    workspace = _workspace()
    dedupe_key = Column(String(128), nullable=False)
    channel = Column(String(64), nullable=False)
    thread = Column(String(64), nullable=False)
    # ``bot.inbox.encode_message``: the whole ``IncomingMessage``, versioned.
    message = Column(JSON, nullable=False)
    state = Column(String(16), nullable=False)  # received | answering | answered | failed
    owner = Column(String(128), nullable=False)  # the process holding it
    lease_until = _ts()
    attempts = Column(Integer, nullable=False, default=1)
    received_at = _ts()
    updated_at = _ts()
    delivered_at = _ts(nullable=True)
    # The platform's id of the reply once one exists (a recovery edits it rather than posting again).
    reply_ref = Column(String(128), nullable=True)
    # ``bot.inbox.encode_result``: the outcome to draw (again), once answered or failed.
    result = Column(JSON, nullable=True)


INBOX = Table(
    "inbox",
    metadata,
    InboxColumns,
    UniqueConstraint("platform", "workspace", "dedupe_key", name="uq_inbox_dedupe"),
    # take_expired and pending: the undelivered entries whose lease ran out; retention: old deliveries.
    Index("ix_inbox_due", "delivered_at", "lease_until"),
    Index("ix_inbox_thread", "platform", "workspace", "channel", "thread"),
    Index("ix_inbox_owner", "owner"),
)


class AdminAuditColumns(TypedColumns):
    """The admin audit (``bot.types.AuditRecord``): who changed which setting, from what to what, when.
    Written in the transaction that saves the change (``save_settings``); crisis texts only summarised."""

    id = _serial_id()
    platform = _platform()
    workspace = _workspace()
    actor_id = Column(String(64), nullable=False)
    actor_name = Column(String(128), nullable=True)
    action = Column(String(32), nullable=False)  # settings.set | resources.set | …
    setting = Column(String(64), nullable=False)
    old_value = Column(JSON, nullable=True)
    new_value = Column(JSON, nullable=True)
    created_at = _ts()


ADMIN_AUDIT = Table(
    "admin_audit",
    metadata,
    AdminAuditColumns,
    Index("ix_admin_audit_workspace", "platform", "workspace", "created_at"),
)


class DepartedWorkspaceColumns(TypedColumns):
    """A workspace Haven was removed from (Slack ``app_uninstalled``, Discord guild removal): what
    ``haven admin purge`` asks before deleting its data. Cleared when Haven is installed there again."""

    platform = _platform(primary_key=True)
    workspace = _workspace(primary_key=True)
    reason = Column(String(32), nullable=False)  # app_uninstalled | guild_remove | …
    departed_at = _ts()


DEPARTED = Table("departed_workspaces", metadata, DepartedWorkspaceColumns)

# Slack installations (many workspaces through OAuth; ``storage.slack_installations``): the tables of
# slack_sdk's ``SQLAlchemyInstallationStore`` and ``SQLAlchemyOAuthStateStore`` (slack_sdk 3.48), column
# for column, naive UTC timestamps included, so either implementation reads the other's rows.


class SlackBotColumns(TypedColumns):
    """A bot's installation in a workspace; an installation (below) is these and the installing user's."""

    id = Column(Integer, primary_key=True, autoincrement=True)
    client_id = Column(String(32), nullable=False)
    app_id = Column(String(32), nullable=False)
    enterprise_id = Column(String(32))
    enterprise_name = Column(String(200))
    team_id = Column(String(32))
    team_name = Column(String(200))
    bot_token = Column(String(200))
    bot_id = Column(String(32))
    bot_user_id = Column(String(32))
    bot_scopes = Column(String(1000))
    bot_refresh_token = Column(String(200))
    bot_token_expires_at = Column(DateTime)
    is_enterprise_install = Column(Boolean, nullable=False, default=False)
    installed_at = Column(DateTime, nullable=False)


BOTS = Table(
    "slack_bots",
    metadata,
    SlackBotColumns,
    Index("slack_bots_idx", "client_id", "enterprise_id", "team_id", "installed_at"),
)


class SlackInstallationColumns(SlackBotColumns):
    enterprise_url = Column(String(200))
    user_id = Column(String(32), nullable=False)
    user_token = Column(String(200))
    user_scopes = Column(String(1000))
    user_refresh_token = Column(String(200))
    user_token_expires_at = Column(DateTime)
    incoming_webhook_url = Column(String(200))
    incoming_webhook_channel = Column(String(200))
    incoming_webhook_channel_id = Column(String(200))
    incoming_webhook_configuration_url = Column(String(200))
    token_type = Column(String(32))


INSTALLATIONS = Table(
    "slack_installations",
    metadata,
    SlackInstallationColumns,
    Index("slack_installations_idx", "client_id", "enterprise_id", "team_id", "user_id", "installed_at"),
)


class SlackOAuthStateColumns(TypedColumns):
    id = Column(Integer, primary_key=True, autoincrement=True)
    state = Column(String(200), nullable=False)
    expire_at = Column(DateTime, nullable=False)


STATES = Table("slack_oauth_states", metadata, SlackOAuthStateColumns)
