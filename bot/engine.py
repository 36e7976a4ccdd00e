"""The engine: one user message in, one ``TurnResult`` out. Knows no platform.

Per turn it (1) dedupes and stores the user message, (2) runs at most ``MAX_MODEL_CALLS`` model calls,
answering every ``tool_use`` with a ``tool_result`` decided by the pure policy, and (3) stores the
model's side of the turn together with any state change and audit record in one transaction. A model
failure between (1) and (3) leaves the conversation exactly as it was, apart from the user's message.

**The durable inbox** (``bot.ports.InboxStore``). An adapter calls ``accept`` before it acknowledges an
event; the entry it gets back is held by this process (``owner``) under a lease that a background task
renews every lease/3 while the entry's turn runs (or waits for its conversation's lock, at most
``lock_wait_seconds``). The turn then moves the entry received → answering (``begin_turn``) → answered
(``finish_turn``, with the result, in the same transaction) or failed (the note), and the entry is
finished once its result was delivered. An entry whose holder is gone (crashed, froze, stopped at the
shutdown deadline, or gave up waiting for a lock) is taken over by ``recover`` in any process, and
finished from the state it reached: the whole turn, the model part from the stored history, or the
stored result drawn again (``bot.ports.RecoverySink``). Every change presents the entry's hold, so a
process that lost it (``LeaseLost``) drops the turn without drawing anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import re
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import TracerProvider

from bot import prompts
from bot.admin import is_admin
from bot.admission import Admission, TurnStopped
from bot.attachments import Attachments, FilesRead
from bot.channels import Told, elsewhere_note, is_direct, may_answer, may_answer_in
from bot.context import FIXED_TOKENS, TokenTally, build_request, message_tokens, user_text_block
from bot.failure_streaks import FailureStreaks
from bot.failures import log_failure
from bot.files import FileLimits
from bot.i18n import Strings, strings_for
from bot.model import (
    ContextTooLong,
    ModelClient,
    ModelError,
    ModelReply,
    ReplyStopped,
    transcript_for_verifier,
)
from bot.notices import (
    NOT_AUTHOR,
    NOT_IN_CONVERSATION,
    NOT_PARTICIPANT,
    REHEARSAL_LABEL,
    TURN_FAILED,
    crisis_card,
)
from bot.policy import (
    VERIFIER_ANSWER,
    PolicyDecision,
    PolicyState,
    Proposal,
    Verdict,
    Verification,
    apply_verification,
    decide,
    risk_signal,
    should_show_crisis,
    verify_enabled,
)
from bot.ports import (
    ConversationStore,
    FileFetcher,
    HelpFirst,
    InboxStore,
    LeaseLost,
    MetricsSink,
    NoMetrics,
    RecoverySink,
    ReplyStream,
    Settles,
    ShowsThinking,
    StorageUnavailable,
)
from bot.types import (
    Accepted,
    AdminAlert,
    Author,
    Closure,
    Conversation,
    ConversationStatus,
    CrisisCard,
    Decision,
    EndReason,
    ForkRequest,
    ForkSource,
    HistoryMessage,
    InboxEntry,
    InboxHold,
    InboxState,
    IncomingMessage,
    NewMessage,
    Origin,
    RiskAssessment,
    RiskLevel,
    StateChange,
    ThreadRef,
    TurnResult,
    TurnStatus,
    UsageRecord,
    WorkspaceSettings,
)

log = logging.getLogger(__name__)

# Posts a turn's result on the platform (see Engine.handle_message).
Deliver = Callable[[TurnResult], Awaitable[None]]

MAX_MODEL_CALLS = 3
# The words of a message that is only files (the model reads it after the author's label).
ATTACHED_ONLY = "(sent only the attached files)"
# Longer messages are refused politely rather than sent: the model's window is shared with history.
MAX_INPUT_CHARS = 20_000
VERIFIER_TRANSCRIPT_MESSAGES = 24
# Above this share of the context budget (by estimate), the exact count comes from the API.
COUNT_ABOVE = 0.8
# What set a conversation's hard risk mark (storage names the detector's).
CRISIS_TOOL_SOURCE = "crisis_tool"
VERIFIER_SOURCE = "verifier"
# The longest dedupe key storage keeps (``ConversationStore.claim_event``).
MAX_DEDUPE_KEY = 128
# Recovery (``Engine.recover``): every process looks this often (by default; HAVEN_RECOVERY_SECONDS) for
# inbox entries whose holder is gone, and takes at most this many at a time (the rest wait for the next look).
RECOVERY_SECONDS = 5.0
RECOVERY_BATCH = 20
# How many times an entry may be taken (its acceptance counts as the first) and still be tried: past it
# the person gets the failure note instead of another try. A message whose turn crashed, stalled or was
# left five times (each after a lease ran out) is not going to be answered by a sixth.
MAX_ATTEMPTS = 5
# Retrying ``mark_delivered`` through a database outage: first wait, and the longest between tries.
MARK_FIRST_DELAY = 0.25
MARK_MAX_DELAY = 2.0
# A thread's backlog is answered RECOVERY_BATCH entries at a time, at most this many times per turn.
MAX_CATCH_UP_ROUNDS = 10
_EARLIER_UNANSWERED = "an earlier message of its thread is unanswered"


@dataclass(frozen=True, slots=True)
class EngineOptions:
    max_output_tokens: int = 1024
    context_budget_tokens: int = 150_000
    # Admission (``bot.admission``): turns whose model part runs at once, and how long that part may take.
    max_concurrent_turns: int = 64
    turn_deadline_seconds: float = 180.0
    # The durable inbox: how long an entry stays this process's without a renewal, and how long a turn
    # may wait for its conversation's lock before it stops waiting and leaves its entry to recovery.
    inbox_lease_seconds: float = 60.0
    lock_wait_seconds: float = 30.0
    # How often recovery looks for entries whose holder is gone (HAVEN_RECOVERY_SECONDS).
    recovery_seconds: float = RECOVERY_SECONDS
    # Attached files: how many, how large, how many PDF pages (``bot.files``; HAVEN_FILES_* settings).
    files: FileLimits = field(default_factory=FileLimits)


# Unicode categories Cc (control) and Cs (surrogate) but for newline and tab, as one character class:
# a message is cleaned several times per turn, and a loop over its characters in Python costs about
# 0.25 µs each, 5 ms for a message at the 20,000-character cap.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """Drop NULs and other control characters (keeping newlines and tabs); normalise to NFC."""
    return unicodedata.normalize("NFC", _CONTROL.sub("", text)).strip()


class _StreamBridge:
    """Turns the model's chunks into whole-reply snapshots for an adapter's ``ReplyStream``.

    Text of earlier model calls in the turn is kept; a retried call takes back only its own text.
    """

    def __init__(
        self, stream: ReplyStream, prefix: str = "", pause: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        self._stream = stream
        self._prefix = prefix
        self._pause = pause
        self._done = ""
        self._current = ""
        self._wrote = False

    async def help_first(self, card: CrisisCard) -> bool:
        """Show ``card`` before the reply, if none of the reply was handed to the stream yet."""
        if self._wrote or not isinstance(self._stream, HelpFirst):
            return False
        return await self._stream.crisis_card(card)

    async def thinking(self) -> None:
        """The model is about to be asked: the stream may show that at once (``ShowsThinking``)."""
        if isinstance(self._stream, ShowsThinking):
            await self._stream.thinking()

    async def settle(self) -> None:
        """The model is done: the stream may show the rest now (``Settles``); may raise ReplyStopped."""
        if isinstance(self._stream, Settles):
            await self._stream.settle(self._text())

    def shown_after(self, shown: str, earlier: Sequence[str]) -> str:
        """One model call's part of ``shown``, the reply as the person saw it when they stopped it
        (``ReplyStopped``): without the label and without ``earlier``, the texts of the calls before."""
        if self._prefix and shown.startswith(self._prefix):
            shown = shown[len(self._prefix) :]
        done = "\n\n".join(t.strip() for t in earlier if t.strip())
        if done and shown.startswith(done):
            shown = shown[len(done) :]
        return shown.strip()

    def _joined(self) -> str:
        return "\n\n".join(t for t in (self._done.strip(), self._current.strip()) if t)

    def _text(self) -> str:
        text = self._joined()
        return self._prefix + text if text else ""

    async def chunk(self, text: str) -> None:
        if self._pause is not None:
            await self._pause()  # events being acknowledged go first (``Admission.yield_to_intake``)
        self._current += text
        self._wrote = self._wrote or bool(self._text())
        await self._stream.update(self._text())

    async def restart(self) -> None:
        self._current = ""
        await self._stream.update(self._text())

    def end_round(self) -> None:
        self._done, self._current = self._joined(), ""


@dataclass
class _Turn:
    """Mutable scratch state of one turn; nothing here is stored until the turn completes."""

    conversation: Conversation
    settings: WorkspaceSettings
    locale: str | None
    warnings: int
    at_risk: bool  # the hard mark
    shown_turn: int | None
    soft_cues: tuple[str, ...] = ()  # the soft mark (stored by begin_turn)
    risk_source: str | None = None  # what set the hard mark
    confirm_pending: bool = False
    warned: bool = False
    end_reason: EndReason | None = None
    crisis: CrisisCard | None = None
    crisis_shown: bool = False  # drawn by the stream before the reply
    messages: list[NewMessage] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    usage: list[UsageRecord] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    # One line about attached files that were not read, shown before the reply (``bot.files``).
    file_note: str = ""

    def show_crisis(self) -> bool:
        if self.crisis is None and should_show_crisis(self.conversation.user_turns, self.shown_turn):
            self.crisis = crisis_card(self.settings, self.locale)
            self.shown_turn = self.conversation.user_turns
            return True
        return self.crisis is not None


class _LeftForRecovery(Exception):
    """The turn stops here, unanswered: its inbox entry stays for recovery (shutdown, a lock wait)."""


class _AlreadyRunning(Exception):
    """This process is answering the entry already (its own lease lapsed and its own recovery took it
    back): a hold is only (entry id, owner), so fencing cannot tell the two runs apart; this can."""


@dataclass
class _Held:
    """An inbox entry this process works on. Its lease is renewed while its turn runs, or while it
    waits for its turn no longer than the lock wait; after that it is left to recovery."""

    hold: InboxHold
    since: float  # monotonic time it was accepted or taken
    live: bool  # accepted for a live event (else taken by recovery)
    running: bool = False  # its turn holds the conversation's lock
    lost: bool = False  # a renewal found it taken over by another process
    # Taken by recovery and waiting for its conversation's lock: a live turn of the same thread that
    # gets the lock first answers it before itself (``_catch_up``).
    pending: tuple[InboxEntry, RecoverySink] | None = None


class Engine:
    """The core's one entry point for adapters: turns, commands, forks, feedback and the few questions
    about threads an adapter must ask before it can translate an event. Adapters reach storage only
    through these methods."""

    def __init__(
        self,
        store: ConversationStore,
        model: ModelClient,
        options: EngineOptions | None = None,
        *,
        inbox: InboxStore | None = None,
        owner: str | None = None,
        metrics: MetricsSink | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self._repo = store
        # Counts for operators (bot.ports.MetricsSink); the composition root may set it after building.
        self.metrics: MetricsSink = metrics or NoMetrics()
        self._model = model
        self._options = options or EngineOptions()
        self._tally = TokenTally()
        self._tracer = trace.get_tracer("haven", tracer_provider=tracer_provider)
        # Failed model turns in a row per workspace, for the admins' alert (bot.failure_streaks).
        self._model_streaks = FailureStreaks()
        self.admission = Admission(self._options.max_concurrent_turns, self._options.turn_deadline_seconds)
        self._inbox = inbox
        # Who holds this process's inbox entries (the composition root passes a process-unique id).
        self.owner = owner or f"engine:{uuid.uuid4().hex[:12]}"
        self._held: dict[str, _Held] = {}
        # Entries whose turn runs in this process right now (``_run_entry``): never run twice at once.
        self._running: set[str] = set()
        self._sinks: dict[str, RecoverySink] = {}
        self._keeper: asyncio.Task[None] | None = None
        self._recovery: asyncio.Task[None] | None = None
        self._closed = False
        # Who was told that Haven does not answer in a channel (``gate``): once per person and channel.
        self._told = Told()
        # Attached files: each platform's fetcher, the limits, and the short-lived byte cache.
        self._files = Attachments(self._options.files)

    @property
    def rehearsal(self) -> bool:
        return self._model.rehearsal

    def begin_shutdown(self, seconds: float) -> None:
        """Haven is stopping: turns still answering ``seconds`` from now stop (``bot.admission``). A turn
        with an inbox entry is then left to recovery (``aclose`` releases it to every process); one
        without gets the restart note. Recovery takes nothing more. Connectors call it when they stop
        accepting work; the first call counts."""
        self.admission.begin_shutdown(seconds)
        if self._recovery is not None:
            self._recovery.cancel()

    async def aclose(self) -> None:
        """After the connectors stopped: stop renewing and recovering, and release this process's
        unfinished inbox entries so that another process (or this one, restarted) takes them at once."""
        if self._closed:
            return
        self._closed = True
        tasks = [t for t in (self._keeper, self._recovery) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._inbox is None:
            return
        try:
            released = await self._inbox.release(self.owner)
        except Exception as exc:
            # Their leases run out by themselves within HAVEN_INBOX_LEASE_SECONDS.
            log_failure(log, "inbox release failed", exc, level=logging.WARNING)
            return
        if released:
            log.info("inbox entries left to recovery", extra={"entries": released})

    # -- the durable inbox ----------------------------------------------------------------------------

    @property
    def lock_wait_seconds(self) -> float:
        """How long a turn may wait for its turn (adapters' own per-thread queues included)."""
        return self._options.lock_wait_seconds

    def attach(self, platform: str, sink: RecoverySink) -> None:
        """An adapter that can answer recovered entries of ``platform``: recovery (``recover``) runs at
        once and every ``EngineOptions.recovery_seconds`` from now until shutdown. Connectors call it
        on connect."""
        self._sinks[platform] = sink
        self._start_keeper()
        idle = self._recovery is None or self._recovery.done()
        if self._inbox is not None and idle and not self.admission.stopping and not self._closed:
            self._recovery = asyncio.create_task(self._recover_forever(), name="inbox-recovery")

    def attach_files(self, platform: str, fetcher: FileFetcher) -> None:
        """How files attached on ``platform`` are read (``bot.ports.FileFetcher``). Without one, an
        attached file gets a note that files can't be read here."""
        self._files.attach(platform, fetcher)

    async def accept(self, msg: IncomingMessage) -> tuple[Accepted, InboxEntry | None]:
        """Record ``msg`` durably before the adapter acknowledges its event (``InboxStore.accept``).

        ``NEW`` with the entry to hand to ``handle_message``; ``DUPLICATE``: acknowledge and do nothing;
        ``NOT_OURS``: nothing recorded (a thread that is not Haven's, or no words at all). Raises
        ``StorageUnavailable`` when the database cannot be reached: then the adapter must not
        acknowledge, so that the platform delivers the event again.
        """
        inbox = self._need_inbox()
        if not clean_text(msg.text) and not msg.attachments:
            return Accepted.NOT_OURS, None
        # The channel rule is decided here and applied in the store's accepting transaction, to settings
        # it reads there: one round trip per acknowledgement instead of two. DMs need no settings.
        rule = None if is_direct(msg) else functools.partial(may_answer, msg=msg)
        lease = self._options.inbox_lease_seconds
        accepted, entry = await inbox.accept(msg, self.owner, lease, rule)
        if entry is not None:
            self._held[entry.id] = _Held(entry.hold, time.monotonic(), live=True)
            self._start_keeper()
        return accepted, entry

    async def gate(self, msg: IncomingMessage) -> TurnResult | None:
        """The channel gate: may Haven answer ``msg`` where it was written (``bot.channels``)?

        None: yes. Otherwise the result to draw, with nothing stored: the private note naming where Haven
        answers (``IGNORED`` with the note as its one reply, which presentation shows privately) the first
        time this person writes to Haven in this channel, and ``IGNORED`` with nothing after that. Adapters
        ask before any platform work a message would start (a thread, a post); ``accept`` and
        ``handle_message`` apply the same rule themselves, so nothing is ever stored for such a message.
        """
        if await self._may_answer(msg):
            return None
        thread = msg.thread
        log.info(
            "message outside the workspace's channels",
            extra={"platform": thread.platform, "workspace": thread.workspace},
        )
        if not msg.starts_conversation and await self._repo.find_conversation(thread) is None:
            return TurnResult(TurnStatus.IGNORED)  # a thread that is not Haven's: nobody spoke to Haven
        if not self._told.first((thread.platform, thread.workspace, thread.channel, msg.author.id)):
            return TurnResult(TurnStatus.IGNORED)
        settings = await self._repo.get_settings(thread.platform, thread.workspace)
        return TurnResult(TurnStatus.IGNORED, replies=(elsewhere_note(settings, strings_for(msg.locale)),))

    async def not_here(
        self, platform: str, workspace: str, channel: str, locale: str | None = None
    ) -> str | None:
        """For a command that would start a conversation in ``channel`` (``/haven new``), before any
        platform work: the note naming where Haven answers when it does not answer there (in the
        language of ``locale``, the person's), None when it does. Unlike ``gate`` it answers every time:
        a command always gets a (private) reply. Callers skip it for a DM, which is always answered."""
        settings = await self._repo.get_settings(platform, workspace)
        if may_answer_in(settings, channel, direct=False):
            return None
        return elsewhere_note(settings, strings_for(locale))

    async def suggested_prompts(self, platform: str, workspace: str) -> tuple[str, ...] | None:
        """The workspace's own suggested prompts (``WorkspaceSettings.suggested_prompts``): None when its
        admins never set a list, so the caller takes the process-wide one (``bot.starters.prompts_for``).
        Raises ``StorageUnavailable`` like every read."""
        return (await self._repo.get_settings(platform, workspace)).suggested_prompts

    async def _may_answer(self, msg: IncomingMessage) -> bool:
        if is_direct(msg):
            return True  # no settings to read: DMs are always answered
        return may_answer(await self._repo.get_settings(msg.thread.platform, msg.thread.workspace), msg)

    async def record_reply_ref(self, hold: InboxHold, ref: str) -> None:
        """The entry's reply now exists on the platform as ``ref`` (a stream, a first post): remembered,
        so that a recovery updates that message instead of posting a second one. Best effort."""
        if self._inbox is None or not ref:
            return
        try:
            await self._inbox.record_reply_ref(hold, ref)
        except Exception as exc:
            log_failure(log, "inbox reply ref not recorded", exc, level=logging.WARNING, entry=hold.entry_id)

    async def pending(self) -> int:
        """Inbox entries not yet delivered (for operators)."""
        return await self._need_inbox().pending()

    def _need_inbox(self) -> InboxStore:
        if self._inbox is None:
            raise RuntimeError("this engine has no inbox store")
        return self._inbox

    def _start_keeper(self) -> None:
        if self._inbox is not None and not self._closed and (self._keeper is None or self._keeper.done()):
            self._keeper = asyncio.create_task(self._keep_leases(), name="inbox-leases")

    def _renewable(self, held: _Held, now: float) -> bool:
        return not held.lost and (held.running or now - held.since < self._options.lock_wait_seconds)

    async def _keep_leases(self) -> None:
        every = max(self._options.inbox_lease_seconds / 3, 0.01)
        while True:
            await asyncio.sleep(every)
            await self.renew_leases()

    async def renew_leases(self) -> None:
        """Renew the leases of this process's entries that are running or still waiting their turn."""
        inbox, now = self._need_inbox(), time.monotonic()
        mine = {i: h for i, h in self._held.items() if self._renewable(h, now)}
        if not mine:
            return
        try:
            still = await inbox.renew(self.owner, list(mine), self._options.inbox_lease_seconds)
        except Exception as exc:
            log_failure(log, "inbox lease renewal failed", exc, level=logging.WARNING, entries=len(mine))
            return
        for entry_id, held in mine.items():
            if entry_id not in still:
                held.lost = True
                log.info("inbox entry taken over by another process", extra={"entry": entry_id})

    async def _let_go(self, hold: InboxHold) -> None:
        """End an entry's lease now (its turn failed here), so recovery takes it soon. Best effort."""
        if self._inbox is None:
            return
        with contextlib.suppress(Exception):
            await self._inbox.renew(hold.owner, [hold.entry_id], 0)

    async def _settle(self, hold: InboxHold | None, result: TurnResult) -> TurnResult:
        """Store an outcome ``finish_turn`` did not: answered (nothing to store), or failed with the note."""
        if hold is not None:
            state = InboxState.FAILED if result.status is TurnStatus.ERROR else InboxState.ANSWERED
            if not await self._need_inbox().complete(hold, state, result):
                raise LeaseLost(f"inbox entry {hold.entry_id} was taken over")
        return result

    async def _locked(self, key: str, since: float) -> contextlib.AsyncExitStack:
        """The conversation's lock, waited for until ``lock_wait_seconds`` after ``since``; else
        ``_LeftForRecovery``. The caller enters the returned stack's context to release it."""
        stack = contextlib.AsyncExitStack()
        remaining = self._options.lock_wait_seconds - (time.monotonic() - since)
        if remaining <= 0:
            raise _LeftForRecovery("waited too long for its turn")
        try:
            async with asyncio.timeout(remaining):
                await stack.enter_async_context(self._repo.conversation_lock(key))
        except TimeoutError:
            await stack.aclose()
            raise _LeftForRecovery("waited too long for the conversation's lock") from None
        return stack

    async def _handle_entry(
        self, msg: IncomingMessage, entry: InboxEntry, stream: ReplyStream | None, deliver: Deliver | None
    ) -> TurnResult:
        held = self._held.get(entry.id)
        if held is None:
            # Not from this process's accept (or run before): ask the inbox where it stands.
            fresh = await self._need_inbox().get_entry(entry.id)
            if fresh is None or fresh.owner != self.owner or fresh.delivered:
                log.info("inbox entry no longer ours; turn dropped", extra={"entry": entry.id})
                return TurnResult(TurnStatus.IGNORED)
            entry = fresh
            held = self._held[entry.id] = _Held(entry.hold, time.monotonic(), live=True)
            self._start_keeper()
        elif not held.live or held.hold != entry.hold:
            log.info("inbox entry taken by recovery; live turn dropped", extra={"entry": entry.id})
            return TurnResult(TurnStatus.IGNORED)
        started = time.perf_counter()
        try:
            async with await self._locked(msg.thread.key, held.since):
                if self._held.get(entry.id) is not held or held.lost:
                    # Answered meanwhile by a turn of its thread that got the lock first (``_catch_up``).
                    log.info(
                        "inbox entry answered by an earlier turn; live turn dropped",
                        extra={"entry": entry.id},
                    )
                    return TurnResult(TurnStatus.IGNORED)
                held.running = True
                await self._catch_up(entry)
                result = await self._run_entry(msg, entry, stream, deliver)
        except _LeftForRecovery as left:
            log.info("turn left to recovery", extra={"entry": entry.id, "reason": str(left)})
            if left.args and left.args[0] == _EARLIER_UNANSWERED:
                await self._let_go(held.hold)
            return TurnResult(TurnStatus.IGNORED)
        except _AlreadyRunning:
            return TurnResult(TurnStatus.IGNORED)
        except LeaseLost:
            log.info("inbox entry taken over; turn dropped", extra={"entry": entry.id})
            return TurnResult(TurnStatus.IGNORED)
        except BaseException:
            # Recovery finishes it from the state it reached, soon rather than after the lease.
            self._held.pop(entry.id, None)
            await asyncio.shield(self._let_go(held.hold))
            raise
        finally:
            if self._held.get(entry.id) is held:
                del self._held[entry.id]
        if result.conversation_id is not None:
            log.info(
                "turn handled",
                extra={
                    "platform": msg.thread.platform,
                    "workspace": msg.thread.workspace,
                    "conversation": result.conversation_id,
                    "status": result.status.value,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            self.metrics.turn(msg.thread.platform, result.status.value, time.perf_counter() - started)
        return result

    async def _run_entry(
        self, msg: IncomingMessage, entry: InboxEntry, stream: ReplyStream | None, deliver: Deliver | None
    ) -> TurnResult:
        """Finish ``entry`` from the state it reached (under the conversation's lock), deliver, and mark
        it delivered. ``_AlreadyRunning`` when this process is answering it already."""
        if entry.id in self._running:
            log.warning("inbox entry already being answered here; not run twice", extra={"entry": entry.id})
            raise _AlreadyRunning(entry.id)
        self._running.add(entry.id)
        try:
            return await self._run_entry_once(msg, entry, stream, deliver)
        finally:
            self._running.discard(entry.id)

    async def _run_entry_once(
        self, msg: IncomingMessage, entry: InboxEntry, stream: ReplyStream | None, deliver: Deliver | None
    ) -> TurnResult:
        hold, state = entry.hold, entry.state
        if entry.delivered:
            return TurnResult(TurnStatus.DUPLICATE)
        if state in (InboxState.RECEIVED, InboxState.ANSWERING) and entry.attempts > MAX_ATTEMPTS:
            log.warning(
                "inbox entry given up after its retry budget",
                extra={"entry": entry.id, "attempts": entry.attempts, "platform": msg.thread.platform},
            )
            result = await self._settle(hold, TurnResult(TurnStatus.ERROR, error=TURN_FAILED))
        elif state is InboxState.RECEIVED:
            text = clean_text(msg.text)
            if text or msg.attachments:
                result, _ = await self._locked_turn(msg, text, stream, hold)
            else:
                result = await self._settle(hold, TurnResult(TurnStatus.IGNORED))
        elif state is InboxState.ANSWERING:
            result = await self._resumed_turn(msg, hold, stream)
        else:
            result = entry.result or TurnResult(TurnStatus.ERROR, error=TURN_FAILED)
        if deliver is not None and result.status not in (TurnStatus.IGNORED, TurnStatus.DUPLICATE):
            await deliver(result)
        if not await self._mark_delivered(hold):
            log.warning("inbox entry taken over while its result was drawn", extra={"entry": entry.id})
        return result

    async def _mark_delivered(self, hold: InboxHold) -> bool:
        """Record that the outcome reached the platform. It is on the platform already, so a database
        away at this moment must not leave the entry undelivered: recovery would draw it a second time.
        Retried (the lease is renewed meanwhile) for as long as a lease lasts, which outlives a
        restart of the database; past that the entry may be drawn again by whoever takes it."""
        inbox = self._need_inbox()
        delay, waited = MARK_FIRST_DELAY, 0.0
        while True:
            try:
                return await inbox.mark_delivered(hold)
            except StorageUnavailable:
                if waited >= self._options.inbox_lease_seconds:
                    raise
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, MARK_MAX_DELAY)

    async def _resumed_turn(
        self, msg: IncomingMessage, hold: InboxHold, stream: ReplyStream | None
    ) -> TurnResult:
        """The model part of a turn whose user message is stored already (its entry was ANSWERING)."""
        began = await self._repo.resume_turn(msg.thread, hold)
        conv = began.conversation
        if conv is None:
            return await self._settle(hold, TurnResult(TurnStatus.IGNORED))
        if conv.ended or not began.stored:
            first = await self._repo.mark_reminded(conv, msg.author.id)
            status = TurnStatus.ENDED_REMINDER if first else TurnStatus.ENDED_SILENT
            return await self._settle(hold, TurnResult(status, conversation_id=conv.id))
        if began.settings is None:
            raise RuntimeError("the store's resume_turn returned no settings")
        risk = await asyncio.to_thread(assess_risk, clean_text(msg.text))
        bridge = (
            _StreamBridge(stream, REHEARSAL_LABEL if self.rehearsal else "", self.admission.yield_to_intake)
            if stream
            else None
        )
        return await self._model_turn(conv, began.settings, began.history, msg.locale, risk, bridge, hold)

    async def _catch_up(self, entry: InboxEntry) -> None:
        """Thread order across processes. Under the thread's lock, before ``entry`` runs: answer every
        entry of its thread accepted before it and not yet delivered, oldest first, whoever holds it
        (``InboxStore.take_earlier``: no holder works without this lock, so none is at work on them).
        Another process may have accepted the thread's previous message and not got the lock yet; its
        turn then finds its hold gone and draws nothing. When one of them cannot be answered now,
        neither is ``entry`` (``_LeftForRecovery``): recovery answers them later, in order."""
        thread = entry.message.thread
        sink = self._sinks.get(thread.platform)
        if sink is None or self._inbox is None:
            return
        if self.admission.stopped:
            # Past the shutdown's deadline every turn would be stopped at once, and each take-over
            # counts an attempt: a thread's queued turns would spend its earlier entries' retry budget
            # in milliseconds and turn them into failure notes. The next process answers them in order.
            raise _LeftForRecovery(_EARLIER_UNANSWERED)
        for _ in range(MAX_CATCH_UP_ROUNDS):
            older = await self._inbox.take_earlier(
                entry, self.owner, self._options.inbox_lease_seconds, RECOVERY_BATCH
            )
            for other in older:
                if not await self._recover_entry(other, sink, locked=True):
                    raise _LeftForRecovery(_EARLIER_UNANSWERED)
            if len(older) < RECOVERY_BATCH:
                return
        raise _LeftForRecovery(_EARLIER_UNANSWERED)

    async def recover(self, sinks: Mapping[str, RecoverySink] | None = None) -> int:
        """Take over inbox entries whose holder is gone and finish each, under its conversation's lock,
        from the state it reached; returns how many were taken. ``sinks`` (by platform; default: the
        attached ones) draw them. Entries of one thread run in order; threads run side by side."""
        sinks = self._sinks if sinks is None else sinks
        if self._inbox is None or not sinks or self.admission.stopping:
            return 0
        taken = await self._inbox.take_expired(
            self.owner, self._options.inbox_lease_seconds, RECOVERY_BATCH, platforms=tuple(sinks)
        )
        now = time.monotonic()
        threads: dict[str, list[tuple[InboxEntry, RecoverySink]]] = {}
        for entry in sorted(taken, key=lambda e: e.received_at):
            held = self._held.get(entry.id)
            if entry.id in self._running:
                # This process's own turn is at work on it (its lease lapsed: a stalled loop, a slow
                # renewal). It is this process's again now: keep renewing it, and never run it twice.
                if held is not None:
                    held.lost = False
                continue
            if held is not None and self._renewable(held, now):
                continue  # this process's own turn is still waiting its turn
            sink = sinks.get(entry.message.thread.platform)
            if sink is None:
                continue  # no adapter here for its platform: its lease runs out again
            # Registered before any await: a live turn of the thread that gets the lock first sees it.
            self._held[entry.id] = _Held(entry.hold, now, live=False, pending=(entry, sink))
            threads.setdefault(entry.message.thread.key, []).append((entry, sink))
        await asyncio.gather(*(self._recover_thread(group) for group in threads.values()))
        return sum(len(group) for group in threads.values())

    async def _recover_forever(self) -> None:
        while not self.admission.stopping and not self._closed:
            try:
                await self.recover()
            except Exception as exc:
                log_failure(log, "inbox recovery failed", exc, level=logging.WARNING)
            await asyncio.sleep(self._options.recovery_seconds)

    async def _recover_thread(self, group: Sequence[tuple[InboxEntry, RecoverySink]]) -> None:
        for entry, sink in group:
            thread = entry.message.thread
            attributes = {"haven.platform": thread.platform, "haven.workspace": thread.workspace}
            try:
                with self._tracer.start_as_current_span("haven.recovered_turn", attributes=attributes):
                    await self._recover_entry(entry, sink)
            except Exception as exc:
                log_failure(log, "inbox entry not recovered", exc, level=logging.WARNING, entry=entry.id)

    async def _recover_entry(self, entry: InboxEntry, sink: RecoverySink, *, locked: bool = False) -> bool:
        """Answer a taken-over entry under its conversation's lock (``locked``: the caller holds it);
        True when its outcome was delivered here."""
        held = self._held.get(entry.id)
        if locked or held is None or held.pending is None:
            held = self._held[entry.id] = _Held(entry.hold, time.monotonic(), live=False)
        self._start_keeper()
        log.info(
            "inbox entry recovered",
            extra={
                "entry": entry.id,
                "state": entry.state.value,
                "attempts": entry.attempts,
                "platform": entry.message.thread.platform,
            },
        )
        stream: ReplyStream | None = None
        if entry.state in (InboxState.RECEIVED, InboxState.ANSWERING) and entry.attempts <= MAX_ATTEMPTS:

            async def on_ref(ref: str) -> None:
                await self.record_reply_ref(entry.hold, ref)

            stream = sink.reply_stream(entry, on_ref)

        async def deliver(result: TurnResult) -> None:
            await sink.draw(entry, result, stream)

        msg = await sink.message(entry)
        try:
            if locked:
                held.running = True
                await self._run_entry(msg, entry, stream, deliver)
            else:
                async with await self._locked(entry.message.thread.key, held.since):
                    if self._held.get(entry.id) is not held or held.lost:
                        return False  # a turn of its thread answered it first (``_catch_up``)
                    held.running = True
                    await self._catch_up(entry)
                    await self._run_entry(msg, entry, stream, deliver)
            return True
        except _LeftForRecovery as left:
            log.info("recovered turn left again", extra={"entry": entry.id, "reason": str(left)})
        except _AlreadyRunning:
            pass
        except LeaseLost:
            log.info("inbox entry taken over; recovered turn dropped", extra={"entry": entry.id})
        except BaseException:
            self._held.pop(entry.id, None)
            await asyncio.shield(self._let_go(held.hold))
            raise
        finally:
            if self._held.get(entry.id) is held:
                del self._held[entry.id]
        return False

    # -- threads --------------------------------------------------------------------------------------

    async def owns_thread(self, thread: ThreadRef) -> bool:
        """Whether a Haven conversation (ended or not) lives in ``thread``; most platform threads are
        not Haven's, and an adapter may drop their messages before asking who wrote them."""
        return await self._repo.find_conversation(thread) is not None

    async def thread_status(self, thread: ThreadRef) -> ConversationStatus | None:
        """The status of the conversation in ``thread``; None when the thread is not Haven's."""
        conv = await self._repo.find_conversation(thread)
        return conv.status if conv is not None else None

    async def latest_numbered(self, thread_for: Callable[[int], ThreadRef], hint: int = 0) -> int:
        """The highest ``n`` such that ``thread_for(1)`` … ``thread_for(n)`` are all Haven conversations;
        0 when ``thread_for(1)`` is not one.

        For adapters that number successive conversations in one place (Discord DMs): the core never
        parses the ids, the adapter's ``thread_for`` makes them. Numbers are contiguous, so the answer
        takes a few look-ups (galloping, then bisecting); a correct ``hint`` (the number last seen)
        makes it two. Survives restarts and several processes: nothing is kept here.
        """

        async def exists(n: int) -> bool:
            return await self.owns_thread(thread_for(n))

        if hint and await exists(hint) and not await exists(hint + 1):
            return hint
        if not await exists(1):
            return 0
        low, high = 1, 2
        while await exists(high):
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            if await exists(middle):
                low = middle
            else:
                high = middle
        return low

    async def history(self, thread: ThreadRef) -> list[HistoryMessage]:
        """The messages of the conversation in ``thread``, in order; empty when there is none."""
        conv = await self._repo.find_conversation(thread)
        if conv is None:
            return []
        return await self._repo.history(conv.id, thread.workspace)

    # -- messages -------------------------------------------------------------------------------------

    async def handle_message(
        self,
        msg: IncomingMessage,
        stream: ReplyStream | None = None,
        deliver: Deliver | None = None,
        entry: InboxEntry | None = None,
    ) -> TurnResult:
        """Handle one user message; ``deliver``, if given, posts the result while the turn still holds
        the conversation's lock, so replies of one thread reach the platform in turn order even when
        several processes take turns.

        With ``entry`` (from ``accept``), the turn keeps the inbox's promise: its outcome is stored with
        the turn, and the entry is finished once ``deliver`` returned. A turn this process can no longer
        finish (it lost the entry to another process, waited ``lock_wait_seconds`` for its lock, or
        was stopped at the shutdown deadline) comes back ``IGNORED`` having drawn nothing: recovery
        answers it. Another failure is raised as always, and recovery answers the message soon after."""
        # One span per turn (bot.tracing): ids and the outcome, never words. A no-op without a provider.
        attributes = {
            "haven.platform": msg.thread.platform,
            "haven.workspace": msg.thread.workspace,
            "haven.origin": msg.origin.value,
        }
        with self._tracer.start_as_current_span("haven.turn", attributes=attributes) as span:
            if entry is not None:
                result = await self._handle_entry(msg, entry, stream, deliver)
            else:
                result = await self._handle_message(msg, stream, deliver)
            span.set_attribute("haven.status", result.status.value)
            return result

    async def _handle_message(
        self, msg: IncomingMessage, stream: ReplyStream | None, deliver: Deliver | None
    ) -> TurnResult:
        started = time.perf_counter()
        text = clean_text(msg.text)
        if not text and not msg.attachments:
            return TurnResult(TurnStatus.IGNORED)
        # The lock comes before any other await, so one thread's messages are handled in arrival order.
        async with self._repo.conversation_lock(msg.thread.key):
            gated = await self.gate(msg)
            if gated is not None:
                if deliver is not None:
                    await deliver(gated)
                return gated
            result, risk = await self._locked_turn(msg, text, stream)
            if deliver is not None and result.status not in (TurnStatus.IGNORED, TurnStatus.DUPLICATE):
                await deliver(result)
        if result.conversation_id is not None and result.status is not TurnStatus.DUPLICATE:
            log.info(
                "turn handled",
                extra={
                    "platform": msg.thread.platform,
                    "workspace": msg.thread.workspace,
                    "conversation": result.conversation_id,
                    "status": result.status.value,
                    "risk": risk.name,
                    "ms": round((time.perf_counter() - started) * 1000, 1),
                },
            )
            self.metrics.turn(msg.thread.platform, result.status.value, time.perf_counter() - started)
        return result

    async def _locked_turn(
        self, msg: IncomingMessage, text: str, stream: ReplyStream | None, hold: InboxHold | None = None
    ) -> tuple[TurnResult, RiskLevel]:
        if len(text) > MAX_INPUT_CHARS:
            return await self._settle(hold, await self._refuse_oversized(msg, len(text))), RiskLevel.NONE
        files = FilesRead()
        if msg.attachments:
            known = await self._repo.find_conversation(msg.thread)
            if known is None and not msg.starts_conversation:
                # Not Haven's thread: nothing is fetched (begin_turn would ignore the message anyway).
                return await self._settle(hold, TurnResult(TurnStatus.IGNORED)), RiskLevel.NONE
            if known is None or not known.ended:  # an ended thread gets no model call: nothing to read
                files = await self._files.read(msg.thread, msg.attachments)
        # Off the event loop: a long message (or the first one, which compiles rule tables) may take
        # milliseconds, and every other conversation of the process would wait for it. Text files are
        # read by the detector too: what someone attaches is something they said.
        risk = await asyncio.to_thread(assess_risk, "\n\n".join((text, *files.texts)))
        began = await self._repo.begin_turn(
            msg.thread,
            msg.effective_dedupe_key,
            NewMessage(
                role="user",
                kind="text",
                # Files before the words, as the API advises; the words stay the message's last block.
                content=(*files.stored, user_text_block(msg.author.name, text or ATTACHED_ONLY, msg.locale)),
                author_id=msg.author.id,
                author_name=msg.author.name,
                platform_message_id=msg.message_id,
                text=text,
            ),
            create=msg.starts_conversation,
            started_by=msg.author.id,
            at_risk=risk.level >= RiskLevel.LIKELY,
            soft_cues=_soft_cues(risk),
            hold=hold,
        )
        if began.duplicate:
            log.info("duplicate delivery dropped", extra={"platform": msg.thread.platform})
            return await self._settle(hold, TurnResult(TurnStatus.DUPLICATE)), risk.level
        conv = began.conversation
        if conv is None:
            return await self._settle(hold, TurnResult(TurnStatus.IGNORED)), risk.level
        if conv.ended:
            first = await self._repo.mark_reminded(conv, msg.author.id)
            status = TurnStatus.ENDED_REMINDER if first else TurnStatus.ENDED_SILENT
            return await self._settle(hold, TurnResult(status, conversation_id=conv.id)), risk.level
        # Read by begin_turn in the transaction that stored the message (the port's contract); under the
        # lock they stay current for the whole turn.
        settings, history = began.settings, began.history
        if settings is None:
            raise RuntimeError("the store's begin_turn stored a message but returned no settings")
        # The person's note, in their language; the model's copy is in the stored message (English).
        note = files.note_in(strings_for(msg.locale))
        label = (REHEARSAL_LABEL if self.rehearsal else "") + (f"{note}\n\n" if note else "")
        bridge = _StreamBridge(stream, label, self.admission.yield_to_intake) if stream else None
        result = await self._model_turn(conv, settings, history, msg.locale, risk, bridge, hold, note)
        return result, risk.level

    async def _refuse_oversized(self, msg: IncomingMessage, size: int) -> TurnResult:
        if not msg.starts_conversation and await self._repo.find_conversation(msg.thread) is None:
            return TurnResult(TurnStatus.IGNORED)
        if not await self._repo.claim_event(
            msg.thread.platform, msg.thread.workspace, msg.effective_dedupe_key
        ):
            return TurnResult(TurnStatus.DUPLICATE)
        return TurnResult(
            TurnStatus.REPLIED,
            replies=(
                strings_for(msg.locale)("reply.too_long", size=f"{size:,}", limit=f"{MAX_INPUT_CHARS:,}"),
            ),
        )

    async def _model_turn(
        self,
        conv: Conversation,
        settings: WorkspaceSettings,
        history: Sequence[HistoryMessage],
        locale: str | None,
        risk: RiskAssessment,
        sink: _StreamBridge | None,
        hold: InboxHold | None = None,
        file_note: str = "",
    ) -> TurnResult:
        turn = _Turn(
            conversation=conv,
            settings=settings,
            locale=locale,
            warnings=conv.warnings,
            at_risk=conv.at_risk,
            shown_turn=conv.crisis_shown_turn,
            soft_cues=conv.soft_cues,
            risk_source=conv.risk_source,
            file_note=file_note,
        )
        if risk.level >= RiskLevel.LIKELY:
            # Do not wait for the model: show help now.
            turn.show_crisis()
        # The model part runs in an admission slot and under the turn's deadline (bot.admission); storing
        # the turn comes after it, so a stopped turn never leaves anything half-stored.
        failure: str | None = None
        try:
            async with self.admission.model_part():
                failure = await self._model_calls(turn, history, sink)
        except TurnStopped as stopped:
            log.warning(
                "turn stopped",
                extra={"conversation": conv.id, "reason": "shutdown" if stopped.restarting else "deadline"},
            )
            if stopped.restarting and hold is not None:
                # Not the restart note: the inbox keeps the message, and recovery answers it.
                await self._repo.record_usage(conv, turn.usage)
                raise _LeftForRecovery("stopped at the shutdown deadline") from None
            failure = stopped.note
        streak_key = f"{conv.thread.platform}:{conv.thread.workspace}"
        if failure is not None:
            # Calls that succeeded before the failure were billed; nothing else of the turn is kept.
            await self._repo.record_usage(conv, turn.usage)
            result = TurnResult(
                TurnStatus.ERROR,
                conversation_id=conv.id,
                error=failure,
                crisis=turn.crisis,
                crisis_shown=turn.crisis_shown,
                alert=self._model_alert(streak_key, settings, conv),
            )
            return await self._settle(hold, result)
        self._model_streaks.succeeded(streak_key)
        return await self._finish(turn, hold)

    def _model_alert(self, key: str, settings: WorkspaceSettings, conv: Conversation) -> AdminAlert | None:
        """An alert for the admins when this failed turn makes a streak (``bot.failure_streaks``)."""
        if not self._model_streaks.failed(key):
            return None
        failures = self._model_streaks.failures(key)
        where = {"platform": conv.thread.platform, "workspace": conv.thread.workspace}
        log.warning("model failing repeatedly", extra={**where, "failures": failures})
        if not settings.alert_channel:
            return None
        return AdminAlert(
            settings.alert_channel, "model", conv.id, conv.thread, "model_unavailable", failures=failures
        )

    async def _model_calls(
        self, turn: _Turn, history: Sequence[HistoryMessage], sink: _StreamBridge | None
    ) -> str | None:
        """The model part of a turn: up to ``MAX_MODEL_CALLS`` calls with their tool rounds, into
        ``turn``. Returns the failure note when the model failed, None when the turn is ready to store."""
        conv = turn.conversation
        budget = self._options.context_budget_tokens
        # Stored file references become the blocks the API reads (the same bytes, the same block).
        history = await self._files.resolve(conv.thread, history)
        for call in range(MAX_MODEL_CALLS):
            if call:
                await self.admission.yield_to_intake()  # the first call waited when its slot came
            if sink is not None and turn.crisis is not None and not turn.crisis_shown:
                # Help first: before the reply's first words whenever the risk is known that early.
                turn.crisis_shown = await sink.help_first(turn.crisis)
            if sink is not None and call == 0:
                await sink.thinking()
            try:
                reply = await self._respond(
                    conv.id, history, turn.messages, budget, sink, turn.settings.instructions
                )
            except ModelError:
                return prompts.MODEL_ERROR_REPLY
            except ReplyStopped as stopped:
                # The person pressed Stop: the model call ended there, and the turn keeps what they saw.
                part = sink.shown_after(stopped.shown, turn.texts) if sink is not None else ""
                if part:
                    content: tuple[dict[str, object], ...] = ({"type": "text", "text": part},)
                    turn.messages.append(NewMessage(role="assistant", kind="text", content=content))
                    turn.texts.append(part)
                log.info("reply stopped by the person", extra={"conversation": conv.id})
                break
            turn.usage.append(_usage(reply))
            if sink is not None:
                sink.end_round()
            reply = _sanitize(reply, strings_for(turn.locale))
            turn.messages.append(NewMessage(role="assistant", kind=_kind(reply), content=reply.content))
            if reply.text:
                turn.texts.append(reply.text)
            if not reply.tool_uses:
                break
            results = [await self._run_tool(turn, history, tool) for tool in _crisis_first(reply.tool_uses)]
            last_call = call == MAX_MODEL_CALLS - 1
            if last_call and turn.end_reason is None:
                results = [_with_note(r) for r in results]
            turn.messages.append(NewMessage(role="user", kind="tool_result", content=tuple(results)))
            if turn.end_reason is not None:
                break
        if sink is not None:
            try:
                await sink.settle()
            except ReplyStopped as stopped:
                # Stopped after the platform last heard from the stream (its calls are batched): the
                # model had finished, and the turn keeps what the person saw of its last words.
                _keep_seen(turn, sink.shown_after(stopped.shown, turn.texts[:-1]))
                log.info("reply stopped by the person", extra={"conversation": conv.id})
        return None

    async def _respond(
        self,
        conversation_id: str,
        history: Sequence[HistoryMessage],
        pending: Sequence[NewMessage],
        budget: int,
        sink: _StreamBridge | None,
        instructions: str | None = None,
    ) -> ModelReply:
        extra = [HistoryMessage(seq=-1, role=m.role, kind=m.kind, content=m.content) for m in pending]
        full = [*history, *extra]
        known = self._tally.total(conversation_id, history) + sum(message_tokens(m) for m in extra)
        if FIXED_TOKENS + known > COUNT_ABOVE * budget:
            # Near the budget the estimate decides whether old turns are dropped: ask the API instead.
            whole = build_request(
                full,
                max_tokens=self._options.max_output_tokens,
                budget_tokens=budget,
                known_tokens=0,
                instructions=instructions,
            )
            exact = await self._model.count_tokens(whole)
            if exact is not None:
                known = exact - FIXED_TOKENS
        for attempt in range(3):
            request = build_request(
                full,
                max_tokens=self._options.max_output_tokens,
                budget_tokens=budget,
                known_tokens=known if attempt == 0 else None,
                instructions=instructions,
            )
            try:
                return await self._model.respond(request, sink)
            except ContextTooLong:
                budget //= 2
                log.warning("context too long; trimming harder", extra={"budget": budget})
        raise ModelError("context too long after trimming")

    async def _run_tool(
        self, turn: _Turn, history: Sequence[HistoryMessage], tool: dict[str, Any]
    ) -> dict[str, Any]:
        name, data = tool.get("name"), tool.get("input") or {}
        if name == prompts.CRISIS_TOOL:
            turn.at_risk = True
            turn.risk_source = turn.risk_source or CRISIS_TOOL_SOURCE
            fresh = turn.crisis is None and should_show_crisis(turn.conversation.user_turns, turn.shown_turn)
            turn.show_crisis()
            return _result(tool, prompts.CRISIS_RESULT if fresh else prompts.CRISIS_RESULT_RECENT)
        if name != prompts.END_TOOL:
            return _result(tool, prompts.UNKNOWN_TOOL, error=True)
        try:
            proposal = Proposal(EndReason(str(data.get("reason"))), str(data.get("note", ""))[:500])
            if proposal.reason is EndReason.USER_COMMAND:
                raise ValueError
        except ValueError:
            return _result(tool, prompts.BAD_TOOL_INPUT, error=True)
        state = PolicyState(
            warnings=turn.warnings,
            confirm_asked=turn.conversation.confirm_pending,
            at_risk=turn.at_risk,
            warned_this_turn=turn.warned,
            soft_risk=bool(turn.soft_cues),
        )
        hard_source = turn.risk_source
        proposed = decide(state, proposal, turn.settings)
        # The verify_endings check of an abuse ending; a soft mark is checked whatever that setting says.
        check_abuse = (
            proposed.verdict is Verdict.END
            and proposal.reason is EndReason.ABUSE
            and verify_enabled(turn.settings, rehearsal=self.rehearsal)
        )
        verification: Verification | None = None
        decision = proposed
        if proposed.needs_risk_check or check_abuse:
            verification = await self._model.verify(_transcript(history), turn.soft_cues)
            decision = apply_verification(proposed, verification, check_abuse=check_abuse)
            if verification.risk is True:
                # An explicit "risk" is a hard signal; a failed or unclear check only vetoes this proposal.
                turn.at_risk = True
                turn.risk_source = turn.risk_source or VERIFIER_SOURCE
        signals: dict[str, object] = {"risk_signal": risk_signal(state, proposed, verification, hard_source)}
        if turn.soft_cues:
            signals["soft_cues"] = list(turn.soft_cues)
        if verification is not None:
            signals["verified"] = decision.ends
            signals["verifier_risk"] = VERIFIER_ANSWER[verification.risk]
        self._apply(turn, proposal, decision, signals)
        self.metrics.decision(decision.verdict.value, proposal.reason.value)
        return _result(tool, prompts.TOOL_RESULTS[decision.verdict])

    @staticmethod
    def _apply(turn: _Turn, proposal: Proposal, decision: PolicyDecision, extra: dict[str, object]) -> None:
        turn.warnings = decision.warnings
        turn.warned = turn.warned or decision.verdict is Verdict.HOLD_WARN
        turn.confirm_pending = turn.confirm_pending or decision.verdict is Verdict.HOLD_CONFIRM
        if decision.verdict is Verdict.VETO_RISK:
            turn.show_crisis()
        if decision.ends:
            turn.end_reason = proposal.reason
        signals: dict[str, object] = {
            "at_risk": turn.at_risk,
            "soft_risk": bool(turn.soft_cues),
            "warnings_before": turn.conversation.warnings,
            "limit": turn.settings.abuse_warnings_before_end,
            "user_turns": turn.conversation.user_turns,
            **extra,
        }
        turn.decisions.append(
            Decision(decision.verdict.value, proposal.reason.value, proposal.note, decision.warnings, signals)
        )

    async def _finish(self, turn: _Turn, hold: InboxHold | None = None) -> TurnResult:
        conv = turn.conversation
        change = StateChange(
            warnings=turn.warnings,
            confirm_pending=turn.confirm_pending,
            at_risk=turn.at_risk,
            risk_source=turn.risk_source,
            crisis_shown_turn=turn.shown_turn,
            end_reason=turn.end_reason.value if turn.end_reason else None,
        )
        # The result exists before the store call, so that the inbox entry's outcome is stored with the
        # turn in one transaction. Under the conversation's lock an ending applies (nothing else can end
        # the conversation meanwhile); the check after the store only guards against a broken store.
        # Everything the model wrote this turn, in order: what a streaming client has already shown.
        reply = "\n\n".join(turn.texts)
        if reply and turn.file_note:
            reply = f"{turn.file_note}\n\n{reply}"
        if reply and self.rehearsal:
            reply = REHEARSAL_LABEL + reply
        closure = alert = None
        if turn.end_reason is not None:
            closure = Closure(conv.id, turn.end_reason, turn.warnings)
            alert = _alert(turn.settings, conv, turn.end_reason.value, turn.warnings)
        result = TurnResult(
            TurnStatus.REPLIED,
            conversation_id=conv.id,
            replies=(reply,) if reply else (),
            crisis=turn.crisis,
            closure=closure,
            alert=alert,
            crisis_shown=turn.crisis_shown,
        )
        updated = await self._repo.finish_turn(
            conv.id,
            conv.thread.workspace,
            turn.messages,
            change,
            turn.decisions,
            turn.usage,
            outcome=(hold, result) if hold is not None else None,
        )
        if turn.end_reason is not None:
            if not updated.ended:
                return replace(result, closure=None, alert=None)
            log.info(
                "conversation ended",
                extra={"conversation": conv.id, "reason": turn.end_reason.value, "warnings": turn.warnings},
            )
            self.metrics.ending(turn.end_reason.value)
        return result

    # -- commands -------------------------------------------------------------------------------------

    async def first_delivery(self, platform: str, workspace: str, interaction_id: str) -> bool:
        """Whether this is the first delivery of a command or interaction (a slash command, a button, a
        form submitted), by the platform's id of it; False for a replay, in any process. Adapters ask
        before acting, so the same delivery arriving again acts once. Raises ``StorageUnavailable`` when
        the database cannot be reached (nothing was claimed)."""
        key = f"delivery:{interaction_id}"
        if len(key) > MAX_DEDUPE_KEY:
            key = "delivery:" + hashlib.sha256(interaction_id.encode()).hexdigest()
        return await self._repo.claim_event(platform, workspace, key)

    async def end_by_command(self, thread: ThreadRef, author: Author) -> TurnResult:
        """The `end` command: no model involved, and no veto — the person chose to close it."""
        conv = await self._repo.find_conversation(thread)
        if conv is None:
            return TurnResult(TurnStatus.IGNORED, replies=(NOT_IN_CONVERSATION,))
        if conv.ended:
            return TurnResult(TurnStatus.ENDED_SILENT, conversation_id=conv.id)
        settings = await self._repo.get_settings(thread.platform, thread.workspace)
        if not is_admin(author, settings) and not await self._repo.is_participant(
            conv.id, thread.workspace, author.id
        ):
            return TurnResult(TurnStatus.IGNORED, conversation_id=conv.id, replies=(NOT_PARTICIPANT,))
        async with self._repo.conversation_lock(thread.key):
            ended = await self._repo.end_conversation(
                conv.id,
                thread.workspace,
                EndReason.USER_COMMAND.value,
                Decision(
                    "END",
                    EndReason.USER_COMMAND.value,
                    "end command",
                    conv.warnings,
                    {"by": "command", "at_risk": conv.at_risk, "soft_risk": conv.soft_risk},
                ),
            )
        if not ended:
            return TurnResult(TurnStatus.ENDED_SILENT, conversation_id=conv.id)
        self.metrics.ending(EndReason.USER_COMMAND.value)
        # No veto for the person's own choice, but help on the way out if there was any sign of risk.
        crisis = crisis_card(settings) if conv.at_risk or conv.soft_risk else None
        return TurnResult(
            TurnStatus.REPLIED,
            conversation_id=conv.id,
            closure=Closure(conv.id, EndReason.USER_COMMAND, conv.warnings, crisis=crisis),
            alert=_alert(settings, conv, EndReason.USER_COMMAND.value, conv.warnings),
        )

    async def fork_source(
        self, thread: ThreadRef, *, message_id: str | None = None, number: int | None = None
    ) -> ForkSource | None:
        conv = await self._repo.find_conversation(thread)
        if conv is None:
            return None
        found = await self._repo.find_user_message(
            conv.id, thread.workspace, platform_message_id=message_id, number=number
        )
        if found is None or found.author_id is None:
            return None
        return _fork_source(conv, found)

    async def may_fork(self, author: Author, source: ForkSource) -> bool:
        """Who may fork: the author of the picked message, or an admin of its workspace. ``fork``
        decides with the same rule; adapters ask this before they show a fork form."""
        if source.author_id == author.id:
            return True
        settings = await self._repo.get_settings(source.thread.platform, source.thread.workspace)
        return _may_fork(author, source.author_id, settings)

    async def fork_offer(
        self, thread: ThreadRef, message_id: str, editor_id: str, key: str
    ) -> ForkSource | None:
        """The message to offer a fork from when someone edited it in an ended conversation.

        Only the message's author is offered one, and only once per ``key`` (the platform's id of the
        edit: platforms redeliver events). None when there is nothing to offer.
        """
        conv = await self._repo.find_conversation(thread)
        if conv is None or not conv.ended:
            return None
        found = await self._repo.find_user_message(conv.id, thread.workspace, platform_message_id=message_id)
        if found is None or found.author_id is None or found.author_id != editor_id:
            return None
        if not await self._repo.claim_event(thread.platform, thread.workspace, key):
            return None
        return _fork_source(conv, found)

    async def fork(
        self, request: ForkRequest, stream: ReplyStream | None = None, deliver: Deliver | None = None
    ) -> TurnResult:
        """Open a new conversation from an earlier user message with edited text, and answer it."""
        thread = request.new_thread
        settings = await self._repo.get_settings(thread.platform, thread.workspace)
        source = await self._repo.get_conversation(
            thread.platform, thread.workspace, request.source_conversation_id
        )
        if source is None:
            return TurnResult(TurnStatus.IGNORED, replies=(NOT_IN_CONVERSATION,))
        picked = await self._repo.find_user_message(
            source.id, thread.workspace, platform_message_id=request.source_message_id
        )
        if picked is None:
            return TurnResult(TurnStatus.IGNORED, replies=(NOT_IN_CONVERSATION,))
        if not _may_fork(request.author, picked.author_id, settings):
            return TurnResult(TurnStatus.IGNORED, replies=(NOT_AUTHOR,))
        forked = await self._repo.create_fork(
            source.id,
            thread.workspace,
            picked.seq,
            thread,
            source_message_id=request.source_message_id,
            started_by=request.author.id,
        )
        log.info("conversation forked", extra={"conversation": forked.id, "forked_from": source.id})
        message_id = request.new_message_id or f"fork:{forked.id}"
        msg = IncomingMessage(thread, request.author, request.text, message_id, origin=Origin.THREAD_REPLY)
        entry: InboxEntry | None = None
        if self._inbox is not None:
            # The fork's first message goes through the inbox like any other: if this process dies
            # mid-turn, recovery answers it in the new thread.
            accepted, entry = await self.accept(msg)
            if entry is None:
                status = TurnStatus.DUPLICATE if accepted is Accepted.DUPLICATE else TurnStatus.IGNORED
                return TurnResult(status, conversation_id=forked.id)
        result = await self.handle_message(msg, stream, deliver, entry)
        return replace(result, conversation_id=forked.id)

    async def record_feedback(
        self, platform: str, workspace: str, conversation_id: str, user_id: str, comment: str | None
    ) -> AdminAlert | None:
        """A "this ending was a mistake" report: one per person per conversation, which a later report
        edits (``ConversationStore.record_feedback``). Returns an alert for the admins, if they want one,
        for the first report only."""
        conv = await self._repo.get_conversation(platform, workspace, conversation_id)
        if conv is None:
            raise LookupError("no such conversation in this workspace")
        comment = clean_text(comment or "")[:3000] or None
        first = await self._repo.record_feedback(conv, user_id, comment)
        log.info(
            "ending feedback recorded",
            extra={"conversation": conv.id, "with_comment": comment is not None, "edit": not first},
        )
        if not first:
            return None  # the person's report was edited: the admins were told when it was made
        settings = await self._repo.get_settings(platform, workspace)
        if not settings.alert_channel:
            return None
        return AdminAlert(
            settings.alert_channel, "feedback", conv.id, conv.thread, conv.end_reason or "", conv.warnings
        )


# -- helpers --------------------------------------------------------------------------------------------


def _fork_source(conv: Conversation, found: HistoryMessage) -> ForkSource:
    return ForkSource(
        conv.id, found.platform_message_id or "", found.author_id or "", found.text or "", conv.thread
    )


def _may_fork(author: Author, message_author_id: str | None, settings: WorkspaceSettings) -> bool:
    return message_author_id == author.id or is_admin(author, settings)


def _soft_cues(risk: RiskAssessment) -> tuple[str, ...]:
    """The cue names of a POSSIBLE assessment (a soft mark); never empty for one, never text."""
    if not RiskLevel.POSSIBLE <= risk.level < RiskLevel.LIKELY:
        return ()
    return tuple(risk.cues) or (risk.kind or "possible",)


def _keep_seen(turn: _Turn, part: str) -> None:
    """The last model call's words become ``part``, what the person saw of them before pressing Stop.
    A turn that ends in a tool round (an ending) keeps its words with the tool call they belong to."""
    last = turn.messages[-1] if turn.messages else None
    if last is None or last.role != "assistant" or last.kind != "text" or not turn.texts:
        return
    if part == turn.texts[-1]:
        return
    turn.messages.pop()
    turn.texts.pop()
    if part:
        content: tuple[dict[str, object], ...] = ({"type": "text", "text": part},)
        turn.messages.append(NewMessage(role="assistant", kind="text", content=content))
        turn.texts.append(part)


def _kind(reply: ModelReply) -> str:
    return "tool_use" if reply.tool_uses else "text"


def _crisis_first(tools: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # A risk signal in the same response must veto an ending proposed beside it.
    return sorted(tools, key=lambda t: t.get("name") != prompts.CRISIS_TOOL)


def _result(tool: dict[str, Any], text: str, *, error: bool = False) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool["id"], "content": text}
    if error:
        block["is_error"] = True
    return block


def _with_note(result: dict[str, Any]) -> dict[str, Any]:
    return {**result, "content": f"{result['content']} {prompts.ROUNDS_EXHAUSTED}"}


def _sanitize(reply: ModelReply, strings: Strings) -> ModelReply:
    """Make a reply safe to store and replay: no empty content, no half-written tool call. What Haven
    writes in the model's place is in the person's language (``strings``)."""
    content = reply.content
    if reply.stop_reason == "refusal":
        content = ({"type": "text", "text": strings("reply.refusal")},)
    elif reply.stop_reason == "max_tokens":
        text = "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
        content = ({"type": "text", "text": (text + "\n\n" + strings("reply.max_tokens")).strip()},)
    content = tuple(b for b in content if b.get("type") != "text" or str(b.get("text", "")).strip())
    if not content:
        content = ({"type": "text", "text": strings("reply.fallback")},)
    return ModelReply(content=content, stop_reason=reply.stop_reason, usage=reply.usage)


def _usage(reply: ModelReply) -> UsageRecord:
    u = reply.usage
    return UsageRecord(
        reply.model, u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens, u.output_tokens
    )


def _transcript(history: Sequence[HistoryMessage]) -> str:
    lines = [(m.role, m.text or _blocks_text(m.content)) for m in history if m.kind == "text"]
    return transcript_for_verifier(lines[-VERIFIER_TRANSCRIPT_MESSAGES:])


def _blocks_text(blocks: Sequence[dict[str, object]]) -> str:
    return "".join(str(b.get("text", "")) for b in blocks if b.get("type") == "text")


def _alert(settings: WorkspaceSettings, conv: Conversation, reason: str, warnings: int) -> AdminAlert | None:
    if not settings.alert_channel:
        return None
    return AdminAlert(settings.alert_channel, "ending", conv.id, conv.thread, reason, warnings)


def assess_risk(text: str) -> RiskAssessment:
    """The local risk detector; imported on first use so that admin commands never load its tables."""
    from bot.detectors.risk import assess_risk as detect

    return detect(text)
