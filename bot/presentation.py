"""What a person sees, decided once: a turn's result becomes an ordered sequence of neutral items.

Adapters draw the items in order with their ``bot.ports.Renderer`` (Block Kit, embeds, plain text) and
decide nothing themselves. The rules that live here and nowhere else:

- **Help first.** When a turn carries crisis resources, the card comes before the reply. A streaming
  adapter shows it before the reply's first words (``bot.ports.HelpFirst``) whenever the risk is known
  that early: the detector flagged the message, or the model called the crisis tool before writing.
  Only a reply already on screen before the risk was known stays first, the card directly after it.
- **Refusals are private.** A command refused (not your conversation, not your message) is a private
  notice to the person who asked; a renderer draws it privately where its platform can (Slack ephemeral,
  Discord ephemeral interaction reply) and as a short line where it cannot.
- **An ended thread answers once.** Each person who writes in an ended conversation is told once,
  privately, how to start anew or fork (``TurnStatus.ENDED_REMINDER``); after that, silence.
- **A failed turn is never silent.** The failure note is the reply (``Reply.failed``), after whatever of
  the reply was already shown.
- **Admins get content-free alerts** (``AlertNotice``): where, why, how many warnings.
- **The end command answers the person who used it**, privately: refused (why), already ended, or
  closed (after the closure notice everyone sees).
- **In the person's language.** ``strings`` (``bot.i18n.strings_for`` of the locale of the person the
  turn answers) chooses the words of everything Haven itself says here: the closure notice and its
  button, reminders, refusals, failure notes. The engine writes its fixed notes (``TURN_FAILED``, a
  model outage, a refusal of a command) in English, not knowing who reads them; they are translated
  here (``Strings.localise``). The crisis card carries its own language (``CrisisCard.language``).
  Admin alerts stay English: they are for the workspace's operators.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.i18n import Strings, english
from bot.notices import (
    ClosureText,
    PlatformHints,
    closure_text,
    default_crisis_message,
    ended_reminder,
    is_default_crisis,
)
from bot.types import AdminAlert, CrisisCard, TurnResult, TurnStatus

if TYPE_CHECKING:
    from bot.ports import Renderer


@dataclass(frozen=True, slots=True)
class Reply:
    """Haven's reply in the conversation (Markdown; the renderer splits it at its platform's limit).

    ``failed``: the turn failed and ``text`` is the short note, shown after whatever was streamed. An
    empty, not failed reply takes back a streamed reply that the turn ended without.
    """

    text: str
    failed: bool = False


@dataclass(frozen=True, slots=True)
class CrisisResources:
    """The workspace's crisis resources, shown in the conversation."""

    card: CrisisCard


@dataclass(frozen=True, slots=True)
class ClosureNotice:
    """The conversation has ended. Its feedback action ("this ending was a mistake") reports on
    ``conversation_id``."""

    conversation_id: str
    text: ClosureText


@dataclass(frozen=True, slots=True)
class PrivateNotice:
    """For one person only (``user_id``): a refusal, the ended-thread reminder."""

    user_id: str
    text: str


@dataclass(frozen=True, slots=True)
class AlertNotice:
    """A content-free notice for the workspace's alert channel."""

    alert: AdminAlert


Item = Reply | CrisisResources | ClosureNotice | PrivateNotice | AlertNotice


def present(
    result: TurnResult,
    *,
    user_id: str,
    hints: PlatformHints,
    strings: Strings | None = None,
    reply_shown: bool = False,
    end_command: bool = False,
) -> tuple[Item, ...]:
    """The items to draw for ``result``, in order.

    ``user_id`` is the person the turn answers (private notices go to them); ``hints`` say how things
    are done on the platform, and ``strings`` are that person's language (English when None);
    ``reply_shown`` is true when part of the reply is already on screen (a stream that has shown text),
    so it stays where it is; ``end_command``: ``result`` answers the end command
    (``Engine.end_by_command``) of ``user_id``.
    """
    t = strings or english()
    if end_command:
        if result.status is TurnStatus.ENDED_SILENT:
            return (PrivateNotice(user_id, t("notice.already_ended")),)
        shown = present(result, user_id=user_id, hints=hints, strings=t)
        closed = (PrivateNotice(user_id, t("notice.closed")),) if result.closure is not None else ()
        return shown + closed
    status = result.status
    if status in (TurnStatus.DUPLICATE, TurnStatus.ENDED_SILENT):
        return ()
    if status is TurnStatus.ENDED_REMINDER:
        return (PrivateNotice(user_id, ended_reminder(hints, t)),)
    if status is TurnStatus.IGNORED:
        return tuple(PrivateNotice(user_id, t.localise(text)) for text in result.replies if text.strip())
    items: list[Item] = []
    reply: Reply | None = None
    if result.error:
        reply = Reply(t.localise(result.error), failed=True)
    else:
        text = "\n\n".join(r for r in result.replies if r.strip())
        if text or reply_shown:
            reply = Reply(text)
    crisis = result.crisis or (result.closure.crisis if result.closure is not None else None)
    if crisis is not None:
        crisis = _for_reader(crisis, t)
    card = CrisisResources(crisis) if crisis is not None and not result.crisis_shown else None
    first, second = (reply, card) if reply_shown else (card, reply)
    items.extend(i for i in (first, second) if i is not None)
    if result.closure is not None:
        items.append(
            ClosureNotice(result.closure.conversation_id, closure_text(result.closure.reason, hints, t))
        )
    if result.alert is not None:
        items.append(AlertNotice(result.alert))
    return tuple(items)


def _for_reader(card: CrisisCard, t: Strings) -> CrisisCard:
    """The card in the reader's language when it was made without knowing it (the end command): the
    built-in resources translated, an admin's text as written under a heading in the reader's language."""
    if card.language == t.language:
        return card
    text = default_crisis_message(t) if is_default_crisis(card.text) else card.text
    return CrisisCard(text, t.language)


async def draw(renderer: Renderer, items: Sequence[Item]) -> None:
    """Draw ``items`` in order, each with the renderer's method for its kind."""
    for item in items:
        match item:
            case Reply():
                await renderer.reply(item)
            case CrisisResources():
                await renderer.crisis_card(item)
            case ClosureNotice():
                await renderer.closure(item)
            case PrivateNotice():
                await renderer.private_notice(item)
            case AlertNotice():
                await renderer.admin_alert(item)


async def render(
    renderer: Renderer,
    result: TurnResult,
    *,
    user_id: str,
    hints: PlatformHints,
    strings: Strings | None = None,
    reply_shown: bool = False,
    end_command: bool = False,
) -> tuple[Item, ...]:
    """``present`` then ``draw``: what adapters call with a turn's result. Returns the items drawn."""
    items = present(
        result,
        user_id=user_id,
        hints=hints,
        strings=strings,
        reply_shown=reply_shown,
        end_command=end_command,
    )
    await draw(renderer, items)
    return items
