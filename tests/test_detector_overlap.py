"""No detector string is copied from the evaluation data (``scripts/overlap_check.py``).

Rules describe linguistic families; their examples, counter-examples and comments are written in our own
words. A detector string (rule data or detector Python: patterns, examples, comments) that shares a run of
five tokens with an evaluation row is a row fitted into the rules, and the held-out measurement would
reward it falsely. The data folder is found as ``test_detectors_eval`` finds it, and is required on CI.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.eval_data import data_dir_or_skip

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("overlap_check", ROOT / "scripts" / "overlap_check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


overlap = _load()


@pytest.fixture(scope="module")
def data_dir() -> Path:
    return data_dir_or_skip(
        lambda p: any(p.glob("*.jsonl")), "check the detectors against the evaluation data"
    )


def test_no_detector_string_shares_five_tokens_with_an_evaluation_row(data_dir: Path) -> None:
    hits = overlap.find_overlaps(data_dir, root=ROOT)
    report = "\n".join(overlap.format_hit(h) for h in hits)
    assert not hits, f"detector strings copied from evaluation rows (reword or generalise them):\n{report}"


def test_the_check_finds_a_planted_copy(tmp_path: Path) -> None:
    rows = [
        {"text": "Honestly I can't stand my noisy upstairs neighbours at all", "label": 0},
        {"turns": [{"role": "user", "text": "我今天真的非常开心呀"}], "label": 0},
    ]
    (tmp_path / "Z.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")

    def s(text: str, pieces: tuple[str, ...] | None = None) -> object:
        return overlap.DetectorString("x.toml", 1, "test", text, pieces or (text,))

    strings = [
        s("i cannot stand my noisy upstairs neighbours"),  # contraction and case folded: a copy
        s(grouped := "(can not|cannot) stand my noisy upstairs", tuple(overlap.pattern_pieces(grouped))),
        s(plain := "can not stand my noisy upstairs", tuple(overlap.pattern_pieces(plain))),
        s("今天真的非常"),  # five characters of a row
        s("今天真的"),  # four are not a run
        s("my neighbours are noisy"),
    ]
    hits = overlap.find_overlaps(tmp_path, strings=strings)
    found = [h.string.text for h in hits]
    assert found == [strings[0].text, plain, "今天真的非常"]  # type: ignore[attr-defined]
    assert all(h.rows == 1 for h in hits)


def test_pattern_syntax_ends_a_run() -> None:
    pieces = overlap.pattern_pieces("{I} [{adv}] (would|will) be better off ...3 without me $")
    assert [p.strip() for p in pieces if p.strip()] == ["would", "will", "be better off", "without me"]
    assert overlap.pattern_pieces("_ ends *ly here") == [" ends ", " here"]
    assert [p.strip() for p in overlap.regex_pieces(r"\bdo\s+you (?:want|need) me to\b")] == [
        "do you",
        "want",
        "need",
        "me to",
    ]


def test_tokens_fold_case_accents_and_contractions() -> None:
    assert overlap.tokens("I'm NOT sure, don't") == ["i", "am", "not", "sure", "do", "not"]
    assert overlap.tokens("Qué día") == ["que", "dia"]
    assert overlap.tokens("想死了") == ["想", "死", "了"]
    assert overlap.tokens("আমি মরতে চাই") == ["আমি", "মরতে", "চাই"]  # vowel signs stay in their word
