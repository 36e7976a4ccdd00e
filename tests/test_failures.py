"""One failure rule for every adapter: people's words never reach the logs, and a message turn that
failed on a passing fault runs again (unless part of its reply is already on screen)."""

from __future__ import annotations

import logging

import pytest

from bot.failures import log_failure, retry_turn, transient
from bot.locks import KeyedLocks
from bot.ports import StorageUnavailable

log = logging.getLogger("tests.failures")


def _raise(exc: Exception) -> None:
    raise exc


def test_a_failure_is_logged_with_its_type_and_place_never_its_text(caplog: pytest.LogCaptureFixture) -> None:
    try:
        _raise(ValueError("my very private words"))
    except ValueError as exc:
        log_failure(log, "turn failed", exc, workspace="T1")
    [record] = caplog.records
    assert record.getMessage() == "turn failed" and record.levelname == "ERROR"
    assert record.error == "ValueError" and record.workspace == "T1"  # type: ignore[attr-defined]
    assert "test_failures.py:_raise" in record.where  # type: ignore[attr-defined]
    assert record.exc_info is None and "private words" not in caplog.text


def test_passing_faults_are_transient_programming_errors_are_not() -> None:
    assert transient(StorageUnavailable("restarting")) and transient(ConnectionResetError())
    assert transient(TimeoutError()) and not transient(KeyError("x"))


async def test_a_passing_fault_is_retried_until_the_turn_runs(caplog: pytest.LogCaptureFixture) -> None:
    attempts: list[int] = []

    async def turn(n: int) -> str:
        attempts.append(n)
        if n < 2:
            raise StorageUnavailable("the database is restarting: my private words")
        return "answered"

    got = await retry_turn(turn, shown=lambda _: False, logger=log, event="turn failed", delays=(0, 0, 0))
    assert got == "answered" and attempts == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == ["turn failed; trying again"] * 2
    assert "private words" not in caplog.text


async def test_no_retry_once_the_reply_shows_or_for_a_programming_error() -> None:
    for exc, shown in ((StorageUnavailable("down"), True), (KeyError("bug"), False)):
        attempts: list[int] = []

        async def turn(n: int, exc: Exception = exc, attempts: list[int] = attempts) -> None:
            attempts.append(n)
            raise exc

        with pytest.raises(type(exc)):
            await retry_turn(turn, shown=lambda _, s=shown: s, logger=log, event="x", delays=(0, 0))
        assert attempts == [0]


async def test_the_retries_run_out() -> None:
    async def turn(n: int) -> None:
        raise StorageUnavailable("down")

    with pytest.raises(StorageUnavailable):
        await retry_turn(turn, shown=lambda _: False, logger=log, event="x", delays=(0, 0))


def test_keyed_locks_give_one_lock_per_key_while_it_is_held() -> None:
    locks = KeyedLocks()
    a = locks("a")
    assert locks("a") is a and locks("b") is not a
