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
    missing = found.count(None)
    if not missing:
        return found  # type: ignore[return-value]  # no None among them
    # Only the new keys are visited, found by ``list.index`` at C speed: a long clause's thousands of
    # known tokens cost no Python step each.
    ordered = keys if isinstance(keys, (list, tuple)) else list(keys)  # a set iterates alike twice
    computed: dict[K, V] = {}
    i = -1
    for _ in range(missing):
        i = found.index(None, i + 1)
        key = ordered[i]
        value = computed.get(key)
        if value is None:
            value = computed[key] = compute(key)
        found[i] = value
    return found  # type: ignore[return-value]  # every None was replaced above
