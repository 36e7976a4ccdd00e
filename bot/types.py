"""The core's vocabulary: frozen dataclasses that adapters build and read.

Platform ids are opaque strings here; only the adapter that produced them parses them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal


class Platform(enum.StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    TERMINAL = "terminal"


@dataclass(frozen=True, slots=True)
class ThreadRef:
    """Where a conversation lives. ``workspace`` is the Slack team id, the Discord guild id or ``"dm"``."""

    platform: str
    workspace: str
    channel: str
    thread: str

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.workspace}:{self.channel}:{self.thread}"


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    name: str
    # Set by the adapter only after it checked the platform permission (Slack admin/owner, Discord
    # manage_guild). The engine also honours the workspace's configured admin list.
    is_platform_admin: bool = False


class Origin(enum.StrEnum):
    """Why a message reached the engine; only the first three may start a conversation."""

    MENTION = "mention"
    DIRECT = "direct"
    NEW_COMMAND = "new_command"
    THREAD_REPLY = "thread_reply"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file a person attached to their message: a reference, never the bytes.

    ``id`` is the platform's id of the file and ``url`` where that platform serves it (Slack's
    ``url_private_download``, a Discord CDN URL); only the platform's ``bot.ports.FileFetcher`` reads it,
    and only from that platform's own file hosts. ``size`` is what the platform says (None: unknown), so
    a file over the limit is refused before any request.
    """

    id: str
    name: str
    mimetype: str
    url: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    thread: ThreadRef
    author: Author
    text: str
    message_id: str
    origin: Origin = Origin.THREAD_REPLY
    # The key that makes a redelivery a duplicate. Defaults to the message id, so Slack's
    # app_mention + message pair and its retries collapse onto one.
    dedupe_key: str | None = None
    locale: str | None = None
    # Written in a one-to-one direct message with Haven (any message there, thread replies too): the
    # workspace's channel allow-list never applies (``bot.channels``). Not kept in the inbox, because the
    # channel gate runs before a message is accepted.
    in_dm: bool = False
    # Files attached to the message (``bot.files`` reads them); a message may be only files, no words.
    attachments: tuple[Attachment, ...] = ()

    @property
    def starts_conversation(self) -> bool:
        return self.origin in (Origin.MENTION, Origin.DIRECT, Origin.NEW_COMMAND)

    @property
    def effective_dedupe_key(self) -> str:
        return self.dedupe_key or self.message_id


class EndReason(enum.StrEnum):
    USER_REQUEST = "user_request"
    ABUSE = "abuse"
    USER_COMMAND = "user_command"


class TurnStatus(enum.StrEnum):
    REPLIED = "replied"
    IGNORED = "ignored"  # not our thread, empty text, …
    DUPLICATE = "duplicate"
    ENDED_SILENT = "ended_silent"  # ended thread; this user was already reminded
    ENDED_REMINDER = "ended_reminder"  # ended thread; tell this user once
    ERROR = "error"  # model outage etc.; nothing about the conversation changed


@dataclass(frozen=True, slots=True)
class CrisisCard:
    """The workspace's crisis resources (markdown), to show in the thread. ``language`` (a
    ``bot.i18n`` language) is the person's, for the heading a renderer draws around ``text``."""

    text: str
    language: str = "en"


@dataclass(frozen=True, slots=True)
class Closure:
    conversation_id: str
    reason: EndReason
    warnings: int
    # Present when the conversation was marked at risk, hard or soft (only possible for the `end` command).
    crisis: CrisisCard | None = None


@dataclass(frozen=True, slots=True)
class AdminAlert:
    """A content-free notice for the workspace's alert channel."""

    channel: str
    kind: str  # "ending" | "feedback" | "model" (the model keeps failing: see bot.failure_streaks)
    conversation_id: str
    thread: ThreadRef
    reason: str
    warnings: int = 0
    failures: int = 0  # "model": failed turns in a row in this workspace


@dataclass(frozen=True, slots=True)
class TurnResult:
    status: TurnStatus
    conversation_id: str | None = None
    replies: tuple[str, ...] = ()
    crisis: CrisisCard | None = None
    closure: Closure | None = None
    alert: AdminAlert | None = None
    error: str | None = None
    # ``crisis`` is already in the conversation, shown before the reply (``bot.ports.HelpFirst``).
    crisis_shown: bool = False


class InboxState(enum.StrEnum):
    """Where an accepted message stands: received → answering → answered | failed. Whether the outcome
    has reached the platform is ``InboxEntry.delivered``, apart from the state."""

    RECEIVED = "received"  # recorded; nothing of its turn stored yet
    ANSWERING = "answering"  # its user message is in the conversation (begin_turn); the model is at work
    ANSWERED = "answered"  # its turn is stored (finish_turn), or there was nothing to store
    FAILED = "failed"  # given up after the retry budget or on a model outage; the note is the outcome


class Accepted(enum.StrEnum):
    NEW = "new"  # recorded now, held by the process that accepted it
    DUPLICATE = "duplicate"  # its dedupe key was accepted (or answered) before: acknowledge, do nothing
    NOT_OURS = "not_ours"  # a reply in a thread that is not Haven's: nothing recorded
    ELSEWHERE = "elsewhere"  # outside the workspace's allowed channels (``Engine.gate``): nothing recorded


@dataclass(frozen=True, slots=True)
class InboxHold:
    """A process's claim on one inbox entry: the fencing token every state change must present."""

    entry_id: str
    owner: str


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One accepted message, from its arrival until its outcome reached the platform."""

    id: str
    message: IncomingMessage
    state: InboxState
    owner: str  # the process holding it now
    attempts: int  # how many times a process took it, the first acceptance included
    received_at: datetime
    delivered: bool = False
    # The platform's id of the reply once one exists (Slack: the stream's or post's ts), so that a
    # recovery updates that message instead of posting a second one.
    reply_ref: str | None = None
    # The stored outcome of an answered or failed entry, so that a recovery draws exactly it again.
    result: TurnResult | None = None

    @property
    def hold(self) -> InboxHold:
        return InboxHold(self.id, self.owner)


@dataclass(frozen=True, slots=True)
class ForkSource:
    """A user message that can be forked: what the adapter prefills and checks."""

    conversation_id: str
    message_id: str
    author_id: str
    text: str
    thread: ThreadRef


@dataclass(frozen=True, slots=True)
class ForkRequest:
    source_conversation_id: str
    source_message_id: str
    new_thread: ThreadRef
    author: Author
    text: str
    # Platform id of the message that carries the edited text in the new thread, if any.
    new_message_id: str | None = None


@dataclass(frozen=True, slots=True)
class WorkspaceSettings:
    platform: str
    workspace: str
    crisis_message: str | None = None  # None: the built-in default
    crisis_locales: dict[str, str] = field(default_factory=dict)
    ending_enabled: bool = True
    abuse_warnings_before_end: int = 2
    verify_endings: bool | None = None  # None: on with a real model, off with the rehearsal model
    alert_channel: str | None = None
    retention_days: int = 90
    admin_users: tuple[str, ...] = ()
    # The admins' persona / instructions for the model, below Haven's own rules (``bot.prompts``).
    instructions: str | None = None
    # Where Haven answers (``bot.channels``): an empty allow-list means every channel; deny wins.
    allowed_channels: tuple[str, ...] = ()
    denied_channels: tuple[str, ...] = ()
    # What a new assistant thread suggests asking (``bot.starters``): None takes the process-wide default
    # (``Settings.suggested_prompts``); an empty tuple shows none.
    suggested_prompts: tuple[str, ...] | None = None


class ConversationStatus(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Conversation:
    id: str
    thread: ThreadRef
    status: ConversationStatus
    end_reason: str | None
    warnings: int
    confirm_pending: bool
    at_risk: bool
    crisis_shown_turn: int | None
    user_turns: int
    forked_from: str | None = None
    forked_from_message: str | None = None
    # The local detector's cue names (never text) of every POSSIBLE-level user message: a soft mark.
    soft_cues: tuple[str, ...] = ()
    # What first set ``at_risk`` (the hard mark): "detector" | "crisis_tool" | "verifier".
    risk_source: str | None = None

    @property
    def ended(self) -> bool:
        return self.status is ConversationStatus.ENDED

    @property
    def soft_risk(self) -> bool:
        return bool(self.soft_cues)


@dataclass(frozen=True, slots=True)
class HistoryMessage:
    """One stored message as the model sees it (Anthropic content blocks) plus who wrote it."""

    seq: int
    role: str  # "user" | "assistant"
    kind: str  # "text" | "tool_use" | "tool_result"
    content: tuple[dict[str, object], ...]
    author_id: str | None = None
    platform_message_id: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message the engine asks storage to append."""

    role: str
    kind: str
    content: tuple[dict[str, object], ...]
    author_id: str | None = None
    author_name: str | None = None
    platform_message_id: str | None = None
    text: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """One audit record of the ending policy."""

    decision: str
    reason: str | None
    note: str | None
    warnings: int
    signals: dict[str, object]


@dataclass(frozen=True, slots=True)
class StateChange:
    warnings: int | None = None
    confirm_pending: bool | None = None
    at_risk: bool | None = None  # True sets the hard mark; marks are never cleared
    risk_source: str | None = None  # what set the hard mark, kept only if none was recorded yet
    soft_cues: tuple[str, ...] = ()  # added to the conversation's soft mark
    crisis_shown_turn: int | None = None
    end_reason: str | None = None  # set → the conversation ends


@dataclass(frozen=True, slots=True)
class BeganTurn:
    """What storage's ``begin_turn`` found: the conversation (if any) and whether the event was new.

    When the user message was stored, ``settings`` and ``history`` were read in the same transaction:
    the workspace's settings, and the conversation's whole history ending with that message.
    """

    duplicate: bool
    conversation: Conversation | None
    stored: bool  # the user message was appended to the history
    settings: WorkspaceSettings | None = None
    history: tuple[HistoryMessage, ...] = ()


@dataclass(frozen=True, slots=True)
class EndingRecord:
    """An ended conversation, as admins list them."""

    conversation_id: str
    thread: ThreadRef
    reason: str | None
    warnings: int
    ended_at: datetime | None
    forked_from: str | None


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A "this ending was a mistake" report, as admins list them."""

    conversation_id: str
    thread: ThreadRef
    user_id: str
    comment: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """A stored audit record of the ending policy (see ``Decision``)."""

    conversation_id: str
    decision: str
    reason: str | None
    note: str | None
    warnings: int
    signals: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One admin change (``haven admin audit``): who changed which setting of a workspace, from what to
    what, and when (UTC). Made by ``bot.admin.Admin`` for every change, whichever adapter or the CLI asked.

    ``old`` and ``new`` are JSON values (``None``: unset or the built-in default); a crisis text is
    recorded as ``bot.admin.text_summary`` (length, digest, first words), never in full.
    """

    platform: str
    workspace: str
    actor_id: str
    actor_name: str | None
    action: str  # settings.set | resources.set | resources.reset
    setting: str  # a ``bot.admin.SETTINGS`` name, ``crisis-message``, ``crisis-message:<locale>``, …
    old: Any
    new: Any
    created_at: datetime


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Tokens one model call used; stored for cost accounting."""

    model: str
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    purpose: str = "turn"


# How usage is broken down: per conversation, or per person (who started the conversation).
UsageGrouping = Literal["user", "conversation"]


@dataclass(frozen=True, slots=True)
class UsageLine:
    """Model calls and tokens summed over a window, per model and, when asked, per person or
    conversation (``key``; empty for the whole workspace)."""

    key: str
    model: str
    calls: int
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
            + self.output_tokens
        )


@dataclass(frozen=True, slots=True)
class Digest:
    platform: str
    workspace: str
    channel: str
    since: datetime
    endings_by_reason: dict[str, int] = field(default_factory=dict)
    vetoes: int = 0
    warnings: int = 0
    feedback: int = 0
    # (channel, thread) of conversations whose ending was reported as a mistake, for links.
    reported: tuple[tuple[str, str], ...] = ()


class RiskLevel(enum.IntEnum):
    """The local risk detector's answer for one message."""

    NONE = 0
    POSSIBLE = 1  # soft mark: an ending needs the verifier's explicit "no risk"
    LIKELY = 2  # hard signal: vetoes endings and shows crisis resources at once


@dataclass(frozen=True)
class RiskAssessment:
    level: RiskLevel
    kind: str | None  # "self_harm" | "harm_to_others" | None
    cues: tuple[str, ...]  # rule ids such as "self_harm.en.wish_to_die", never the user's text


@dataclass(frozen=True, slots=True)
class UserConversation:
    """A conversation one person wrote in, as their Home lists it (``AdminStore.list_user_conversations``)."""

    conversation_id: str
    thread: ThreadRef
    ended: bool
    end_reason: str | None
    last_active: datetime  # when the person last wrote in it (UTC)
    # The start of the person's latest message in it; None once its text was removed (retention, forget).
    latest_text: str | None
