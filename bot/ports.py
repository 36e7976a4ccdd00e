"""The core's ports: what every platform adapter fulfils (after opsdroid's connectors, without a global
registry), and what the core needs from storage (implemented by ``storage.repository.Repository``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from bot.types import (
    Accepted,
    Attachment,
    AuditRecord,
    BeganTurn,
    Conversation,
    CrisisCard,
    Decision,
    DecisionRecord,
    Digest,
    EndingRecord,
    FeedbackRecord,
    HistoryMessage,
    InboxEntry,
    InboxHold,
    InboxState,
    IncomingMessage,
    NewMessage,
    StateChange,
    ThreadRef,
    TurnResult,
    UsageGrouping,
    UsageLine,
    UsageRecord,
    UserConversation,
    WorkspaceSettings,
)

if TYPE_CHECKING:
    from datetime import datetime

    from bot.admin import Admin
    from bot.config import Settings
    from bot.engine import Engine
    from bot.home import Home
    from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, PrivateNotice, Reply


class CoreServices(Protocol):
    """What the composition root hands a platform adapter: the engine for everything about
    conversations, admin operations, and the settings. Storage is not among them: an adapter reaches it
    only through the engine."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def admin(self) -> Admin: ...

    @property
    def home(self) -> Home: ...


class Connector(Protocol):
    """A platform adapter's lifecycle. ``listen`` returns when the connector is done or disconnected."""

    name: str

    async def connect(self) -> None:
        """Authenticate and open connections; raise a clear error if credentials are rejected."""

    async def listen(self) -> None:
        """Receive events and hand them to the engine until disconnected (or input ends)."""

    async def disconnect(self) -> None:
        """Stop receiving, finish in-flight work briefly, close connections. Safe to call twice."""

    async def ready(self) -> bool:
        """Whether the connector can receive events right now (``/readyz``): connected and not stopping.
        Cheap (no network call of its own), never raises; False before ``connect`` and after
        ``disconnect``. A connector that reconnects by itself is not ready while it reconnects."""
        ...


class MetricsSink(Protocol):
    """What the engine counts for operators (``bot.metrics`` implements it for ``/metrics``; the core
    imports no metrics library). Calls are cheap, never raise, and carry no content: labels are
    platforms, statuses, verdicts and reasons. ``Engine.metrics`` is ``NoMetrics`` unless the
    composition root sets one."""

    def turn(self, platform: str, outcome: str, seconds: float) -> None:
        """One user message handled in a conversation: its ``TurnStatus`` value and how long it took."""

    def decision(self, verdict: str, reason: str) -> None:
        """The ending policy answered a proposal (``Verdict`` value; the proposal's ``EndReason``)."""

    def ending(self, reason: str) -> None:
        """A conversation ended (``EndReason`` value, the end command's included)."""

    def platform_error(self, platform: str, method: str, kind: str) -> None:
        """A platform API call failed (``kind``: an HTTP status, ``rate_limited``, ``connection``)."""


class NoMetrics:
    """The ``MetricsSink`` that counts nothing (tests, ``haven chat``, admin commands)."""

    def turn(self, platform: str, outcome: str, seconds: float) -> None:
        pass

    def decision(self, verdict: str, reason: str) -> None:
        pass

    def ending(self, reason: str) -> None:
        pass

    def platform_error(self, platform: str, method: str, kind: str) -> None:
        pass


@runtime_checkable
class DigestSink(Protocol):
    """A connector that can post the weekly digest to a workspace's alert channel."""

    async def send_digest(self, digest: Digest) -> None: ...


class ReplyStream(Protocol):
    """An adapter's live view of a reply being written (a Slack stream, a Discord message being edited).

    ``update`` receives the whole reply so far, never a delta, so a retried model call can take back
    text it streamed; adapters throttle their platform calls. The final text is the turn's reply.

    ``update`` raises ``bot.model.ReplyStopped`` when the person stopped the reply (Slack's Stop
    button): the engine ends the model call and keeps the text the person saw as the turn's reply.
    """

    async def update(self, text: str) -> None: ...


@runtime_checkable
class ShowsThinking(Protocol):
    """A ``ReplyStream`` that can show at once that Haven is working (Slack's "is thinking…" status).

    The engine calls ``thinking`` once, just before the turn's first model call (so never for a message
    it will not answer); the reply's first words replace it.
    """

    async def thinking(self) -> None: ...


@runtime_checkable
class Settles(Protocol):
    """A ``ReplyStream`` that shows the rest of the reply as soon as the model is done, before the turn
    is stored (Slack: the stream is stopped then), so that a Stop the person pressed since its last
    platform call is known in time: ``settle`` raises ``bot.model.ReplyStopped`` with what they saw,
    and the engine keeps that instead of the whole reply.
    """

    async def settle(self, text: str) -> None: ...


class Renderer(Protocol):
    """How an adapter draws the core's presentation items (``bot.presentation``) in its platform's idiom.

    ``bot.presentation.present`` decides what is shown, in which order and to whom; a renderer draws one
    item at a time and decides nothing else. The terminal's is the plain reference
    (``adapters.terminal.TerminalRenderer``).
    """

    async def reply(self, item: Reply) -> None:
        """Haven's reply in the conversation (finishing a stream that showed part of it), split at the
        platform's message limit without breaking a code block (``bot.text.split``)."""

    async def crisis_card(self, item: CrisisResources) -> None:
        """The crisis resources, as a card in the conversation."""

    async def closure(self, item: ClosureNotice) -> None:
        """The closure notice with its feedback action ("this ending was a mistake")."""

    async def private_notice(self, item: PrivateNotice) -> None:
        """Text for ``item.user_id`` only, where the platform can; else one short line."""

    async def admin_alert(self, item: AlertNotice) -> None:
        """A content-free notice in the workspace's alert channel."""


@runtime_checkable
class HelpFirst(Protocol):
    """A ``ReplyStream`` that can show the crisis resources before the reply's first words.

    The engine calls ``crisis_card`` once, before a model call, when it knows the card and none of the
    reply has been handed to ``update`` yet (the detector flagged the message; the model called the
    crisis tool before writing). True when the card is now in the conversation; the turn's result then
    says so (``TurnResult.crisis_shown``) and presentation does not draw it again.
    """

    async def crisis_card(self, card: CrisisCard) -> bool: ...


@runtime_checkable
class RecoverySink(Protocol):
    """How an adapter answers an inbox entry that no live event waits on (``Engine.recover``): the
    entry's holder died, froze or stopped, and another process (or this one, restarted) finishes it.

    Both work in the entry's own thread (``entry.message.thread``). When ``entry.reply_ref`` is set, a
    reply was already started there (a stream, a first post): the sink continues or replaces *that*
    message (Slack: ``chat.update``) instead of posting a second one.
    """

    def reply_stream(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]]) -> ReplyStream:
        """A live reply in the entry's thread for a recovered turn; it calls ``on_ref`` with the
        platform's id of its message as soon as one exists (the engine records it)."""
        ...

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        """Draw ``result`` in the entry's thread: through ``stream`` when the turn ran into one, else
        updating ``entry.reply_ref``'s message when it is set, else as new posts."""
        ...

    async def message(self, entry: InboxEntry) -> IncomingMessage:
        """The entry's message as its turn should see it. An adapter that records a message before it
        knows who wrote it (Slack: no ``users.info`` round trip while the platform waits for its
        acknowledgement) fills the author in here; the others return ``entry.message``. Never raises:
        when the platform cannot say, the message as recorded."""
        ...


class FileFetcher(Protocol):
    """How the core reads a file a person attached on one platform: the adapter's one seam to the
    platform's file hosts (Slack: ``url_private_download`` with the workspace's bot token; Discord: its
    CDN, no credentials).

    Contract, for every call:

    * Only the platform's own file hosts (an allow-list of origins that is data, with reasons) are ever
      asked; a URL anywhere else raises ``bot.files.FileHostRefused`` without any request, and so does a
      redirect that leaves them (each hop is checked before it is followed).
    * ``file.size`` over ``max_bytes`` raises ``bot.files.FileTooBig`` before any request; so does a
      larger ``Content-Length`` before the body is read, and a body that grows past ``max_bytes`` while
      it streams in (the download stops there).
    * Connecting and reading are bounded by ``seconds``; a time-out, a connection failure or an
      HTTP error raises ``bot.files.FileUnavailable``.
    * It returns the body's bytes and never logs them, nor the URL's query (Discord's is a signature).
    """

    async def fetch(self, workspace: str, file: Attachment, *, max_bytes: int, seconds: float) -> bytes: ...


class ConversationStore(Protocol):
    """What the engine needs from storage: conversations, their messages, state and audit.

    Every call is scoped by workspace (and platform where an id alone is not enough): a conversation id
    from another workspace finds nothing. A call raises ``StorageUnavailable`` when the database cannot
    be reached; nothing of a failed call is kept. State only moves forward: risk marks are never
    cleared, and an ended conversation stays ended and gets no more messages.
    """

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        """The workspace's settings; the defaults for a workspace never configured."""
        ...

    def conversation_lock(self, key: str) -> AbstractAsyncContextManager[None]:
        """Serialise the turns of one conversation (``ThreadRef.key``): in this process always, and
        across processes where the store is shared by several. Held for a whole turn, model call
        included; waiting for it never blocks the event loop."""
        ...

    async def begin_turn(
        self,
        thread: ThreadRef,
        dedupe_key: str,
        message: NewMessage,
        *,
        create: bool,
        started_by: str | None = None,
        at_risk: bool = False,
        soft_cues: Sequence[str] = (),
        hold: InboxHold | None = None,
    ) -> BeganTurn:
        """In one transaction: claim ``dedupe_key`` (a duplicate changes nothing), find the thread's
        conversation or, with ``create``, start one, count the user turn and append ``message``.
        With ``hold``, the inbox entry moves to ``ANSWERING`` in the same transaction, or, when the
        hold was lost, nothing happens and ``LeaseLost`` is raised. When nothing is appended (a
        duplicate, a thread not Haven's, an ended conversation) the entry keeps its state: its outcome
        is the caller's to ``complete``.

        A thread that is not a conversation (and ``create`` false) claims no key. An ended conversation
        is returned unchanged, with nothing appended. ``at_risk`` sets the hard mark (source
        "detector"); ``soft_cues`` are added to the soft mark. When the message was stored, the result
        carries the workspace's settings and the whole history ending with it, read in the same
        transaction: under the conversation lock they are current for the rest of the turn.
        """
        ...

    async def finish_turn(
        self,
        conversation_id: str,
        workspace: str,
        messages: Sequence[NewMessage],
        change: StateChange,
        decisions: Sequence[Decision] = (),
        usage: Sequence[UsageRecord] = (),
        outcome: tuple[InboxHold, TurnResult] | None = None,
    ) -> Conversation:
        """Append the model's side of a turn, apply ``change`` and write the audit records and usage,
        atomically; returns the conversation as stored. A passing outage is retried: the inputs exist
        only in memory. With ``outcome``, its inbox entry becomes ``ANSWERED`` with that result in the
        same transaction, or, when the hold was lost, nothing is written and ``LeaseLost`` is raised.
        When the entry is already ``ANSWERED`` (a retry after a commit whose acknowledgement was lost),
        nothing is written again and the conversation comes back as stored."""
        ...

    async def resume_turn(self, thread: ThreadRef, hold: InboxHold) -> BeganTurn:
        """For an inbox entry taken over in ``ANSWERING`` (its user message stored, its answer not):
        the conversation, the workspace's settings and the history ending with that message (the
        person's last message whose platform id is the entry's ``message_id``; messages stored after it
        are left out), as ``begin_turn`` would have returned them (``stored`` true), without appending
        anything. An ended conversation comes back with ``stored`` false (and no conversation, when the
        thread holds none). ``LeaseLost`` when the hold was lost."""
        ...

    async def find_conversation(self, thread: ThreadRef) -> Conversation | None:
        """The conversation living in ``thread``, ended or not; None when the thread is not Haven's."""
        ...

    async def get_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> Conversation | None: ...

    async def history(self, conversation_id: str, workspace: str) -> list[HistoryMessage]:
        """The conversation's messages in order (read-only: they may be shared with a cache)."""
        ...

    async def claim_event(self, platform: str, workspace: str, key: str) -> bool:
        """Insert-or-ignore a dedupe key (at most 128 characters); True only for the first delivery, in
        any process."""
        ...

    async def mark_reminded(self, conversation: Conversation, user_id: str) -> bool:
        """True the first time this user is told this thread has ended."""
        ...

    async def is_participant(self, conversation_id: str, workspace: str, user_id: str) -> bool:
        """Whether the user started the conversation or wrote in it (forks count copied messages)."""
        ...

    async def find_user_message(
        self,
        conversation_id: str,
        workspace: str,
        *,
        platform_message_id: str | None = None,
        number: int | None = None,
    ) -> HistoryMessage | None:
        """A person's text message by platform id, or by its 1-based number among them."""
        ...

    async def end_conversation(
        self, conversation_id: str, workspace: str, reason: str, decision: Decision
    ) -> bool:
        """End by command and audit it; False when it had already ended (another process was first)."""
        ...

    async def create_fork(
        self,
        source_id: str,
        workspace: str,
        before_seq: int,
        new_thread: ThreadRef,
        *,
        source_message_id: str,
        started_by: str,
    ) -> Conversation:
        """A new conversation in ``new_thread`` holding every message of the source before
        ``before_seq``. Warnings start at zero; both risk marks are inherited."""
        ...

    async def record_usage(self, conversation: Conversation, usage: Sequence[UsageRecord]) -> None:
        """Usage of model calls whose turn failed later: they were billed all the same."""
        ...

    async def record_feedback(self, conversation: Conversation, user_id: str, comment: str | None) -> bool:
        """A "this ending was a mistake" report: one record per person per conversation, in any process.

        True when this is the person's first report on this conversation. A repeat (the button pressed
        again, the form submitted again) creates nothing: it edits the person's record, replacing its
        comment (a repeat without a comment keeps the one given before) and noting the time of the edit;
        it returns False.
        """
        ...


class AdminStore(Protocol):
    """What admin operations need from storage: one workspace's settings and read-only views of it.

    Lists are newest first and at most ``limit`` long; nothing from another workspace is ever listed.
    """

    async def get_settings(self, platform: str, workspace: str) -> WorkspaceSettings:
        """The workspace's settings; the defaults for a workspace never configured."""
        ...

    async def save_settings(
        self, settings: WorkspaceSettings, audit: Sequence[AuditRecord] = ()
    ) -> WorkspaceSettings:
        """Store every field of ``settings`` for its workspace, and the admin ``audit`` records of the
        change in the same transaction (both or neither); returns the settings."""
        ...

    async def list_admin_audit(self, platform: str, workspace: str, limit: int = 20) -> list[AuditRecord]:
        """The workspace's admin changes (``save_settings``'s ``audit``), newest first (by ``created_at``;
        of one instant, the later stored first); ``old``/``new`` come back as the JSON they were stored
        as (tuples as lists)."""
        ...

    async def list_endings(self, platform: str, workspace: str, limit: int = 20) -> list[EndingRecord]: ...

    async def list_feedback(self, platform: str, workspace: str, limit: int = 20) -> list[FeedbackRecord]: ...

    async def list_decisions(
        self, platform: str, workspace: str, limit: int = 50, conversation_id: str | None = None
    ) -> list[DecisionRecord]: ...

    async def usage_totals(
        self, platform: str, workspace: str, since: datetime | None = None
    ) -> dict[str, int]:
        """Model calls and token sums: ``calls``, ``input_tokens``, ``cache_creation_input_tokens``,
        ``cache_read_input_tokens``, ``output_tokens``; with ``since`` (UTC), only the calls made at or
        after it."""
        ...

    async def usage_lines(
        self,
        platform: str,
        workspace: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: UsageGrouping | None = None,
    ) -> list[UsageLine]:
        """Model calls and token sums made at or after ``since`` and before ``until`` (UTC), one line per
        model and — with ``by`` — per conversation (its id) or per person (who started the conversation
        the calls were for), largest token total first."""
        ...

    async def list_user_conversations(
        self, platform: str, workspace: str, user_id: str, limit: int = 10
    ) -> list[UserConversation]:
        """The conversations of this workspace in which ``user_id`` wrote (their own text messages,
        copies in a fork included), the one they wrote in most recently first, each with the first 200
        characters of their latest message there (None once removed)."""
        ...

    async def forget_user(
        self, platform: str, workspace: str, user_id: str, audit: AuditRecord
    ) -> dict[str, int]:
        """Forget a person in one workspace ("forget me"): remove the text (and display name) of every
        message ``user_id`` wrote in this workspace's conversations, and the comments of their "mistake"
        reports here; other workspaces keep theirs. The messages stay in the history as a removal note,
        so the conversations remain replayable. The inbox's copies of their answered messages (kept for
        days as dedupe records) lose their words too; a message still waiting for its answer keeps them
        until it is answered. ``audit`` is written in the same transaction, its ``new`` replaced by what
        was removed; that is also what comes back: ``{"messages": n, "comments": k}``."""
        ...


class InboxStore(Protocol):
    """The durable inbox: every message Haven accepted, kept until its outcome reached the platform.

    Acknowledging an event is a promise to answer it; the inbox is what keeps the promise through
    database outages, crashes, freezes and deploys. An adapter calls ``accept`` *before* it acknowledges
    (and does not acknowledge when it raises), so nothing is acknowledged and then forgotten.

    Every entry is *held* by one process (its ``owner``) until a lease runs out; the holder renews the
    lease while it works. Any process may take over an entry whose lease ran out (its holder crashed,
    froze, or released it at shutdown). Every change names the hold it is made under: a change by a
    process that no longer holds the entry changes nothing (``False``, or ``LeaseLost`` from the turn's
    transactions), which keeps a resumed stale process from answering twice.
    """

    async def accept(
        self,
        msg: IncomingMessage,
        owner: str,
        lease_seconds: float,
        may_answer: Callable[[WorkspaceSettings], bool] | None = None,
    ) -> tuple[Accepted, InboxEntry | None]:
        """Record ``msg`` durably, held by ``owner``: ``NEW`` with its entry. ``ELSEWHERE``, recording
        nothing, when ``may_answer`` (a pure rule, given the workspace's settings as read in the same
        transaction) says no. ``DUPLICATE`` (no entry) when its dedupe key was accepted before, or was
        already claimed by a turn. ``NOT_OURS``, recording nothing, when ``msg`` does not start a
        conversation and its thread is not Haven's. In that order: one round trip answers them all,
        which is what an acknowledgement costs. Raises ``StorageUnavailable`` when the database cannot
        be reached."""
        ...

    async def renew(self, owner: str, entry_ids: Sequence[str], lease_seconds: float) -> set[str]:
        """Extend the leases ``owner`` still holds among ``entry_ids`` to ``lease_seconds`` from now;
        the ids still held come back (the others were taken over, or are delivered)."""
        ...

    async def take_expired(
        self,
        owner: str,
        lease_seconds: float,
        limit: int,
        thread: ThreadRef | None = None,
        *,
        platforms: Collection[str] | None = None,
    ) -> list[InboxEntry]:
        """Take over up to ``limit`` unfinished entries (not yet delivered) whose lease ran out, oldest
        first (in the order they were accepted; only ``thread``'s, when given; only those of
        ``platforms``, when given: a process takes only what it has an adapter to answer), now held by
        ``owner`` for ``lease_seconds``, each with ``attempts`` + 1. Two processes never take the same
        entry. An entry whose holder is inside a transaction at that moment (PostgreSQL) is skipped, not
        waited for; the holder still has it."""
        ...

    async def take_earlier(
        self, entry: InboxEntry, owner: str, lease_seconds: float, limit: int
    ) -> list[InboxEntry]:
        """Thread order across processes. Called under ``entry``'s conversation lock, before its turn
        runs: take over up to ``limit`` unfinished entries of ``entry``'s thread accepted before it,
        oldest first, *whoever holds them and whether or not their lease ran out*, now held by ``owner``
        for ``lease_seconds``, each with ``attempts`` + 1; the lock holder answers them first.

        Taking a live holder's entry is safe because no holder works on an entry without the
        conversation's lock, which the caller has: the old holder's next change names its old hold and
        changes nothing (``LeaseLost``), so its turn drops the entry without drawing anything. An entry
        whose holder is inside a transaction at that moment is waited for, never skipped (skipping it
        would answer a later message first)."""
        ...

    async def get_entry(self, entry_id: str) -> InboxEntry | None:
        """The entry as stored, whoever holds it; None for an id that names none (or was pruned)."""
        ...

    async def record_reply_ref(self, hold: InboxHold, ref: str) -> bool:
        """Remember the platform's id of the entry's reply as soon as it exists (a stream started, a
        message posted); False when the hold was lost (nothing changed)."""
        ...

    async def complete(self, hold: InboxHold, state: InboxState, result: TurnResult) -> bool:
        """Set an outcome that ``finish_turn`` did not store: ``ANSWERED`` for a turn with nothing to
        store (a duplicate, an ended thread, an oversized message), ``FAILED`` with the note to show.
        Any other state is a ``ValueError``. False when the hold was lost (nothing changed)."""
        ...

    async def mark_delivered(self, hold: InboxHold) -> bool:
        """The outcome reached the platform: the entry is finished (never taken again; pruned after the
        dedupe retention). True again for an entry already delivered under the same hold; False when
        the hold was lost."""
        ...

    async def release(self, owner: str) -> int:
        """Shutdown: let every other process take over ``owner``'s unfinished entries at once (their
        leases end now). Returns how many."""
        ...

    async def pending(self) -> int:
        """Entries not yet delivered, all workspaces (a gauge for operators; no content)."""
        ...


class LeaseLost(RuntimeError):
    """An inbox entry's hold is no longer this process's (another took it over): the transaction that
    presented it changed nothing, and this process must drop the turn without drawing anything."""


class StorageUnavailable(RuntimeError):
    """The database could not be reached (a restart, a dropped connection); retrying may succeed."""


class StartupError(RuntimeError):
    """A connector cannot start (rejected credentials, a missing intent); the message says how to fix it."""
