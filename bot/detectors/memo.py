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
        computed: dict[K, V] = {}
        for i, (key, value) in enumerate(zip(keys, found, strict=True)):  # a set iterates alike twice
            if value is None:
                value = computed.get(key)
                if value is None:
                    value = computed[key] = compute(key)
                found[i] = value
    return found  # type: ignore[return-value]  # every None was replaced above
