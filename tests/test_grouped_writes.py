"""``storage.db.Grouped``, the inbox's group commit: calls that arrive while a group is being written go
together in the next one, each caller gets its own result or its own failure, and a stalled group does
not hold up the rest."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.ports import StorageUnavailable
from storage.db import Database, Grouped, open_database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = open_database(f"sqlite:///{tmp_path}/grouped.db")
    yield database
    await database.dispose()


class Doubler:
    """``fn`` for ``Grouped``: doubles each number; records the groups; fails as told."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.bad: set[int] = set()
        self.unavailable = False
        self.hold = threading.Event()
        self.hold.set()

    def __call__(self, group: list[int]) -> list[int]:
        self.hold.wait(10)
        self.groups.append(list(group))
        if self.unavailable:
            raise StorageUnavailable("OperationalError")
        if self.bad & set(group):
            raise ValueError("a bad one")
        return [2 * n for n in group]


async def test_a_lone_call_goes_at_once_and_the_calls_behind_it_go_together(db: Database) -> None:
    fn = Doubler()
    grouped = Grouped(db, fn)
    assert await grouped(1) == 2
    assert await asyncio.gather(*(grouped(n) for n in range(10))) == [2 * n for n in range(10)]
    assert fn.groups == [[1], [0], list(range(1, 10))]


async def test_at_most_max_group_calls_in_one_group(db: Database) -> None:
    fn = Doubler()
    grouped = Grouped(db, fn, max_group=4)
    assert await asyncio.gather(*(grouped(n) for n in range(10))) == [2 * n for n in range(10)]
    assert fn.groups == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]


async def test_an_unavailable_database_fails_every_call_of_the_group(db: Database) -> None:
    fn = Doubler()
    fn.unavailable = True
    grouped = Grouped(db, fn)
    results = await asyncio.gather(*(grouped(n) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, StorageUnavailable) for r in results)
    assert len({id(r) for r in results}) == 5  # each caller raises an exception of its own
    fn.unavailable = False
    assert await grouped(7) == 14  # and the next call goes as ever


async def test_another_fault_fails_only_its_own_call(db: Database) -> None:
    fn = Doubler()
    fn.bad = {3}
    grouped = Grouped(db, fn)
    results = await asyncio.gather(*(grouped(n) for n in range(6)), return_exceptions=True)
    assert [r if not isinstance(r, Exception) else "failed" for r in results] == [0, 2, 4, "failed", 8, 10]
    assert isinstance(results[3], ValueError)
    # The group with the bad call ran again one by one.
    assert fn.groups[1] == [1, 2, 3, 4, 5] and [[n] for n in range(1, 6)] == fn.groups[2:]


async def test_a_stalled_group_does_not_hold_up_the_calls_behind_it(db: Database) -> None:
    fn = Doubler()
    release = threading.Event()

    def stalls(group: list[int]) -> list[int]:
        if 1 in group:
            release.wait(10)  # another process's row lock
        return fn(group)

    grouped = Grouped(db, stalls, stall_seconds=0.05)
    stuck = asyncio.ensure_future(grouped(1))
    await asyncio.sleep(0.01)
    try:
        # Behind the stalled group, a call starts a group of its own after 50 ms, and is answered.
        assert await asyncio.wait_for(grouped(2), 5) == 4
        assert not stuck.done()
    finally:
        release.set()
    assert await stuck == 2


async def test_a_cancelled_caller_is_not_written(db: Database) -> None:
    fn = Doubler()
    fn.hold.clear()
    grouped = Grouped(db, fn)
    first = asyncio.ensure_future(grouped(1))
    await asyncio.sleep(0.01)
    gone = asyncio.ensure_future(grouped(2))
    kept = asyncio.ensure_future(grouped(3))
    await asyncio.sleep(0.01)
    gone.cancel()
    fn.hold.set()
    assert (await first, await kept) == (2, 6)
    assert fn.groups == [[1], [3]]
