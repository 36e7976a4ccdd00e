"""The risk detector's verdict, cues included, does not depend on Python's string hashing.

Sets of strings iterate in an order that follows PYTHONHASHSEED, which differs between processes: a
verdict that took its order from one would name different cues for the same message in two workers of
one deployment (and in the audit record and the verifier's prompt).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bot.detectors import assess_risk
from bot.detectors.rules import load_rule_files

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys
from bot.detectors import assess_risk
texts = json.load(sys.stdin)
print(json.dumps([[a.level.name, a.kind, list(a.cues)] for a in map(assess_risk, texts)]))
"""


def _here(texts: list[str]) -> list[list[object]]:
    return [[a.level.name, a.kind, list(a.cues)] for a in map(assess_risk, texts)]


def _in_a_process_hashing_otherwise(texts: list[str]) -> list[list[object]]:
    # PYTHONHASHSEED=0 turns the randomisation off; any other value, or none, hashes otherwise.
    seed = "1" if os.environ.get("PYTHONHASHSEED") == "0" else "0"
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        input=json.dumps(texts),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    verdicts: list[list[object]] = json.loads(out.stdout)
    return verdicts


def test_cues_are_the_same_under_another_hash_seed() -> None:
    # The examples of the English "likely" rules: many wake several of them at once, and the reading
    # stops at the first, so that is where an order shows.
    rules = [r for r in load_rule_files().rules if r.level == "likely" and r.lang == "en"]
    texts = [ex for rule in rules for ex in rule.examples]
    assert len(texts) > 50
    assert _in_a_process_hashing_otherwise(texts) == _here(texts)
