"""``bot.inbox``: an inbox entry's message and outcome survive JSON (what the database column does) intact."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.inbox import UnknownEncoding, decode_message, decode_result, encode_message, encode_result
from bot.types import (
    AdminAlert,
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

# Any text JSON can carry (lone surrogates cannot be stored by either database, nor by the platforms).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)
opt_text = st.none() | text
threads = st.builds(ThreadRef, text, text, text, text)
authors = st.builds(Author, text, text, st.booleans())
messages = st.builds(
    IncomingMessage,
    thread=threads,
    author=authors,
    text=text,
    message_id=text,
    origin=st.sampled_from(Origin),
    dedupe_key=opt_text,
    locale=opt_text,
)
cards = st.none() | st.builds(CrisisCard, text)
closures = st.none() | st.builds(Closure, text, st.sampled_from(EndReason), st.integers(0, 10**6), cards)
alerts = st.none() | st.builds(AdminAlert, text, text, text, threads, text, st.integers(0, 10**6))
results = st.builds(
    TurnResult,
    status=st.sampled_from(TurnStatus),
    conversation_id=opt_text,
    replies=st.lists(text, max_size=4).map(tuple),
    crisis=cards,
    closure=closures,
    alert=alerts,
    error=opt_text,
    crisis_shown=st.booleans(),
)


def through_json(data: dict[str, Any]) -> Any:
    return json.loads(json.dumps(data, allow_nan=False))


@settings(max_examples=300, deadline=None)
@given(messages)
def test_a_message_round_trips_through_json(msg: IncomingMessage) -> None:
    encoded = encode_message(msg)
    assert encoded["v"] == 1
    decoded = decode_message(through_json(encoded))
    assert decoded == msg
    # The properties the inbox relies on come back too (they are derived, not stored).
    assert decoded.effective_dedupe_key == msg.effective_dedupe_key
    assert decoded.starts_conversation == msg.starts_conversation


@settings(max_examples=300, deadline=None)
@given(results)
def test_a_result_round_trips_through_json(result: TurnResult) -> None:
    encoded = encode_result(result)
    assert encoded["v"] == 1
    decoded = decode_result(through_json(encoded))
    assert decoded == result
    assert type(decoded.status) is TurnStatus and isinstance(decoded.replies, tuple)
    if decoded.closure is not None:
        assert type(decoded.closure.reason) is EndReason


def test_a_full_result_keeps_every_nested_field() -> None:
    thread = ThreadRef("slack", "T1", "C1", "1.0")
    result = TurnResult(
        status=TurnStatus.REPLIED,
        conversation_id="c1",
        replies=("one", "two"),
        crisis=CrisisCard("call 988"),
        closure=Closure("c1", EndReason.ABUSE, 2, CrisisCard("help")),
        alert=AdminAlert("C-ALERT", "ending", "c1", thread, "abuse", 2),
        error="model_outage",
        crisis_shown=True,
    )
    assert decode_result(through_json(encode_result(result))) == result


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_another_version_is_refused_not_guessed(version: object) -> None:
    msg = IncomingMessage(ThreadRef("slack", "T1", "C1", "1.0"), Author("U1", "u"), "hi", "m1")
    encoded_message = encode_message(msg)
    encoded_result = encode_result(TurnResult(TurnStatus.REPLIED, replies=("hi",)))
    for encoded, decode in ((encoded_message, decode_message), (encoded_result, decode_result)):
        if version is None:
            del encoded["v"]
        else:
            encoded["v"] = version
        with pytest.raises(UnknownEncoding):
            decode(encoded)  # type: ignore[operator]
