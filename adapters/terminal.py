"""The terminal adapter: the same engine driven from stdin/stdout (after errbot's text backend).

One conversation per session; ``/new`` starts the next. Works interactively and with piped input, one
user message per line, flushing output after every reply and exiting at end of input.

Each line is recorded in the durable inbox (``Engine.accept``) before its turn runs, like a platform
event before its acknowledgement; a line the database cannot record is not taken (the person is told to
send it again). ``_PrintRecovery`` prints what recovery answers: a turn that failed here, or one an
earlier session left unanswered.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TextIO

from bot.engine import Engine
from bot.failures import log_failure
from bot.i18n import Strings, english, strings_for
from bot.notices import DATABASE_UNAVAILABLE, PlatformHints, model_alert_text, reason_phrase
from bot.ports import ReplyStream, StorageUnavailable
from bot.presentation import AlertNotice, ClosureNotice, CrisisResources, PrivateNotice, Reply, render
from bot.types import (
    Author,
    CrisisCard,
    ForkRequest,
    InboxEntry,
    IncomingMessage,
    Origin,
    ThreadRef,
    TurnResult,
    TurnStatus,
)

log = logging.getLogger(__name__)

PLATFORM = "terminal"
WORKSPACE = "local"
CHANNEL = "terminal"


def hints(strings: Strings) -> PlatformHints:
    return PlatformHints(new_conversation=strings("terminal.hint_new"), fork=strings("terminal.hint_fork"))


HINTS = hints(english())

HELP = """\
Commands:
  /new             start a new conversation
  /end             close this conversation
  /fork N <text>   continue from your message N (see /history) with new text, in a new conversation
  /feedback <text> report that the last ending was a mistake
  /history         show this conversation's messages, numbered
  /help            this help
  /quit            leave (end of input works too)"""


class _PrintStream:
    """Prints a reply as it is written. Snapshots normally extend each other; a retry may rewind."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self.shown = ""

    async def update(self, text: str) -> None:
        if not self.shown:
            self._out.write("haven: ")
        if text.startswith(self.shown):
            self._out.write(text[len(self.shown) :])
        else:
            self._out.write(" …(retrying)\nhaven: " + text)
        self._out.flush()
        self.shown = text

    async def crisis_card(self, card: CrisisCard) -> bool:
        if self.shown:
            return False
        self._out.write(_framed(card) + "\n")
        self._out.flush()
        return True

    def finish(self, final: str) -> bool:
        """Complete the printed line; False when nothing was streamed and the caller should print."""
        if not self.shown:
            return False
        if final.startswith(self.shown):
            self._out.write(final[len(self.shown) :] + "\n")
        else:
            self._out.write("\nhaven: " + final + "\n")
        self._out.flush()
        return True


@dataclass
class TerminalRenderer:
    """The plain reference ``bot.ports.Renderer``: every item as lines of text, in the order given.

    A terminal has one reader, so a private notice is just printed; the closure's feedback action is
    the ``/feedback`` command. ``stream`` is the turn's reply as it was printed while written, if any.
    """

    def __init__(
        self,
        out: TextIO,
        stream: _PrintStream | None = None,
        *,
        on_closure: Callable[[str], None] | None = None,
    ) -> None:
        self._out = out
        self._stream = stream
        self._on_closure = on_closure

    async def reply(self, item: Reply) -> None:
        stream = self._stream
        if stream is not None and stream.shown and (item.failed or not item.text):
            # A stream that failed half-way (or was taken back) is finished, never left hanging.
            self._say(" …")
        elif stream is not None and stream.finish(item.text):
            return
        if item.text:
            self._say(f"haven: {item.text}")

    async def crisis_card(self, item: CrisisResources) -> None:
        self._say(_framed(item.card))

    async def closure(self, item: ClosureNotice) -> None:
        if self._on_closure is not None:
            self._on_closure(item.conversation_id)
        text = item.text
        feedback = strings_for(text.language)("terminal.feedback")
        self._say(
            f"*** {text.title} ***\n{text.reason}\n{text.new_conversation}\n{text.fork}\n"
            f"{text.button}? {feedback}"
        )

    async def private_notice(self, item: PrivateNotice) -> None:
        self._say(item.text)

    async def admin_alert(self, item: AlertNotice) -> None:
        alert = item.alert
        if alert.kind == "model":
            self._say(f"(admin alert: {model_alert_text(alert.failures)})")
            return
        self._say(
            f"(admin alert: {alert.kind}, ended {reason_phrase(alert.reason)}, {alert.warnings} warnings)"
        )

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


@dataclass
class TerminalSession:
    thread: ThreadRef
    numbers: list[str] = field(default_factory=list)  # message ids of the user's messages, in order
    counter: int = 0
    last_ended: str | None = None


def new_thread() -> ThreadRef:
    return ThreadRef(PLATFORM, WORKSPACE, CHANNEL, uuid.uuid4().hex[:16])


class TerminalConnector:
    name = "terminal"

    def __init__(
        self,
        engine: Engine,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        user: str | None = None,
        locale: str | None = None,
    ) -> None:
        """``locale`` (``haven chat --locale es``): the language Haven's notices are in, also given to
        the model as the person's; English when None."""
        self._engine = engine
        self._locale = locale
        self._strings = strings_for(locale)
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        name = user or _login()
        # Whoever holds the terminal is the operator of this local workspace.
        self._author = Author(id=name, name=name, is_platform_admin=True)
        self._session = TerminalSession(new_thread())
        self._closed = False

    async def connect(self) -> None:
        # Recovery answers this platform's entries that no turn here is answering (see the module doc).
        self._engine.attach(PLATFORM, _PrintRecovery(self))
        if self._engine.rehearsal:
            self._say(
                "Haven (offline rehearsal model — set ANTHROPIC_API_KEY for Claude). /help for commands."
            )
        else:
            self._say("Haven. /help for commands.")

    async def disconnect(self) -> None:
        self._closed = True

    async def ready(self) -> bool:
        return True  # ``bot.ports.Connector.ready``: stdin needs no connection

    async def listen(self) -> None:
        interactive = self._in.isatty()
        while not self._closed:
            if interactive:
                self._out.write("you> ")
                self._out.flush()
            line = await asyncio.to_thread(self._in.readline)
            if not line:
                return
            line = line.rstrip("\r\n")
            if line.strip() in ("/quit", "/exit"):
                return
            await self.handle_line(line)

    async def handle_line(self, line: str) -> None:
        stripped = line.strip()
        if not stripped:
            return
        if stripped.startswith("/"):
            await self._command(stripped)
            return
        await self._message(stripped)

    async def _message(self, text: str) -> None:
        s = self._session
        s.counter += 1
        message_id = f"{s.thread.thread}:{s.counter}"
        msg = IncomingMessage(
            s.thread, self._author, text, message_id, origin=Origin.DIRECT, locale=self._locale
        )
        try:
            _, entry = await self._engine.accept(msg)
        except StorageUnavailable as exc:
            log_failure(log, "terminal message not accepted: database unavailable", exc)
            self._say(f"haven: {DATABASE_UNAVAILABLE} (your message was not taken; send it again)")
            return
        if entry is None:
            return  # nothing to answer (no words), or this very message was recorded already
        stream = _PrintStream(self._out)
        drawn = False

        async def deliver(result: TurnResult) -> None:
            nonlocal drawn
            drawn = True
            if result.status is TurnStatus.REPLIED:
                s.numbers.append(message_id)
            await self._render(result, stream)

        try:
            result = await self._engine.handle_message(entry.message, stream, deliver, entry)
        except Exception as exc:
            # The inbox keeps it: recovery answers it in a moment (``_PrintRecovery``).
            log_failure(log, "terminal turn failed; left to recovery", exc)
            return
        if not drawn and result.status is not TurnStatus.IGNORED:
            await self._render(result, stream)

    async def _command(self, line: str) -> None:
        cmd, _, rest = line.partition(" ")
        rest = rest.strip()
        if cmd == "/new":
            self._session = TerminalSession(new_thread(), last_ended=self._session.last_ended)
            self._say("New conversation started.")
            if rest:
                await self._message(rest)
        elif cmd == "/end":
            await self._render(
                await self._engine.end_by_command(self._session.thread, self._author), end_command=True
            )
        elif cmd == "/fork":
            await self._fork(rest)
        elif cmd == "/feedback":
            await self._feedback(rest)
        elif cmd == "/history":
            await self._history()
        elif cmd == "/help":
            self._say(HELP)
        else:
            self._say(f"Unknown command {cmd}. /help lists the commands.")

    async def _fork(self, rest: str) -> None:
        number, _, text = rest.partition(" ")
        if not number.isdigit() or not text.strip():
            self._say("Usage: /fork N <new text>   (N from /history)")
            return
        source = await self._engine.fork_source(self._session.thread, number=int(number))
        if source is None:
            self._say(f"There is no message {number} of yours in this conversation (see /history).")
            return
        thread = new_thread()
        result = await self._engine.fork(
            ForkRequest(
                source.conversation_id,
                source.message_id,
                thread,
                self._author,
                text.strip(),
                new_message_id=f"{thread.thread}:1",
            )
        )
        if result.status is TurnStatus.IGNORED:
            await self._render(result)
            return
        self._session = TerminalSession(thread, counter=1, last_ended=self._session.last_ended)
        history = await self._engine.history(thread)
        self._session.numbers = [
            m.platform_message_id or "" for m in history if m.role == "user" and m.kind == "text"
        ]
        self._say(f"Forked into a new conversation from your message {number}.")
        await self._render(result)

    async def _feedback(self, comment: str) -> None:
        target = self._session.last_ended
        if target is None:
            self._say("No ended conversation to report on in this session.")
            return
        await self._engine.record_feedback(PLATFORM, WORKSPACE, target, self._author.id, comment or None)
        self._say("Thank you — your report that this ending was a mistake was recorded.")

    async def _history(self) -> None:
        history = await self._engine.history(self._session.thread)
        if not history:
            self._say("(no messages yet)")
            return
        n = 0
        for m in history:
            if m.kind != "text":
                continue
            if m.role == "user":
                n += 1
                self._say(f"  {n}. you: {m.text}")
            else:
                text = "".join(str(b.get("text", "")) for b in m.content if b.get("type") == "text")
                self._say(f"     haven: {text}")

    async def _render(
        self, result: TurnResult, stream: _PrintStream | None = None, *, end_command: bool = False
    ) -> None:
        renderer = TerminalRenderer(self._out, stream, on_closure=self._ended)
        shown = stream is not None and bool(stream.shown)
        await render(
            renderer,
            result,
            user_id=self._author.id,
            hints=hints(self._strings),
            strings=self._strings,
            reply_shown=shown,
            end_command=end_command,
        )

    def _ended(self, conversation_id: str) -> None:
        self._session.last_ended = conversation_id

    def _say(self, text: str) -> None:
        self._out.write(text + "\n")
        self._out.flush()


class _PrintRecovery:
    """The terminal's ``bot.ports.RecoverySink``: a recovered answer is printed under the words it
    answers, so that an answer to an earlier line (or an earlier session's) is not mistaken for the
    answer to the last one."""

    def __init__(self, connector: TerminalConnector) -> None:
        self._connector = connector

    def reply_stream(self, entry: InboxEntry, on_ref: Callable[[str], Awaitable[None]]) -> ReplyStream:
        return _PrintStream(self._connector._out)

    async def draw(self, entry: InboxEntry, result: TurnResult, stream: ReplyStream | None) -> None:
        printed = stream if isinstance(stream, _PrintStream) else None
        self._connector._say(f"(answering your earlier message: {entry.message.text})")
        await self._connector._render(result, printed)

    async def message(self, entry: InboxEntry) -> IncomingMessage:
        return entry.message  # recorded with its author


_BOLD = re.compile(r"(\*\*|__)(.+?)\1", re.S)
_LINK = re.compile(r"\[([^\]]+)\]\((\S+?)\)")


def plain_text(markdown: str) -> str:
    """The crisis message's Markdown (``bot.notices``) as a terminal shows it: no ``**`` markers, links
    as ``text (url)``, list items as bullets."""
    text = _BOLD.sub(r"\2", markdown)
    text = _LINK.sub(r"\1 (\2)", text)
    return re.sub(r"(?m)^([ \t]*)[-*] ", "\\1• ", text)


def _framed(card: CrisisCard) -> str:
    title = strings_for(card.language)("terminal.crisis_title")
    return f"--- {title} ---\n" + plain_text(card.text) + "\n------------------------"


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "local"
