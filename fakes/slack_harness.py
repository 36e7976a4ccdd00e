"""A Slack harness for tests and benchmarks: a real Bolt AsyncApp, correctly signed requests, the mock Web
API and the fake Anthropic server.

Requests go through ``app.async_dispatch(AsyncBoltRequest(...))`` exactly as Bolt's own aiohttp adapter
hands them over, with ``process_before_response=True`` so a dispatch returns after the listener ran.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.app import build_app
from bot.app import Services
from bot.prompts import VERDICT_TOOL
from fakes.fake_anthropic import FakeAnthropic, Step, tool_use
from fakes.harness import make_settings, services_for
from fakes.mock_slack import BOT_USER_ID, HISTORY_METHODS, TEAM_ID, MockSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-0000-haven-test"
TEAM = TEAM_ID
BOT = BOT_USER_ID
ALICE = "UALICE001"
BOB = "UBOB00001"
ADA = "UADA00001"  # a workspace admin
CHANNEL = "CGENERAL01"
ALERTS = "CALERTS001"
DM = "DALICE001"


def signed_headers(
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/json",
    retry: int | None = None,
) -> dict[str, str]:
    ts = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    assert signature is not None
    headers = {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature}
    if retry:
        headers["x-slack-retry-num"] = str(retry)
        headers["x-slack-retry-reason"] = "http_timeout"
    return headers


def verdict(body: dict[str, Any]) -> Step | None:
    """Answer the engine's separate ending check: persistent abuse, no risk."""
    if (body.get("tool_choice") or {}).get("name") == VERDICT_TOOL:
        return tool_use(VERDICT_TOOL, {"persistent_abuse": True, "risk": False})
    return None


@dataclass
class SlackHarness:
    app: AsyncApp
    slack: MockSlack
    anthropic: FakeAnthropic
    services: Services
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _epoch: int = field(default_factory=lambda: int(time.time()) - 1000)

    # -- ids
    def ts(self) -> str:
        """A fresh ts for a person's message (distinct from the mock's own ts sequence)."""
        return f"{self._epoch}.{next(self._ts):06d}"

    # -- payload builders
    @staticmethod
    def envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
        return {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "api_app_id": "AHAVEN001",
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{event.get('ts', '0').replace('.', '')}{event['type']}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM, "user_id": BOT, "is_bot": True}],
        }

    @staticmethod
    def message(
        text: str,
        *,
        ts: str,
        user: str = ALICE,
        channel: str = CHANNEL,
        thread_ts: str | None = None,
        kind: str = "message",
        channel_type: str = "channel",
        **extra: Any,
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "type": kind,
            "user": user,
            "text": text,
            "ts": ts,
            "channel": channel,
            "event_ts": ts,
            "team": TEAM,
        }
        if kind == "message":
            event["channel_type"] = channel_type
        if thread_ts:
            event["thread_ts"] = thread_ts
        event.update(extra)
        return event

    @staticmethod
    def assistant_event(
        kind: str,
        *,
        thread_ts: str,
        user: str = ALICE,
        channel: str = DM,
        context: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``assistant_thread_started`` or ``assistant_thread_context_changed`` for a thread in ``user``'s
        DM with Haven; ``context`` is where the person has the split view open (a channel, or nothing)."""
        return {
            "type": kind,
            "assistant_thread": {
                "user_id": user,
                "context": context if context is not None else {},
                "channel_id": channel,
                "thread_ts": thread_ts,
            },
            "event_ts": thread_ts,
        }

    # -- dispatch
    async def dispatch(self, body: str, headers: Mapping[str, str]) -> BoltResponse:
        return await self.app.async_dispatch(AsyncBoltRequest(body=body, headers=dict(headers.items())))

    async def event(self, event: dict[str, Any], *, retry: int | None = None) -> BoltResponse:
        body = json.dumps(self.envelope(event))
        return await self.dispatch(body, signed_headers(body, retry=retry))

    async def mention(
        self, text: str, *, ts: str, user: str = ALICE, thread_ts: str | None = None
    ) -> BoltResponse:
        """What Slack sends for one message that mentions Haven: app_mention, then the message copy."""
        mention = self.message(f"<@{BOT}> {text}", ts=ts, user=user, thread_ts=thread_ts, kind="app_mention")
        resp = await self.event(mention)
        await self.event(self.message(f"<@{BOT}> {text}", ts=ts, user=user, thread_ts=thread_ts))
        return resp

    async def reply(self, text: str, *, thread_ts: str, user: str = ALICE, ts: str | None = None) -> str:
        ts = ts or self.ts()
        await self.event(self.message(text, ts=ts, user=user, thread_ts=thread_ts))
        return ts

    async def form(self, fields: dict[str, str]) -> BoltResponse:
        body = urlencode(fields)
        return await self.dispatch(
            body, signed_headers(body, content_type="application/x-www-form-urlencoded")
        )

    async def command(self, text: str, *, user: str = ALICE, channel: str = CHANNEL) -> BoltResponse:
        return await self.form(
            {
                "token": "legacy",
                "team_id": TEAM,
                "team_domain": "haven-test",
                "channel_id": channel,
                "channel_name": "general",
                "user_id": user,
                "user_name": user.lower(),
                "command": "/haven",
                "text": text,
                "api_app_id": "AHAVEN001",
                "response_url": self.slack.response_url("cmd"),
                "trigger_id": f"trigger.{time.time_ns()}",
            }
        )

    async def interact(self, payload: dict[str, Any]) -> BoltResponse:
        return await self.form({"payload": json.dumps(payload)})

    async def shortcut(
        self, message: dict[str, Any], *, user: str = ALICE, channel: str = CHANNEL
    ) -> BoltResponse:
        return await self.interact(
            {
                "type": "message_action",
                "callback_id": "haven_edit_fork",
                "trigger_id": f"trigger.{time.time_ns()}",
                "team": {"id": TEAM, "domain": "haven-test"},
                "user": {"id": user, "team_id": TEAM},
                "channel": {"id": channel, "name": "general"},
                "message": message,
                "message_ts": message["ts"],
                "response_url": self.slack.response_url("shortcut"),
            }
        )

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str = ALICE,
        channel: str = CHANNEL,
        message: dict[str, Any],
    ) -> BoltResponse:
        return await self.interact(
            {
                "type": "block_actions",
                "trigger_id": f"trigger.{time.time_ns()}",
                "team": {"id": TEAM, "domain": "haven-test"},
                "user": {"id": user, "team_id": TEAM},
                "channel": {"id": channel, "name": "general"},
                "container": {
                    "type": "message",
                    "message_ts": message.get("ts"),
                    "channel_id": channel,
                    "is_ephemeral": bool(message.get("ephemeral")),
                    "thread_ts": message.get("thread_ts"),
                },
                "message": message,
                "response_url": self.slack.response_url("click"),
                "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "b"}],
            }
        )

    async def submit(self, view: dict[str, Any], value: str | None, *, user: str = ALICE) -> BoltResponse:
        """Submit a modal that views.open was called with, its one text input set to ``value``."""
        state = {"values": {"text": {"text": {"type": "plain_text_input", "value": value}}}}
        return await self.interact(
            {
                "type": "view_submission",
                "team": {"id": TEAM, "domain": "haven-test"},
                "user": {"id": user, "team_id": TEAM},
                "view": {**view, "id": "VMODAL01", "team_id": TEAM, "state": state},
                "trigger_id": f"trigger.{time.time_ns()}",
            }
        )

    # -- inspection
    def posts(self, *, thread_ts: str | None = None, top_level: bool = False) -> list[dict[str, Any]]:
        calls = self.slack.calls_to("chat.postMessage")
        if top_level:
            return [c for c in calls if not c.get("thread_ts")]
        if thread_ts is not None:
            return [c for c in calls if c.get("thread_ts") == thread_ts]
        return calls

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.slack.calls_to("chat.postEphemeral") if user is None or c.get("user") == user]

    def responses(self) -> list[dict[str, Any]]:
        return [c.args for c in self.slack.responses]

    def model_requests(self) -> list[dict[str, Any]]:
        """Conversation turns only: the separate ending check is not a reply to anyone."""
        return [b for b in self.anthropic.model_requests() if not b.get("tool_choice")]

    def last_view(self) -> dict[str, Any]:
        return self.slack.calls_to("views.open")[-1]["view"]

    def shown(self, thread_ts: str, channel: str = CHANNEL) -> list[dict[str, Any]]:
        """The bot's messages in a thread as people see them now (posted or streamed, then edited)."""
        return self.slack.thread(channel, thread_ts)

    def history_reads(self) -> int:
        return sum(self.slack.count(m) for m in HISTORY_METHODS)


def block_types(post: dict[str, Any]) -> list[str]:
    return [b["type"] for b in post.get("blocks") or []]


def is_closure(post: dict[str, Any]) -> bool:
    return any(
        e.get("action_id") == "haven_mistake"
        for b in post.get("blocks") or []
        for e in b.get("elements") or []
    )


def is_crisis(post: dict[str, Any]) -> bool:
    return any(b["type"] == "header" and "Support" in b["text"]["text"] for b in post.get("blocks") or [])


async def harness_on(
    database_url: str, slack: MockSlack, anthropic: FakeAnthropic, **overrides: Any
) -> AsyncIterator[SlackHarness]:
    """A harness on ``database_url`` (iterate once: the services close when the loop ends)."""
    settings = make_settings(database_url, anthropic.url, **overrides)
    async with services_for(settings) as services:
        client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url)
        app = build_app(services, client, signing_secret=SIGNING_SECRET, process_before_response=True)
        yield SlackHarness(app, slack, anthropic, services)


def post_words(post: Mapping[str, Any]) -> str:
    """A post's words as the app sent them: its Markdown (``markdown_text``, replies) or its ``text``."""
    return str(post.get("markdown_text") or post.get("text") or "")
