"""A local mock of the Slack Web API that records every call (aiohttp, 127.0.0.1, ephemeral port).

    async with MockSlack() as slack:
        client = AsyncWebClient(token="xoxb-test", base_url=slack.api_url)   # trailing slash included
        ...
        assert slack.calls_to("chat.postMessage")[0]["thread_ts"] == "1700000000.000100"

``/api/<method>`` accepts GET and POST with query parameters, form bodies or JSON bodies (slack_sdk uses
all three) and answers ``{"ok": true, ...}`` as ``application/json``, like Slack. ``fail(method, error)``
makes a method answer ``{"ok": false, "error": error}``; ``fail_http(method, status, times=…)`` makes its
next calls fail at the HTTP level (429 with ``Retry-After``, 500/503 with an HTML body), recorded in
``rejected``, not ``calls``. ``/respond/<id>`` records what Bolt's ``respond()`` posts to a
``response_url``. Socket Mode: ``apps.connections.open`` hands out a ``ws://`` URL on this server,
``push(...)`` sends an envelope to the connected client, and the client's acknowledgements land in
``socket_acks``. ``start_in_thread()`` runs it on its own loop for subprocess tests.

The mock also keeps what a thread would *show*: ``messages`` holds every message the bot created
(``chat.postMessage`` or ``chat.startStream``) with its current text, changed by ``chat.update``,
``chat.appendStream``/``chat.stopStream`` and ``chat.delete``; ``thread(channel, ts)`` lists one thread's.
Streamed text and text sent as ``markdown_text`` is Markdown, other posted text mrkdwn; ``format`` says which.
``refuse_streaming(error)`` makes ``chat.startStream`` fail like a workspace without the feature, and
``press_stop()`` plays the person pressing Stop on a streamed reply: Slack ends the stream where it is
(the message keeps what it shows) and the app's next stream call answers ``message_not_in_streaming_state``.

Assistant threads (Slack's AI-app split view): ``assistant.threads.setStatus``, ``setTitle`` and
``setSuggestedPrompts`` need ``channel_id`` and ``thread_ts`` (at most four prompts, each with a title
and a message); ``assistant_thread(channel, thread_ts)`` holds what the thread shows: ``status``,
``title`` and ``prompts``. As in Slack, a message the bot posts or streams into the thread clears the
status.

Many workspaces: ``add_workspace(team_id, token=…)`` makes a second workspace whose bot token
``auth.test`` recognises (answering with that workspace's team and bot ids; any other token answers as
the default workspace), and returns the one-time OAuth ``code`` that ``oauth.v2.access`` exchanges for
that token when the app authenticates with ``client_id`` / ``client_secret`` (HTTP Basic, as slack_sdk
sends them). A code works once; a wrong secret answers ``invalid_client``. ``token_of(call)`` is the
bearer token a recorded call carried.

Files: ``add_file(name, data, mimetype)`` stores a file as Slack does and returns its file object (as an
event's ``files`` carry it: ``url_private_download`` on this server, under ``/files-pri/``). Downloading
needs ``Authorization: Bearer xoxb-…``; without it Slack answers its sign-in page (HTML, status 200), and
so does this mock. ``file_requests`` records each download's path and headers.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from fakes.serving import InThread, serve

TEAM_ID = "T0HAVEN01"
TEAM_DOMAIN = "haven-test"
BOT_USER_ID = "UHAVENBOT"
BOT_ID = "BHAVENBOT"
APP_ID = "AHAVEN001"
CLIENT_ID = "1234567890.0987654321"
CLIENT_SECRET = "mock-client-secret-0001"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the request arrived


@dataclass
class HttpFault:
    status: int
    retry_after: int | None = None


# Methods that read a channel's history: Haven must never need them per turn.
HISTORY_METHODS = ("conversations.history", "conversations.replies")
STREAM_METHODS = ("chat.startStream", "chat.appendStream", "chat.stopStream")


class MockSlack(InThread):
    thread_name = "mock Slack server"

    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
    ) -> None:
        self.team_id = team_id
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.calls: list[Call] = []
        self.responses: list[Call] = []  # posts to response_url
        self.users: dict[str, dict[str, Any]] = {}
        self.errors: dict[str, str] = {}
        self.delays: dict[str, float] = {}  # method → seconds to wait before answering
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.rejected: list[Call] = []  # calls answered with an HTTP-level fault
        self.http_faults: dict[str, deque[HttpFault]] = {}
        self.streaming_error: str | None = None  # set: chat.startStream fails with this error
        self.stop_after: str | None = None  # a stream method: the person presses Stop once it answered
        # What the bot's messages show now, in creation order (see the module docstring).
        self.messages: list[dict[str, Any]] = []
        # Per assistant thread (channel, thread_ts): its status, title and suggested prompts now.
        self.assistant_threads: dict[tuple[str, str], dict[str, Any]] = {}
        # Many workspaces (see the module docstring): bot token → workspace, OAuth code → bot token.
        self.client_id, self.client_secret = CLIENT_ID, CLIENT_SECRET
        self.workspaces: dict[str, dict[str, str]] = {}
        self.oauth_codes: dict[str, str] = {}
        self.url = ""
        # Files people shared (``add_file``): path → (mimetype, bytes); and every download asked for.
        self.files: dict[str, tuple[str, bytes]] = {}
        self.file_requests: list[Call] = []
        self._ts = itertools.count(1)
        self._epoch = int(time.time())
        self._sockets: list[web.WebSocketResponse] = []
        self._runner: web.AppRunner | None = None
        self._connected: asyncio.Event | None = None

    # -- configuration and inspection
    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, name: str | None = None) -> str:
        return f"{self.url}/respond/{name or uuid.uuid4().hex[:12]}"

    def add_user(
        self,
        user_id: str,
        name: str | None = None,
        *,
        is_admin: bool = False,
        is_owner: bool = False,
        team_id: str | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        name = name or user_id.lower()
        user = {
            "id": user_id,
            "team_id": team_id or self.team_id,
            "name": name,
            "real_name": name.title(),
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_bot": False,
            "deleted": False,
            "locale": locale,
            "profile": {"display_name": name, "real_name": name.title()},
        }
        self.users[user_id] = user
        return user

    def fail(self, method: str, error: str) -> None:
        self.errors[method] = error

    def fail_http(self, method: str, status: int, *, times: int = 1, retry_after: int | None = None) -> None:
        """The next ``times`` calls of ``method`` fail with HTTP ``status`` (429: ``Retry-After``)."""
        faults = self.http_faults.setdefault(method, deque())
        faults.extend(HttpFault(status, retry_after) for _ in range(times))

    def refuse_streaming(self, error: str = "unknown_method") -> None:
        """``chat.startStream`` answers ``{"ok": false, "error": error}`` (None: streaming works again)."""
        self.streaming_error = error

    def press_stop(self, after: str = "chat.startStream") -> None:
        """The person presses Stop on the next streamed message right after ``after`` (a stream method)
        answered it: the stream ends, showing what it shows then (``stopped_by_user`` on the message)."""
        self.stop_after = after

    def thread(self, channel: str, thread_ts: str) -> list[dict[str, Any]]:
        """The bot's messages in one thread as they look now (deleted ones left out)."""
        return [
            m
            for m in self.messages
            if m["channel"] == channel and m.get("thread_ts") == thread_ts and not m.get("deleted")
        ]

    def assistant_thread(self, channel: str, thread_ts: str) -> dict[str, Any]:
        """What an assistant thread shows now: ``status`` ("" when none), ``title``, ``prompts``."""
        return self.assistant_threads.get((channel, thread_ts)) or _new_assistant_thread()

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        for m in self.messages:
            if m["channel"] == channel and m["ts"] == ts:
                return m
        return None

    def add_workspace(
        self,
        team_id: str,
        *,
        token: str,
        name: str = "Second Workspace",
        domain: str = "second-ws",
        bot_user_id: str = "USECONDBOT",
        bot_id: str = "BSECONDBOT",
        installer: str = "UINSTALLER",
    ) -> str:
        """A workspace Haven can be installed into; returns the OAuth code for its installation."""
        self.workspaces[token] = {
            "team_id": team_id,
            "team": name,
            "domain": domain,
            "user_id": bot_user_id,
            "bot_id": bot_id,
            "installer": installer,
        }
        code = f"code-{uuid.uuid4().hex[:12]}"
        self.oauth_codes[code] = token
        return code

    def add_file(
        self, name: str, data: bytes, mimetype: str, *, size: int | None = None, file_id: str | None = None
    ) -> dict[str, Any]:
        """A shared file's object as Slack puts it in an event's ``files`` (``size``: what Slack says)."""
        file_id = file_id or f"F{uuid.uuid4().hex[:10].upper()}"
        path = f"/files-pri/{self.team_id}-{file_id}/download/{name}"
        self.files[path] = (mimetype, data)
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rpartition(".")[2],
            "size": len(data) if size is None else size,
            "mode": "hosted",
            "url_private": f"{self.url}/files-pri/{self.team_id}-{file_id}/{name}",
            "url_private_download": f"{self.url}{path}",
        }

    @staticmethod
    def token_of(call: Call) -> str | None:
        auth = call.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return auth.removeprefix("Bearer ")
        token = call.args.get("token")
        return str(token) if token else None

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    def ts_of(self, args: Mapping[str, Any]) -> str:
        """The ts this mock answered for one recorded call (e.g. a chat.postMessage)."""
        for call in self.calls:
            if call.args is args:
                return str(call.result.get("ts") or call.result.get("message_ts"))
        raise KeyError("not a recorded call")

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c.method == method)

    def reset(self) -> None:
        self.calls.clear()
        self.responses.clear()
        self.rejected.clear()
        self.messages.clear()
        self.assistant_threads.clear()

    def next_ts(self) -> str:
        return f"{self._epoch}.{next(self._ts):06d}"

    def permalink(self, channel: str, ts: str, thread_ts: str | None = None) -> str:
        link = f"https://{self.team_domain}.slack.com/archives/{channel}/p{ts.replace('.', '')}"
        if thread_ts and thread_ts != ts:
            link += f"?thread_ts={thread_ts}&cid={channel}"
        return link

    # -- lifecycle
    async def __aenter__(self) -> MockSlack:
        self._connected = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/socket", self._socket)
        app.router.add_get("/files-pri/{tail:.*}", self._file)
        self._runner, self.url = await serve(app)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    # -- Socket Mode
    async def wait_connected(self, seconds: float = 5.0) -> None:
        assert self._connected is not None
        await asyncio.wait_for(self._connected.wait(), seconds)

    async def push(self, kind: str, payload: Mapping[str, Any], *, retry_attempt: int = 0) -> str:
        """Send one Socket Mode envelope (``events_api``, ``slash_commands`` or ``interactive``)."""
        envelope_id = uuid.uuid4().hex
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": dict(payload),
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": retry_attempt,
            "retry_reason": "timeout" if retry_attempt else "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def wait_ack(self, envelope_id: str, seconds: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + seconds
        while envelope_id not in self.socket_acks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no ack for envelope {envelope_id}")
            await asyncio.sleep(0.01)
        return self.socket_acks[envelope_id]

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(
            json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": APP_ID}})
        )
        assert self._connected is not None
        self._connected.set()
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    data = json.loads(msg.data)
                    if "envelope_id" in data:
                        self.socket_acks[data["envelope_id"]] = data
        finally:
            self._sockets.remove(ws)
        return ws

    # -- files
    async def _file(self, request: web.Request) -> web.Response:
        self.file_requests.append(Call("file", {"path": request.path}, dict(request.headers)))
        if not request.headers.get("Authorization", "").startswith("Bearer xoxb-"):
            return web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        found = self.files.get(request.path)
        if found is None:
            return web.Response(status=404, text="file_not_found")
        mimetype, data = found
        return web.Response(body=data, content_type=mimetype)

    # -- Web API
    async def _respond(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        self.responses.append(Call(request.match_info["name"], body, dict(request.headers)))
        return web.Response(text="ok")

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                args.update(json.loads(raw or b"{}"))
            else:
                args.update(parse_qsl(raw.decode(), keep_blank_values=True))
        for key in ("blocks", "view", "attachments", "metadata"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        call = Call(method, args, dict(request.headers))
        faults = self.http_faults.get(method)
        if faults:
            fault = faults.popleft()
            self.rejected.append(call)
            return self._http_fault(fault)
        self.calls.append(call)
        if method in self.delays:
            await asyncio.sleep(self.delays[method])
        if method in self.errors:
            call.result = {"ok": False, "error": self.errors[method]}
        elif method == "chat.startStream" and self.streaming_error:
            call.result = {"ok": False, "error": self.streaming_error}
        elif method == "oauth.v2.access":
            call.result = self._oauth_access(request.headers.get("Authorization", ""), args)
        elif not request.headers.get("Authorization", "").startswith("Bearer ") and "token" not in args:
            call.result = {"ok": False, "error": "not_authed"}
        else:
            try:
                call.result = {"ok": True, **self._answer(method, args, self.token_of(call))}
            except _Refused as refused:
                call.result = {"ok": False, "error": str(refused)}
            if method == self.stop_after and call.result.get("ok"):
                self.stop_after = None
                stopped = self.message(str(args.get("channel", "")), str(call.result.get("ts")))
                if stopped is not None:
                    stopped["streaming"], stopped["stopped_by_user"] = False, True
        return self._json(call.result)

    @staticmethod
    def _http_fault(fault: HttpFault) -> web.Response:
        if fault.status == 429:
            headers = {"Retry-After": str(fault.retry_after if fault.retry_after is not None else 1)}
            body = json.dumps({"ok": False, "error": "ratelimited"}).encode()
            return web.Response(body=body, status=429, content_type="application/json", headers=headers)
        page = f"<html><body><h1>{fault.status}</h1>Slack is having trouble.</body></html>"
        return web.Response(text=page, status=fault.status, content_type="text/html")

    # -- what the bot's messages show
    def _create(
        self, channel: str, ts: str, args: Mapping[str, Any], fmt: str, text: str, *, streaming: bool = False
    ) -> None:
        message: dict[str, Any] = {
            "channel": channel,
            "ts": ts,
            "thread_ts": args.get("thread_ts"),
            "text": text,
            "format": fmt,
            "blocks": args.get("blocks"),
            "metadata": args.get("metadata"),
            "streaming": streaming,
            "updates": 0,
            "at": time.monotonic(),  # when it became visible
        }
        self.messages.append(message)
        shown = self.assistant_threads.get((channel, str(args.get("thread_ts"))))
        if shown is not None:
            shown["status"] = ""  # Slack clears an assistant thread's status when the app replies in it

    @staticmethod
    def _markdown_of(args: Mapping[str, Any]) -> str:
        text = str(args.get("markdown_text") or "")
        chunks = args.get("chunks")
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        for chunk in chunks or []:
            if isinstance(chunk, dict) and chunk.get("type") == "markdown_text":
                text += str(chunk.get("text") or "")
        return text

    def _replies(self, channel: str, args: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The bot's messages in a thread as ``conversations.replies`` lists them (its own posts only:
        people's messages are not kept here), metadata included when asked for."""
        oldest = float(args.get("oldest") or 0)
        with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        listed = []
        for m in self.thread(channel, str(args.get("ts", ""))):
            if float(m["ts"]) < oldest:
                continue
            shown = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": m["ts"]}
            shown.update({"text": m["text"], "thread_ts": m["thread_ts"], "blocks": m.get("blocks") or []})
            if with_metadata and m.get("metadata"):
                shown["metadata"] = m["metadata"]
            listed.append(shown)
        return listed

    def _live(self, channel: str, ts: str, *, streaming: bool | None = None) -> dict[str, Any]:
        message = self.message(channel, ts)
        if message is None or message.get("deleted"):
            raise _Refused("message_not_found")
        if streaming is not None and bool(message.get("streaming")) != streaming:
            raise _Refused("message_not_in_streaming_state" if streaming else "cant_update_message")
        return message

    def _oauth_access(self, authorization: str, args: Mapping[str, Any]) -> dict[str, Any]:
        try:
            pair = base64.b64decode(authorization.removeprefix("Basic ")).decode()
        except ValueError:
            pair = ""
        given = pair or f"{args.get('client_id', '')}:{args.get('client_secret', '')}"
        if given != f"{self.client_id}:{self.client_secret}":
            return {"ok": False, "error": "invalid_client"}
        token = self.oauth_codes.pop(str(args.get("code") or ""), None)
        if token is None:
            return {"ok": False, "error": "invalid_code"}
        ws = self.workspaces[token]
        return {
            "ok": True,
            "app_id": APP_ID,
            "authed_user": {"id": ws["installer"]},
            "scope": "app_mentions:read,chat:write,commands",
            "token_type": "bot",
            "access_token": token,
            "bot_user_id": ws["user_id"],
            "team": {"id": ws["team_id"], "name": ws["team"]},
            "enterprise": None,
            "is_enterprise_install": False,
        }

    def _answer(self, method: str, args: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        ws = self.workspaces.get(token or "")
        if method == "auth.test" and ws is not None:
            return {
                "url": f"https://{ws['domain']}.slack.com/",
                "team": ws["team"],
                "user": "haven",
                "team_id": ws["team_id"],
                "user_id": ws["user_id"],
                "bot_id": ws["bot_id"],
                "is_enterprise_install": False,
            }
        if method == "auth.test":
            return {
                "url": f"https://{self.team_domain}.slack.com/",
                "team": "Haven Test",
                "user": "haven",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": self.bot_id,
                "is_enterprise_install": False,
            }
        if method == "chat.postMessage":
            ts = self.next_ts()
            message = {"type": "message", "user": self.bot_user_id, "bot_id": self.bot_id, "ts": ts}
            message.update({k: args[k] for k in ("text", "blocks", "thread_ts") if k in args})
            if args.get("markdown_text"):
                self._create(channel, ts, args, "markdown", str(args["markdown_text"]))
            else:
                self._create(channel, ts, args, "mrkdwn", str(args.get("text") or ""))
            return {"channel": channel, "ts": ts, "message": message}
        if method == "chat.postEphemeral":
            return {"message_ts": self.next_ts()}
        if method == "chat.startStream":
            if not args.get("thread_ts"):
                raise _Refused("invalid_arguments")
            if not channel.startswith("D") and not (
                args.get("recipient_user_id") and args.get("recipient_team_id")
            ):
                raise _Refused("missing_recipient_user_id")  # required outside DMs
            ts = self.next_ts()
            self._create(channel, ts, args, "markdown", self._markdown_of(args), streaming=True)
            return {"channel": channel, "ts": ts}
        if method == "chat.appendStream":
            shown = self._live(channel, str(args.get("ts")), streaming=True)
            shown["text"] += self._markdown_of(args)
            return {"channel": channel, "ts": shown["ts"]}
        if method == "chat.stopStream":
            shown = self._live(channel, str(args.get("ts")), streaming=True)
            shown["text"] += self._markdown_of(args)
            shown["streaming"] = False
            if args.get("blocks"):
                shown["blocks"] = args["blocks"]
            return {"channel": channel, "ts": shown["ts"], "message": {"ts": shown["ts"]}}
        if method == "chat.update":
            shown = self._live(channel, str(args.get("ts")), streaming=False)
            if args.get("markdown_text"):
                shown["text"], shown["format"] = str(args["markdown_text"]), "markdown"
            elif "text" in args:
                shown["text"], shown["format"] = str(args["text"]), "mrkdwn"
            if "blocks" in args:
                shown["blocks"] = args["blocks"]
            shown["updates"] += 1
            return {"channel": channel, "ts": args.get("ts")}
        if method == "chat.delete":
            shown = self._live(channel, str(args.get("ts")))
            shown["deleted"] = True
            return {"channel": channel, "ts": args.get("ts")}
        if method == "conversations.replies":
            return {"messages": self._replies(channel, args), "has_more": False}
        if method in HISTORY_METHODS:
            return {"messages": [], "has_more": False}
        if method == "chat.getPermalink":
            return {"channel": channel, "permalink": self.permalink(channel, str(args.get("message_ts")))}
        if method == "users.info":
            user_id = str(args.get("user"))
            return {"user": self.users.get(user_id) or self.add_user(user_id)}
        if method in ("views.open", "views.update", "views.push"):
            view = args.get("view") or {}
            return {"view": {"id": "V" + uuid.uuid4().hex[:10].upper(), **view}}
        if method.startswith("assistant.threads."):
            return self._assistant_thread(method.rsplit(".", 1)[1], args)
        if method == "conversations.open":
            return {"channel": {"id": "D" + str(args.get("users", "X")).split(",")[0]}}
        if method == "apps.connections.open":
            return {"url": self.url.replace("http://", "ws://") + "/socket"}
        return {}

    def _assistant_thread(self, action: str, args: Mapping[str, Any]) -> dict[str, Any]:
        channel, thread_ts = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if not channel or not thread_ts:
            raise _Refused("invalid_arguments")
        shown = self.assistant_threads.setdefault((channel, thread_ts), _new_assistant_thread())
        if action == "setStatus":
            if "status" not in args:
                raise _Refused("invalid_arguments")
            shown["status"] = str(args["status"])
        elif action == "setTitle":
            if not args.get("title"):
                raise _Refused("invalid_arguments")
            shown["title"] = str(args["title"])
        elif action == "setSuggestedPrompts":
            prompts = args.get("prompts")
            if isinstance(prompts, str):
                prompts = json.loads(prompts)
            if not isinstance(prompts, list) or not 0 < len(prompts) <= 4:
                raise _Refused("invalid_arguments")
            if not all(isinstance(p, dict) and p.get("title") and p.get("message") for p in prompts):
                raise _Refused("invalid_arguments")
            shown["prompts"] = prompts
        else:
            raise _Refused("unknown_method")
        return {}

    @staticmethod
    def _json(data: Any) -> web.Response:
        return web.Response(body=json.dumps(data).encode(), content_type="application/json")


def _new_assistant_thread() -> dict[str, Any]:
    return {"status": "", "title": None, "prompts": []}


class _Refused(Exception):
    """A method call Slack would answer with ``{"ok": false, "error": <message>}``."""
