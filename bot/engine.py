"""The engine: one user message in, one ``TurnResult`` out. Knows no platform.

Per turn it (1) dedupes and stores the user message, (2) runs at most ``MAX_MODEL_CALLS`` model calls,
answering every ``tool_use`` with a ``tool_result`` decided by the pure policy, and (3) stores the
model's side of the turn together with any state change and audit record in one transaction. A model
failure between (1) and (3) leaves the conversation exactly as it was, apart from the user's message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot import prompts
from bot.admin import is_admin
from bot.admission import Admission, TurnStopped
from bot.context import FIXED_TOKENS, TokenTally, build_request, message_tokens, user_text_block
from bot.model import ContextTooLong, ModelClient, ModelError, ModelReply, transcript_for_verifier
from bot.notices import NOT_AUTHOR, NOT_IN_CONVERSATION, NOT_PARTICIPANT, REHEARSAL_LABEL, crisis_card
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
from bot.ports import ConversationStore, HelpFirst, ReplyStream
from bot.types import (
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


@dataclass(frozen=True, slots=True)
class EngineOptions:
    max_output_tokens: int = 1024
    context_budget_tokens: int = 150_000
    # Admission (``bot.admission``): turns whose model part runs at once, and how long that part may take.
    max_concurrent_turns: int = 64
    turn_deadline_seconds: float = 180.0


def clean_text(text: str) -> str:
    """Drop NULs and other control characters (keeping newlines and tabs); normalise to NFC."""
    cleaned = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cs"))
    return unicodedata.normalize("NFC", cleaned).strip()


class _StreamBridge:
    """Turns the model's chunks into whole-reply snapshots for an adapter's ``ReplyStream``.

    Text of earlier model calls in the turn is kept; a retried call takes back only its own text.
    """

    def __init__(self, stream: ReplyStream, prefix: str = "") -> None:
        self._stream = stream
        self._prefix = prefix
        self._done = ""
        self._current = ""
        self._wrote = False

    async def help_first(self, card: CrisisCard) -> bool:
        """Show ``card`` before the reply, if none of the reply was handed to the stream yet."""
        if self._wrote or not isinstance(self._stream, HelpFirst):
            return False
        return await self._stream.crisis_card(card)

    def _joined(self) -> str:
        return "\n\n".join(t for t in (self._done.strip(), self._current.strip()) if t)

    def _text(self) -> str:
        text = self._joined()
        return self._prefix + text if text else ""

    async def chunk(self, text: str) -> None:
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

    def show_crisis(self) -> bool:
        if self.crisis is None and should_show_crisis(self.conversation.user_turns, self.shown_turn):
            self.crisis = crisis_card(self.settings, self.locale)
            self.shown_turn = self.conversation.user_turns
            return True
        return self.crisis is not None


class Engine:
    """The core's one entry point for adapters: turns, commands, forks, feedback and the few questions
    about threads an adapter must ask before it can translate an event. Adapters reach storage only
    through these methods."""

    def __init__(
        self, store: ConversationStore, model: ModelClient, options: EngineOptions | None = None
    ) -> None:
        self._repo = store
        self._model = model
        self._options = options or EngineOptions()
        self._tally = TokenTally()
        self.admission = Admission(self._options.max_concurrent_turns, self._options.turn_deadline_seconds)

    @property
    def rehearsal(self) -> bool:
        return self._model.rehearsal

    def begin_shutdown(self, seconds: float) -> None:
        """Haven is stopping: turns still answering ``seconds`` from now stop and get the restart note
        (``bot.admission``). Connectors call it when they stop accepting work; the first call counts."""
        self.admission.begin_shutdown(seconds)

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
        self, msg: IncomingMessage, stream: ReplyStream | None = None, deliver: Deliver | None = None
    ) -> TurnResult:
        """Handle one user message; ``deliver``, if given, posts the result while the turn still holds
        the conversation's lock, so replies of one thread reach the platform in turn order even when
        several processes take turns."""
        started = time.perf_counter()
        text = clean_text(msg.text)
        if not text:
            return TurnResult(TurnStatus.IGNORED)
        # The lock comes before any other await, so one thread's messages are handled in arrival order.
        async with self._repo.conversation_lock(msg.thread.key):
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
        return result

    async def _locked_turn(
        self, msg: IncomingMessage, text: str, stream: ReplyStream | None
    ) -> tuple[TurnResult, RiskLevel]:
        if len(text) > MAX_INPUT_CHARS:
            return await self._refuse_oversized(msg, len(text)), RiskLevel.NONE
        # Off the event loop: a long message (or the first one, which compiles rule tables) may take
        # milliseconds, and every other conversation of the process would wait for it.
        risk = await asyncio.to_thread(assess_risk, text)
        began = await self._repo.begin_turn(
            msg.thread,
            msg.effective_dedupe_key,
            NewMessage(
                role="user",
                kind="text",
                content=(user_text_block(msg.author.name, text),),
                author_id=msg.author.id,
                author_name=msg.author.name,
                platform_message_id=msg.message_id,
                text=text,
            ),
            create=msg.starts_conversation,
            started_by=msg.author.id,
            at_risk=risk.level >= RiskLevel.LIKELY,
            soft_cues=_soft_cues(risk),
        )
        if began.duplicate:
            log.info("duplicate delivery dropped", extra={"platform": msg.thread.platform})
            return TurnResult(TurnStatus.DUPLICATE), risk.level
        conv = began.conversation
        if conv is None:
            return TurnResult(TurnStatus.IGNORED), risk.level
        if conv.ended:
            first = await self._repo.mark_reminded(conv, msg.author.id)
            status = TurnStatus.ENDED_REMINDER if first else TurnStatus.ENDED_SILENT
            return TurnResult(status, conversation_id=conv.id), risk.level
        # Read by begin_turn in the transaction that stored the message (the port's contract); under the
        # lock they stay current for the whole turn.
        settings, history = began.settings, began.history
        if settings is None:
            raise RuntimeError("the store's begin_turn stored a message but returned no settings")
        bridge = _StreamBridge(stream, REHEARSAL_LABEL if self.rehearsal else "") if stream else None
        return await self._model_turn(conv, settings, history, msg.locale, risk, bridge), risk.level

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
                f"That message is too long for me ({size:,} characters; the limit is {MAX_INPUT_CHARS:,}). "
                "Could you shorten it or send it in parts?",
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
            failure = stopped.note
        if failure is not None:
            # Calls that succeeded before the failure were billed; nothing else of the turn is kept.
            await self._repo.record_usage(conv, turn.usage)
            return TurnResult(
                TurnStatus.ERROR,
                conversation_id=conv.id,
                error=failure,
                crisis=turn.crisis,
                crisis_shown=turn.crisis_shown,
            )
        return await self._finish(turn)

    async def _model_calls(
        self, turn: _Turn, history: Sequence[HistoryMessage], sink: _StreamBridge | None
    ) -> str | None:
        """The model part of a turn: up to ``MAX_MODEL_CALLS`` calls with their tool rounds, into
        ``turn``. Returns the failure note when the model failed, None when the turn is ready to store."""
        conv = turn.conversation
        budget = self._options.context_budget_tokens
        for call in range(MAX_MODEL_CALLS):
            if sink is not None and turn.crisis is not None and not turn.crisis_shown:
                # Help first: before the reply's first words whenever the risk is known that early.
                turn.crisis_shown = await sink.help_first(turn.crisis)
            try:
                reply = await self._respond(conv.id, history, turn.messages, budget, sink)
            except ModelError:
                return prompts.MODEL_ERROR_REPLY
            turn.usage.append(_usage(reply))
            if sink is not None:
                sink.end_round()
            reply = _sanitize(reply)
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
        return None

    async def _respond(
        self,
        conversation_id: str,
        history: Sequence[HistoryMessage],
        pending: Sequence[NewMessage],
        budget: int,
        sink: _StreamBridge | None,
    ) -> ModelReply:
        extra = [HistoryMessage(seq=-1, role=m.role, kind=m.kind, content=m.content) for m in pending]
        full = [*history, *extra]
        known = self._tally.total(conversation_id, history) + sum(message_tokens(m) for m in extra)
        if FIXED_TOKENS + known > COUNT_ABOVE * budget:
            # Near the budget the estimate decides whether old turns are dropped: ask the API instead.
            whole = build_request(
                full, max_tokens=self._options.max_output_tokens, budget_tokens=budget, known_tokens=0
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

    async def _finish(self, turn: _Turn) -> TurnResult:
        conv = turn.conversation
        change = StateChange(
            warnings=turn.warnings,
            confirm_pending=turn.confirm_pending,
            at_risk=turn.at_risk,
            risk_source=turn.risk_source,
            crisis_shown_turn=turn.shown_turn,
            end_reason=turn.end_reason.value if turn.end_reason else None,
        )
        updated = await self._repo.finish_turn(
            conv.id, conv.thread.workspace, turn.messages, change, turn.decisions, turn.usage
        )
        # Everything the model wrote this turn, in order: what a streaming client has already shown.
        reply = "\n\n".join(turn.texts)
        if reply and self.rehearsal:
            reply = REHEARSAL_LABEL + reply
        closure = alert = None
        if turn.end_reason is not None and updated.ended:
            closure = Closure(conv.id, turn.end_reason, turn.warnings)
            alert = _alert(turn.settings, conv, turn.end_reason.value, turn.warnings)
            log.info(
                "conversation ended",
                extra={"conversation": conv.id, "reason": turn.end_reason.value, "warnings": turn.warnings},
            )
        return TurnResult(
            TurnStatus.REPLIED,
            conversation_id=conv.id,
            replies=(reply,) if reply else (),
            crisis=turn.crisis,
            closure=closure,
            alert=alert,
            crisis_shown=turn.crisis_shown,
        )

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
        result = await self.handle_message(
            IncomingMessage(thread, request.author, request.text, message_id, origin=Origin.THREAD_REPLY),
            stream,
            deliver,
        )
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


def _sanitize(reply: ModelReply) -> ModelReply:
    """Make a reply safe to store and replay: no empty content, no half-written tool call."""
    content = reply.content
    if reply.stop_reason == "refusal":
        content = ({"type": "text", "text": prompts.REFUSAL_REPLY},)
    elif reply.stop_reason == "max_tokens":
        text = "".join(str(b.get("text", "")) for b in content if b.get("type") == "text")
        content = ({"type": "text", "text": (text + prompts.MAX_TOKENS_NOTE).strip()},)
    content = tuple(b for b in content if b.get("type") != "text" or str(b.get("text", "")).strip())
    if not content:
        content = ({"type": "text", "text": prompts.FALLBACK_REPLY},)
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
