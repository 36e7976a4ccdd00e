"""Malformed Slack payloads through the real, signed AsyncApp: a 4xx or a logged drop, never a crash."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.slack.app import SlackBot
from adapters.slack.connector import http_app
from fakes.slack_harness import BOT, CHANNEL, SIGNING_SECRET, TEAM, SlackHarness, signed_headers

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
# Plausible keys with any JSON type: wrong types, missing fields, NUL and RTL text, huge strings.
texts = st.text(max_size=60) | st.sampled_from(["\x00\x01", "\u202eevil", "x" * 100_000, f"<@{BOT}> hi"])
event_fields = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["message", "app_mention", "reaction_added", "", "message_changed"])
        | json_values,
        "subtype": st.sampled_from(["message_changed", "bot_message", "channel_join", "thread_broadcast"])
        | json_values,
        "user": st.sampled_from(["UALICE001", ""]) | json_values,
        "text": texts | json_values,
        "ts": st.sampled_from(["1700000000.000100", "", "not-a-ts"]) | json_values,
        "thread_ts": st.sampled_from(["1700000000.000100", ""]) | json_values,
        "channel": st.sampled_from([CHANNEL, "D1", ""]) | json_values,
        "channel_type": st.sampled_from(["channel", "im", "mpim", "group"]) | json_values,
        "message": json_values,
        "previous_message": json_values,
        "bot_id": json_values,
    },
)


async def post(lite: SlackHarness, body: str, content_type: str = "application/json") -> int:
    """Over real HTTP, through the aiohttp app HTTP mode serves, acknowledging before listeners run as
    in production (a listener that cannot use a payload is then a logged drop after the 200), and
    through its short path for a person's message (``adapters.slack.intake``)."""
    bot = SlackBot(
        lite.services, lite.app.client, signing_secret=SIGNING_SECRET, process_before_response=False
    )
    auth = {"team_id": TEAM, "user_id": BOT}
    web_app = http_app(bot.app, 0, events=lambda bolt: bot.events_handler(bolt, auth))
    async with TestClient(TestServer(web_app)) as client:
        headers = signed_headers(body, content_type=content_type)
        response = await client.post("/slack/events", data=body.encode(), headers=headers)
        return response.status


FORM = "application/x-www-form-urlencoded"


@given(event=event_fields)
@FUZZ
async def test_malformed_events_are_dropped_without_a_crash(
    lite: SlackHarness, event: dict[str, Any]
) -> None:
    body = json.dumps({"type": "event_callback", "team_id": TEAM, "event": event, "event_id": "EvFuzz"})
    assert await post(lite, body) < 500


@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@FUZZ
async def test_garbage_bodies_get_a_client_error(lite: SlackHarness, body: bytes) -> None:
    assert await post(lite, body.decode("utf-8", errors="replace")) < 500
    assert await post(lite, body.decode("utf-8", errors="replace"), FORM) < 500
