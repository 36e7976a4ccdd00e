"""Text helpers every adapter shares: the one fence-aware message splitter."""

from __future__ import annotations

FENCE = "```"
# A reopened code block keeps its language tag only when it is short; a long "tag" is probably prose.
_MAX_OPENER = 16
_CLOSE = "\n" + FENCE


def split(text: str, limit: int) -> list[str]:
    """Split ``text`` into messages of at most ``limit`` characters.

    Cuts at a paragraph break, else a line break, else a space, and never through a run of backticks, an
    entity (``&amp;``) or an angle-bracket link or mention (``<https://…|label>``, ``<@U123>``). A text
    that fits is one message, as written. Once split, every message closes the code block it leaves
    open and the next one reopens it with the same opener (language tag included), so each message
    renders on its own. Blank text is no message at all.
    """
    if limit < 32:
        raise ValueError("limit too small")
    text = text.strip("\n")
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    reopened = 0  # length of the reopening fence line at the start of ``rest``
    while rest:
        open_at_end = rest.count(FENCE) % 2 == 1
        if len(rest) + (len(_CLOSE) if open_at_end else 0) <= limit:
            _append(parts, rest + (_CLOSE if open_at_end else ""))
            break
        room = limit - len(_CLOSE)
        cut = _cut_point(rest, room, max(room // 3, reopened + 1))
        head, rest = rest[:cut].rstrip("\n"), rest[cut:]
        if head.count(FENCE) % 2:
            opener = _opener(head)
            head += _CLOSE
            rest = opener + "\n" + rest.lstrip("\n")
            reopened = len(opener) + 1
        else:
            rest = rest.lstrip("\n")
            reopened = 0
        _append(parts, head)
    return parts


def split_head(text: str, limit: int, lo: int = 0) -> tuple[str, str]:
    """The first message of ``split`` and the rest, with the cut at or after ``lo``: a reply streamed so
    far as ``text[:lo]`` can finish with the head, which is a prefix of ``text`` (plus a closing fence
    when the cut falls inside a code block; the rest then reopens it)."""
    if len(text) <= limit:
        return text, ""
    room = limit - len(_CLOSE)
    cut = max(_cut_point(text, room, max(lo, room // 3)), lo)
    head, rest = text[:cut], text[cut:]
    if head.count(FENCE) % 2:
        return head + _CLOSE, _opener(head) + "\n" + rest.lstrip("\n")
    return head, rest.strip()


def _append(parts: list[str], part: str) -> None:
    body = part.strip()
    empty_block = body.startswith(FENCE) and body.endswith(_CLOSE) and "\n" not in body[: -len(_CLOSE)]
    if body and body != FENCE * 2 and not empty_block:
        parts.append(part)


def _opener(head: str) -> str:
    """The fence line that opened the code block still open at the end of ``head``."""
    at = head.rfind(FENCE)
    line = head[head.rfind("\n", 0, at) + 1 :].split("\n", 1)[0].strip()
    return line if line.startswith(FENCE) and len(line) <= _MAX_OPENER and " " not in line else FENCE


def _cut_point(text: str, room: int, floor: int) -> int:
    window = text[:room]
    for sep in ("\n\n", "\n", " "):
        at = window.rfind(sep)
        if at >= floor:
            return at + (len(sep) if sep == " " else 0)
    cut = room
    # Never cut through a code fence, an entity (&amp;) or a link (<url|label>).
    while cut > floor and text[cut - 1] == "`" and text[cut] == "`":
        cut -= 1
    amp = window.rfind("&", max(0, cut - 8))
    if amp > floor and ";" not in window[amp:cut]:
        cut = amp
    lt = window.rfind("<", max(0, cut - 400))
    if lt != -1 and ">" not in window[lt:cut] and lt > floor:
        cut = lt
    return cut
