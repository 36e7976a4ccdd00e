#!/usr/bin/env python3
"""List detector strings that share a run of words with an evaluation row.

The local detectors (``bot/detectors``) must describe linguistic families, never one row of the
evaluation data: no phrase copied from an evaluation file, in a rule, an example, a counter-example or a
comment. This check lowercases and tokenises

* every string of the rule data (``bot/detectors/data/*.toml``: patterns, macros, unless, examples,
  counter-examples, family descriptions) and every comment there,
* every string literal and comment of the detector Python files (``bot/detectors/*.py``),
* every text of every evaluation row (``text``, each turn's ``text``, string values under ``meta``),

and prints each detector string that shares a run of at least ``--min-run`` (5) consecutive tokens with
one or more rows: the file, the line, the string (for a pattern, the literal piece that matches) and the
number of rows. The rows themselves are never printed.

Tokens are words of any script (accents off Latin letters, English contractions expanded); Chinese and
Japanese characters count one token each, so a run of five is a character 5-gram. In a pattern the
syntax (``( | ) [ ] {macro} _ ...N $ *ly``) ends a run: a pattern is measured by its literal pieces, not
by the phrases its alternations and macros can produce.

Usage: ``python scripts/overlap_check.py [DATA_DIR]`` (default: ``$HAVEN_EVAL_DATA`` or
``../shared/eval-data`` next to the repository). Exit status 1 when there is any hit. Stdlib only.
"""

from __future__ import annotations

import argparse
import ast
import io
import itertools
import json
import os
import re
import sys
import tokenize
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DETECTORS = REPO / "bot" / "detectors"
ENV_VAR = "HAVEN_EVAL_DATA"
MIN_RUN = 5

# Keys of the rule data whose values are prose rather than pattern syntax.
TEXT_KEYS = frozenset({"examples", "counter", "family", "id", "level", "lang", "kind"})

_CONTRACTIONS = {
    "can't": "can not",
    "won't": "will not",
    "shan't": "shall not",
    "ain't": "is not",
    "dont": "do not",
    "didnt": "did not",
    "doesnt": "does not",
    "cant": "can not",
    "cannot": "can not",
    "couldnt": "could not",
    "wouldnt": "would not",
    "shouldnt": "should not",
    "isnt": "is not",
    "arent": "are not",
    "wasnt": "was not",
    "werent": "were not",
    "havent": "have not",
    "hasnt": "has not",
    "im": "i am",
    "ive": "i have",
    "youre": "you are",
    "theyre": "they are",
    "wanna": "want to",
    "gonna": "going to",
}
_SUFFIXES = (
    ("n't", " not"),
    ("'m", " am"),
    ("'re", " are"),
    ("'ll", " will"),
    ("'ve", " have"),
    ("'d", " would"),
)
# Scripts written without spaces: one character is one token.
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _words(text: str) -> Iterator[str]:
    """Runs of letters, digits and combining marks (the vowel signs of Indic scripts), "'" inside."""
    word: list[str] = []
    for ch in text + " ":
        if _CJK.match(ch):
            if word:
                yield "".join(word)
                word = []
            yield ch
        elif ch.isalnum() or unicodedata.category(ch).startswith("M") or (ch == "'" and word):
            word.append(ch)
        elif word:
            yield "".join(word).rstrip("'")
            word = []


# Pattern syntax of the rule data: groups, options, macros, wildcards, gaps, end of clause, "*ly".
# What stands for unknown words in a pattern, so that a phrase of the pattern cannot run across it.
_RUN_BREAK = re.compile(r"\$|\{[^}]*\}|\.\.\.\d+|(?<!\S)_(?!\S)|(?<!\S)\*\S+|\S+\*")
# A pattern's phrases beyond this many (a run with many groups) are not written out.
MAX_EXPANSIONS = 512
_PATTERN_BREAK = re.compile(r"[()\[\]|$]|\{[^}]*\}|\.\.\.\d+|(?<!\S)_(?!\S)|(?<!\S)\*\S+")
# Regular-expression syntax in Python string literals; whitespace classes and word boundaries join words.
_REGEX_SPACE = re.compile(r"\\s[+*?]?|\\b")
_REGEX_BREAK = re.compile(r"\\[a-zA-Z]|\(\?[:!=<]*|[()\[\]|{}^$*+?]")


def _fold(text: str) -> str:
    text = text.casefold().replace("\u2019", "'").replace("\u2018", "'")
    out: list[str] = []
    for ch in unicodedata.normalize("NFKD", text):
        # Accents off Latin letters only: the vowel signs of Indic scripts are combining marks too.
        if unicodedata.combining(ch) and out and "a" <= out[-1] <= "z":
            continue
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def tokens(text: str) -> list[str]:
    """Lowercased words (one token per CJK character), English contractions expanded."""
    result: list[str] = []
    for word in _words(_fold(text)):
        if word in _CONTRACTIONS:
            result.extend(_CONTRACTIONS[word].split())
            continue
        for suffix, full in _SUFFIXES:
            if word.endswith(suffix) and len(word) > len(suffix):
                word = word[: -len(suffix)] + full
                break
        result.extend(w for w in word.replace("'", " ").split() if w)
    return result


def ngrams(toks: list[str], n: int) -> Iterator[tuple[str, ...]]:
    for i in range(len(toks) - n + 1):
        yield tuple(toks[i : i + n])


def pattern_pieces(pattern: str, expand: bool = False) -> list[str]:
    """The literal pieces of a rule pattern, between its syntax. With ``expand``: the phrases it reads,
    each run between the syntax that stands for unknown words (macros, gaps, ``$``, word prefixes) with
    every alternative of its groups written out, an optional group both with and without its words (a
    run with more than ``MAX_EXPANSIONS`` phrases is measured by its literal pieces only)."""
    if not expand:
        return [p for p in _PATTERN_BREAK.split(pattern) if p.strip()]
    phrases: list[str] = []
    for run in _RUN_BREAK.split(pattern):
        if not run.strip():
            continue
        expanded = _expand(run)
        if expanded is None:
            phrases.extend(p for p in _PATTERN_BREAK.split(run) if p.strip())
        else:
            phrases.extend(" ".join(e.split()) for e in expanded if e.strip())
    return list(dict.fromkeys(phrases))


def _expand(run: str) -> list[str] | None:
    """Every phrase of ``run`` (words, ``( | )`` and ``[ | ]`` groups), or None past ``MAX_EXPANSIONS``
    or on unbalanced brackets."""
    pos = 0

    def sequence(closing: str | None) -> list[str] | None:
        nonlocal pos
        alternatives: list[list[str]] = []
        current = [""]
        while pos < len(run):
            ch = run[pos]
            if ch in "([":
                pos += 1
                inner = sequence(")" if ch == "(" else "]")
                if inner is None:
                    return None
                if ch == "[":
                    inner = [*inner, ""]
                current = [f"{a} {b}" for a in current for b in inner]
            elif ch in ")]":
                if ch != closing:
                    return None
                pos += 1
                return [*(x for alt in alternatives for x in alt), *current]
            elif ch == "|":
                pos += 1
                alternatives.append(current)
                current = [""]
            else:
                end = pos
                while end < len(run) and run[end] not in "()[]|":
                    end += 1
                current = [c + run[pos:end] for c in current]
                pos = end
            if sum(map(len, alternatives)) + len(current) > MAX_EXPANSIONS:
                return None
        if closing is not None:
            return None
        return [*(x for alt in alternatives for x in alt), *current]

    return sequence(None)


def regex_pieces(literal: str) -> list[str]:
    """The literal pieces of a Python string; regular-expression syntax ends a run."""
    if not any(c in literal for c in "\\|()[]"):
        return [literal]
    return [p for p in _REGEX_BREAK.split(_REGEX_SPACE.sub(" ", literal)) if p.strip()]


@dataclass(frozen=True)
class DetectorString:
    file: str  # relative to the repository
    line: int
    where: str  # "rule <id> examples", "macros.want", "comment", "string" ...
    text: str
    pieces: tuple[str, ...]  # the runs measured (the text itself, or a pattern's literal pieces)


@dataclass(frozen=True)
class Hit:
    string: DetectorString
    piece: str
    run: str  # the first shared run of tokens, as the detector string has it
    rows: int


def _line_of(source: str, needle: str, start: int = 0) -> int:
    at = source.find(needle, start)
    return source.count("\n", 0, at) + 1 if at >= 0 else 0


def _toml_strings(path: Path, rel: str, expand: bool = False) -> Iterator[DetectorString]:
    source = path.read_text("utf-8")
    data = tomllib.loads(source)

    def walk(value: object, where: str, key: str) -> Iterator[DetectorString]:
        if isinstance(value, str):
            text_mode = key in TEXT_KEYS
            pieces = (value,) if text_mode else tuple(pattern_pieces(value, expand))
            # A TOML string is written with escapes; its first words locate it well enough.
            line = _line_of(source, value[:40]) or _line_of(source, value.split(" ")[0])
            yield DetectorString(rel, line, where, value, pieces)
        elif isinstance(value, dict):
            for k, v in value.items():
                yield from walk(v, f"{where}.{k}" if where else k, k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                if isinstance(v, dict) and "id" in v:
                    yield from walk(v, f"rule {v['id']}", key)
                else:
                    yield from walk(v, where if isinstance(v, str) else f"{where}[{i}]", key)
            # With ``expand``, two neighbouring entries read on, one into the other: a run may span them.
            texts = [v for v in value if isinstance(v, str)] if expand else []
            for a, b in itertools.pairwise(texts):
                if key in TEXT_KEYS:
                    ends = (a, b)
                else:
                    ends = (
                        (pattern_pieces(a, expand)[-1:] or [""])[0],
                        (pattern_pieces(b, expand)[:1] or [""])[0],
                    )
                joined = f"{ends[0]} {ends[1]}"
                line = _line_of(source, b[:40]) or _line_of(source, b.split(" ")[0])
                yield DetectorString(rel, line, f"{where} (two neighbours)", joined, (joined,))

    yield from walk(data, "", "")
    for number, line in enumerate(source.splitlines(), 1):
        # Comments: a '#' outside a string (the rule data keeps '#' out of its strings).
        if "#" in line and line.count('"', 0, line.index("#")) % 2 == 0:
            comment = line[line.index("#") + 1 :].strip()
            if comment:
                yield DetectorString(rel, number, "comment", comment, (comment,))


def _python_strings(path: Path, rel: str) -> Iterator[DetectorString]:
    source = path.read_text("utf-8")
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comment = tok.string.lstrip("#").strip()
            if comment:
                yield DetectorString(rel, tok.start[0], "comment", comment, (comment,))
        elif tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # f-strings with fields: measure the raw text
                value = tok.string
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str) and value.strip():
                yield DetectorString(rel, tok.start[0], "string", value, tuple(regex_pieces(value)))


def detector_strings(root: Path = REPO, expand: bool = False) -> list[DetectorString]:
    found: list[DetectorString] = []
    base = root / "bot" / "detectors"
    for path in sorted((base / "data").glob("*.toml")):
        found.extend(_toml_strings(path, path.relative_to(root).as_posix(), expand))
    for path in sorted(base.glob("*.py")):
        found.extend(_python_strings(path, path.relative_to(root).as_posix()))
    return found


def _all_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _all_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _all_strings(v)


def _row_texts(row: dict[str, object]) -> Iterator[str]:
    """A row's message, every turn of a window, and the strings under ``meta`` (e.g. a source text)."""
    if isinstance(row.get("text"), str):
        yield str(row["text"])
    for turn in row.get("turns") or ():  # type: ignore[attr-defined]
        if isinstance(turn, dict) and isinstance(turn.get("text"), str):
            yield turn["text"]
    yield from _all_strings(row.get("meta"))


def eval_index(data_dir: Path, n: int = MIN_RUN) -> dict[tuple[str, ...], list[int]]:
    """Every run of ``n`` tokens in the evaluation rows -> the rows (by number) that contain it."""
    index: dict[tuple[str, ...], list[int]] = {}
    row_id = 0
    for path in sorted(data_dir.glob("*.jsonl")):
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if not line.strip():
                    continue
                row_id += 1
                seen: set[tuple[str, ...]] = set()
                for text in _row_texts(json.loads(line)):
                    seen.update(ngrams(tokens(text), n))
                for gram in seen:
                    index.setdefault(gram, []).append(row_id)
    return index


def find_overlaps(
    data_dir: Path, root: Path = REPO, n: int = MIN_RUN, strings: Iterable[DetectorString] | None = None
) -> list[Hit]:
    index = eval_index(data_dir, n)
    hits: list[Hit] = []
    for s in strings if strings is not None else detector_strings(root):
        for piece in s.pieces:
            rows: set[int] = set()
            first = ""
            for gram in ngrams(tokens(piece), n):
                found = index.get(gram, ())
                if found and not first:
                    first = " ".join(gram)
                rows.update(found)
            if rows:
                hits.append(Hit(s, piece.strip(), first, len(rows)))
    return hits


def default_data_dir() -> Path:
    override = os.environ.get(ENV_VAR)
    return Path(override) if override else REPO.parent / "shared" / "eval-data"


def format_hit(hit: Hit) -> str:
    s = hit.string
    shown = hit.piece if len(hit.piece) <= 160 else hit.piece[:157] + "..."
    return f"{s.file}:{s.line}\t{s.where}\t{shown!r}\trun={hit.run!r}\trows={hit.rows}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=None, help="evaluation data folder")
    parser.add_argument("--min-run", type=int, default=MIN_RUN, help="tokens in a shared run (default 5)")
    parser.add_argument(
        "--expand",
        action="store_true",
        help="also write out each pattern's alternatives and optional words, and read neighbouring "
        "list entries on into each other (stricter; not yet clean)",
    )
    parser.add_argument("--single-row", action="store_true", help="only runs found in exactly one row")
    args = parser.parse_args(argv)
    data_dir = args.data_dir or default_data_dir()
    if not any(data_dir.glob("*.jsonl")):
        print(f"no evaluation data (*.jsonl) in {data_dir}", file=sys.stderr)
        return 2
    hits = find_overlaps(data_dir, n=args.min_run, strings=detector_strings(expand=args.expand))
    if args.single_row:
        hits = [h for h in hits if h.rows == 1]
    for hit in hits:
        print(format_hit(hit))
    print(f"{len(hits)} detector string(s) share a run of {args.min_run}+ tokens with an evaluation row")
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
