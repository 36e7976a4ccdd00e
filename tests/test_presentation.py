"""bot.presentation.present: the pure rules behind every renderer (see also test_renderer_contract.py)."""

from __future__ import annotations

from bot.notices import PlatformHints
from bot.presentation import ClosureNotice, CrisisResources, PrivateNotice, Reply, present
from bot.types import Closure, CrisisCard, EndReason, TurnResult, TurnStatus

HINTS = PlatformHints(new_conversation="type /new", fork="type /fork")
CARD = CrisisCard("call 988")


def test_a_streamed_reply_taken_back_is_an_empty_reply_so_the_stream_is_finished() -> None:
    result = TurnResult(TurnStatus.REPLIED, "c")
    assert present(result, user_id="u", hints=HINTS, reply_shown=True) == (Reply(""),)
    assert present(result, user_id="u", hints=HINTS) == ()


def test_a_failure_is_the_reply_and_help_still_comes_first() -> None:
    result = TurnResult(TurnStatus.ERROR, "c", error="sorry", crisis=CARD)
    assert present(result, user_id="u", hints=HINTS) == (CrisisResources(CARD), Reply("sorry", failed=True))
    shown = present(result, user_id="u", hints=HINTS, reply_shown=True)
    assert shown == (Reply("sorry", failed=True), CrisisResources(CARD))


def test_a_card_already_shown_is_not_repeated_and_the_closure_speaks_the_platform() -> None:
    result = TurnResult(
        TurnStatus.REPLIED,
        "c",
        replies=("bye",),
        crisis=CARD,
        crisis_shown=True,
        closure=Closure("c", EndReason.USER_REQUEST, 0),
    )
    reply, closure = present(result, user_id="u", hints=HINTS)
    assert reply == Reply("bye")
    assert isinstance(closure, ClosureNotice) and closure.conversation_id == "c"
    assert "type /new" in closure.text.new_conversation and "at your request" in closure.text.reason


def test_private_notices_go_to_the_person_the_turn_answers() -> None:
    [reminder] = present(TurnResult(TurnStatus.ENDED_REMINDER, "c"), user_id="U7", hints=HINTS)
    assert isinstance(reminder, PrivateNotice) and reminder.user_id == "U7" and "type /new" in reminder.text
