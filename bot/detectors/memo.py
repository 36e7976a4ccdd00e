"""Looking many keys up in a detector's memo at once: the detectors read every token of a message
through a memo (most tokens are known), and a Python call per token was a large part of their time."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def looked_up(memo: Mapping[K, V], keys: Collection[K], compute: Callable[[K], V]) -> list[V]:
    """``memo[key]`` for each key, at C speed when all are known; a missing one is ``compute(key)``,
    once per distinct key (``compute`` fills the memo itself). The memo is read once per key: another
    thread may clear it meanwhile. Values are never None."""
    found: list[V | None] = list(map(memo.get, keys))
    if None in found:
        # Only the missing keys are visited in Python, found by ``list.index`` (C speed): a long clause's
        # few new tokens cost a step each, not a step for every one of its thousands of known tokens.
        ordered = keys if isinstance(keys, (list, tuple)) else list(keys)  # a set iterates alike twice
        computed: dict[K, V] = {}
        i = found.index(None)
        while True:
            key = ordered[i]
            value = computed.get(key)
            if value is None:
                value = computed[key] = compute(key)
            found[i] = value
            try:
                i = found.index(None, i + 1)
            except ValueError:
                break
    return found  # type: ignore[return-value]  # every None was replaced above
