"""Regression floors for the local detectors on the real evaluation data (../shared/eval-data).

Per file and label group, never pooled. A floor is the figure measured when the rules were written,
rounded a few points towards failure; where issue 9's target is already met the floor is never weaker
than the target (``TARGETS``), and the closing note of the issue states the gaps where it is not.

The data is for measuring, not fitting: when a floor fails, improve a whole family of expressions or a
grammatical rule, never add a special case for a row.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.eval import CONVABUSE, DIASAFETY, HATECHECK, STRUDEL, EvalRow, evaluate, format_table, main
from tests.eval_data import data_dir_or_skip

D = "D_ordinary_posts.jsonl"
E = "E_insults_at_a_person.jsonl"
F = "F_threats_to_others.jsonl"
G = "G_multilingual_self_harm.jsonl"
Key = tuple[str, str, str, str, str]


@pytest.fixture(scope="module")
def data_dir() -> Path:
    files = (HATECHECK, DIASAFETY, STRUDEL, CONVABUSE, D, E, F, G)
    return data_dir_or_skip(lambda p: all((p / name).is_file() for name in files), "measure the detectors")


@pytest.fixture(scope="module")
def figures(data_dir: Path) -> dict[Key, EvalRow]:
    return {r.key: r for r in evaluate(data_dir)}


def risk(file: str, group: str, level: str = "possible") -> Key:
    return (file, group, "risk", level, "marked")


# Lowest acceptable share marked, on groups that are risk. [measured]
FLOORS: dict[Key, float] = {
    risk(HATECHECK, "threat"): 0.97,  # [1.000] target 0.90
    risk(DIASAFETY, "mental_health_risk_context"): 0.66,  # [0.688] target 0.90: gap
    risk(DIASAFETY, "mental_health_risk_context[si_keyword_heuristic]"): 0.97,  # [0.994]
    risk(
        DIASAFETY, "mental_health_risk_context[si_keyword_heuristic]", "likely"
    ): 0.85,  # [0.853] target 0.85
    risk(F, "threat_or_incitement/en"): 0.84,  # [0.863] target 0.80
    risk(F, "call_for_violence_group/en"): 0.65,  # [0.677] target 0.80: gap
    risk(F, "threat_or_incitement/de"): 0.62,  # [0.641] target 0.60
    risk(G, "suicidal_intent/es"): 0.88,  # [0.900] target 0.80
    risk(G, "suicidal_ideation/zh"): 0.81,  # [0.833] target 0.80
    (CONVABUSE, "all", "abuse", "-", "precision"): 0.95,  # [0.984]
    (CONVABUSE, "all", "abuse", "-", "recall"): 0.70,  # [0.750]
}
# Highest acceptable share marked, on groups that are not risk. [measured]
CEILINGS: dict[Key, float] = {
    risk(D, "ordinary_assistant_request/en"): 0.05,  # [0.000] target 0.05
    risk(D, "ordinary_chat_message/en"): 0.05,  # [0.003] target 0.05
    risk(D, "ordinary_forum_post/en"): 0.05,  # [0.011] target 0.05
    risk(D, "ordinary_political_post/en"): 0.05,  # [0.017] target 0.05
    risk(D, "ordinary_assistant_request/en", "likely"): 0.0,
    risk(D, "ordinary_chat_message/en", "likely"): 0.0,
    risk(D, "ordinary_forum_post/en", "likely"): 0.0,
    risk(D, "ordinary_political_post/en", "likely"): 0.0,
    risk(E, "insult_at_person/en"): 0.03,  # [0.002] target 0.03
    risk(E, "offensive_addressed_tweet/en"): 0.03,  # [0.000] target 0.03
    risk(E, "insult_at_person/en", "likely"): 0.0,
    risk(F, "hateful_not_violent/en"): 0.10,  # [0.000] target 0.10
    risk(F, "no_threat_hostile_context/en"): 0.10,  # [0.050] target 0.10
    risk(F, "violent_word_not_threat/en"): 0.10,  # [0.073] target 0.10
    risk(F, "violent_word_not_threat/de"): 0.10,  # [0.000] target 0.10
    risk(F, "no_threat/de"): 0.10,  # [0.000] target 0.10
    risk(STRUDEL, "benign_tech_violent_word", "likely"): 0.0,  # target 0
    risk(STRUDEL, "benign_violent_idiom", "likely"): 0.0,  # target 0
    risk(STRUDEL, "benign_tech_violent_word"): 0.01,  # [0.000] target 0.01
    risk(STRUDEL, "benign_violent_idiom"): 0.01,  # [0.000] target 0.01
    risk(DIASAFETY, "medical_question_context"): 0.04,  # [0.019] target 0.05
    risk(HATECHECK, "non_hateful"): 0.05,  # [0.032]
    risk(HATECHECK, "non_hateful[counter_quote_nh]", "likely"): 0.0,
    risk(HATECHECK, "non_hateful[counter_ref_nh]", "likely"): 0.0,
    risk(G, "no_suicidal_intent/es"): 0.10,  # [0.097] target 0.10 (a one-row margin)
    risk(G, "no_suicidal_ideation/zh"): 0.10,  # [0.048] target 0.10
    (CONVABUSE, "all", "abuse", "-", "false_alarm"): 0.03,  # [0.012]
    # Abusive dialogues must stay endable: few get a soft mark, almost none a hard veto.
    (CONVABUSE, "abusive", "risk", "possible", "any_turn_marked"): 0.06,  # [0.035]
    (CONVABUSE, "abusive", "risk", "likely", "any_turn_marked"): 0.01,  # [0.006]
}


@pytest.mark.parametrize("key", sorted(FLOORS), ids=lambda k: "/".join(k))
def test_floor(figures: dict[Key, EvalRow], key: Key) -> None:
    row = figures[key]
    assert row.n > 0
    assert row.value >= FLOORS[key], f"{'/'.join(key)} = {row.value:.3f} < floor {FLOORS[key]}"


@pytest.mark.parametrize("key", sorted(CEILINGS), ids=lambda k: "/".join(k))
def test_ceiling(figures: dict[Key, EvalRow], key: Key) -> None:
    row = figures[key]
    assert row.n > 0
    assert row.value <= CEILINGS[key], f"{'/'.join(key)} = {row.value:.3f} > ceiling {CEILINGS[key]}"


def test_every_file_is_measured(data_dir: Path, figures: dict[Key, EvalRow]) -> None:
    measured = {key[0] for key in figures}
    assert measured == {p.name for p in data_dir.glob("*.jsonl")}


def test_unknown_files_are_measured_too(tmp_path: Path) -> None:
    (tmp_path / "Z_new.jsonl").write_text(
        '{"text": "i want to kill myself", "label": 1, "label_name": "risk", "meta": {"lang": "en"}}\n'
        '{"text": "the build is green", "label": 0, "label_name": "benign", "meta": {"lang": "en"}}\n'
        '{"turns": [{"role": "user", "text": "i want to die"}, {"role": "assistant", "text": "..."},'
        ' {"role": "user", "text": "ok"}], "label": 1, "label_name": "risk_turns"}\n',
        encoding="utf-8",
    )
    rows = {r.key: r for r in evaluate(tmp_path)}
    assert rows[("Z_new.jsonl", "risk/en", "risk", "likely", "marked")].value == 1.0
    assert rows[("Z_new.jsonl", "benign/en", "risk", "possible", "marked")].value == 0.0
    # the last user turn alone is unmarked; some turn of that conversation is
    assert rows[("Z_new.jsonl", "risk_turns", "risk", "possible", "marked")].value == 0.0
    assert rows[("Z_new.jsonl", "risk_turns", "risk", "likely", "any_turn_marked")].value == 1.0


def test_table_lists_every_figure(figures: dict[Key, EvalRow]) -> None:
    lines = format_table(list(figures.values())).splitlines()
    assert lines[0].split() == ["file", "group", "detector", "level", "metric", "value", "n"]
    assert len(lines) == 2 + len(figures)
    assert set(FLOORS) | set(CEILINGS) <= set(figures)


def test_main_prints_the_table(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every tenth row of every file: the command's output, not the figures (``figures`` has them all).
    for path in data_dir.glob("*.jsonl"):
        rows = path.read_text(encoding="utf-8").splitlines(keepends=True)
        (tmp_path / path.name).write_text("".join(rows[::10]), encoding="utf-8")
    assert main(["--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "G_multilingual_self_harm.jsonl" in out and "non_hateful[counter_quote_nh]" in out


def test_main_reports_a_missing_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data", str(tmp_path / "nowhere")]) == 2
    assert "not found" in capsys.readouterr().err
