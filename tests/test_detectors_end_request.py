"""The end-request detector: the user asking to end *this chat*, not to end, close or stop something else."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.detectors import is_end_request

REQUESTS = [
    "please end this conversation",
    "close this thread",
    "I want to stop talking",
    "end chat",
    "we're done here, close it",
    "Can you close this chat please?",
    "Let's end the conversation here.",
    "I would like to end our chat",
    "stop talking to me",
    "I don't want to talk anymore",
    "ok bye, please close the thread",
    "terminate this session",
    "End this conversation now.",
    "I'd like to close this conversation",
    "please archive this thread",
    "that's all, thanks - you can close this",
    "we are done. end it.",
    "Quit chat",
    "could you wrap up this conversation?",
    "how do I end this chat?",
    "I'm done talking to you",
    "let's stop chatting",
]

NOT_REQUESTS = [
    "end the loop",
    "close the file",
    "stop the server",
    "how do I end a conversation in the slack api?",
    "don't end this conversation",
    "please do not close this thread",
    "the conversation ended badly yesterday",
    "let's close the PR",
    "stop the build",
    "end the meeting at 3",
    "close the ticket",
    "can we stop talking about politics",
    "the thread pool is exhausted, close it",
    "I closed the chat window by accident",
    "close the chat window",
    "why did you end the conversation?",
    "kill the process",
    "I am done with the migration, close the issue",
    "end the sentence with a period",
    "stop the container and close the socket",
    "we should close the loop with design",
    "the thread is about the outage",
    "thanks!",
    "",
]


@pytest.mark.parametrize("text", REQUESTS)
def test_requests_to_end_the_chat(text: str) -> None:
    assert is_end_request(text) is True


@pytest.mark.parametrize("text", NOT_REQUESTS)
def test_ending_something_else_is_not_a_request(text: str) -> None:
    assert is_end_request(text) is False


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_never_crashes_and_is_deterministic(text: str) -> None:
    assert is_end_request(text) is is_end_request(text)


@settings(max_examples=5, deadline=None)
@given(st.text(min_size=1, max_size=20).map(lambda s: (s * (100_000 // len(s) + 1))[:100_000]))
def test_never_crashes_on_100k_characters(text: str) -> None:
    is_end_request(text)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(REQUESTS + NOT_REQUESTS[:-1]),
    st.text(alphabet=" \t\n", max_size=4),
    st.text(alphabet=" \t\n", max_size=4),
    st.booleans(),
)
def test_padding_and_case_do_not_matter(text: str, left: str, right: str, upper: bool) -> None:
    variant = left + (text.upper() if upper else text.lower()) + right
    assert is_end_request(variant) is is_end_request(text)
