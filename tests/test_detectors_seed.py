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

ROOT = Path(__file__).resolve().parents[1]

# The examples of the "likely" rules: many wake several of them at once, and the reading stops at the
# first, so that is where an order shows.
SCRIPT = """
import json, sys
from bot.detectors.risk import assess_risk
from bot.detectors.rules import load_rule_files
rules = [r for r in load_rule_files().rules if r.level == "likely" and r.lang == "en"]
texts = [ex for rule in rules for ex in rule.examples]
print(json.dumps([[a.level.name, a.kind, list(a.cues)] for a in map(assess_risk, texts)]))
"""


def _verdicts(seed: str) -> list[list[object]]:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, cwd=ROOT, capture_output=True, text=True, check=True
    )
    verdicts: list[list[object]] = json.loads(out.stdout)
    return verdicts


def test_cues_are_the_same_under_every_hash_seed() -> None:
    first = _verdicts("1")
    assert len(first) > 50
    assert _verdicts("2") == first
