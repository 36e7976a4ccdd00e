"""``bot.detectors.memo.looked_up``: every key's value, the missing ones computed once each."""

from __future__ import annotations

import pytest

from bot.detectors.memo import looked_up


@pytest.mark.parametrize(
    ("memo", "keys", "values", "computed"),
    [
        ({"a": 1, "b": 2}, ["a", "b", "a"], [1, 2, 1], []),  # all known: nothing computed
        ({"a": 1}, ["a", "x", "x", "y"], [1, 10, 10, 10], ["x", "y"]),  # each missing key once
        ({}, [], [], []),
        ({"a": 0}, ["a"], [0], []),  # a falsy value is a value
    ],
)
def test_known_keys_are_read_and_each_missing_key_is_computed_once(
    memo: dict[str, int], keys: list[str], values: list[int], computed: list[str]
) -> None:
    calls: list[str] = []

    def compute(key: str) -> int:
        calls.append(key)
        return 10

    assert looked_up(memo, keys, compute) == values
    assert calls == computed


def test_a_set_of_keys_gives_its_values_in_its_own_order() -> None:
    keys = frozenset({"a", "b", "c"})
    assert looked_up({"a": 1}, keys, lambda k: ord(k)) == [1 if k == "a" else ord(k) for k in keys]
