"""Admission control, the turn deadline and the shutdown deadline: the settings and ``bot.admission``.

Whole turns through Slack are in ``tests/slack/test_turn_limits.py``."""

from __future__ import annotations

import asyncio

import pytest

from bot.admission import RESTARTING_NOTE, TOO_SLOW_NOTE, Admission, TurnStopped
from bot.config import SettingsError, load_settings
from bot.engine import _StreamBridge

# -- settings ---------------------------------------------------------------------------------------------


def test_defaults() -> None:
    s = load_settings(_env_file=None)
    assert (s.shutdown_seconds, s.max_concurrent_turns, s.turn_deadline_seconds) == (30.0, 64, 180.0)
    assert s.http_max_connections == 512


def test_settings_parse_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAVEN_SHUTDOWN_SECONDS", "0")
    monkeypatch.setenv("HAVEN_MAX_CONCURRENT_TURNS", "2")
    monkeypatch.setenv("HAVEN_TURN_DEADLINE_SECONDS", "7.5")
    monkeypatch.setenv("HAVEN_HTTP_MAX_CONNECTIONS", "100")
    s = load_settings(_env_file=None)
    assert (s.shutdown_seconds, s.max_concurrent_turns, s.turn_deadline_seconds) == (0.0, 2, 7.5)
    assert s.http_max_connections == 100


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HAVEN_SHUTDOWN_SECONDS", "-1"),
        ("HAVEN_SHUTDOWN_SECONDS", "soon"),
        ("HAVEN_MAX_CONCURRENT_TURNS", "0"),
        ("HAVEN_MAX_CONCURRENT_TURNS", "1.5"),
        ("HAVEN_TURN_DEADLINE_SECONDS", "0"),
        ("HAVEN_HTTP_MAX_CONNECTIONS", "1"),
    ],
)
def test_bad_values_are_refused_in_one_line(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=None)
    message = str(caught.value)
    assert message.startswith(f"invalid setting {name}: ") and "\n" not in message


# -- bot.admission ----------------------------------------------------------------------------------------


async def test_at_most_limit_run_and_the_rest_go_in_arrival_order() -> None:
    admission = Admission(limit=2)
    started: list[int] = []
    gate = asyncio.Event()

    async def turn(n: int) -> None:
        async with admission.model_part():
            started.append(n)
            await gate.wait()

    tasks = []
    for n in range(6):
        tasks.append(asyncio.create_task(turn(n)))
        await asyncio.sleep(0)  # arrival order
    await asyncio.sleep(0.01)
    assert started == [0, 1] and admission.running == 2 and admission.waiting == 4
    gate.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2, 3, 4, 5]
    assert admission.peak == 2 and admission.running == 0 and admission.waiting == 0


async def test_a_cancelled_waiter_does_not_leak_its_slot() -> None:
    admission = Admission(limit=1)
    release = asyncio.Event()

    async def holder() -> None:
        async with admission.model_part():
            await release.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0.01)
    waiter.cancel()
    release.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert admission.running == 0
    async with asyncio.timeout(1):
        async with admission.model_part():
            pass


async def test_the_deadline_stops_the_model_part_but_not_the_wait_for_a_slot() -> None:
    admission = Admission(limit=1, deadline=0.2)
    with pytest.raises(TurnStopped) as caught:
        async with admission.model_part():
            await asyncio.sleep(5)
    assert not caught.value.restarting and caught.value.note == TOO_SLOW_NOTE

    async def quick_holder() -> None:
        async with admission.model_part():
            await asyncio.sleep(0.15)

    holder = asyncio.create_task(quick_holder())
    await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    waited_from = loop.time()
    async with admission.model_part():  # waits ~0.15 s for the slot, then has its own 0.2 s
        await asyncio.sleep(0.1)
    assert loop.time() - waited_from >= 0.25
    await holder


async def test_shutdown_stops_running_and_waiting_turns_at_its_deadline_with_the_restart_note() -> None:
    admission = Admission(limit=1, deadline=60)
    outcomes: list[str] = []

    async def turn(seconds: float) -> None:
        try:
            async with admission.model_part():
                await asyncio.sleep(seconds)
            outcomes.append("done")
        except TurnStopped as stopped:
            outcomes.append(stopped.note)

    loop = asyncio.get_running_loop()
    tasks = [asyncio.create_task(turn(s)) for s in (0.1, 5, 5)]
    await asyncio.sleep(0.01)
    began = loop.time()
    admission.begin_shutdown(0.5)
    admission.begin_shutdown(100)  # the first call counts
    await asyncio.gather(*tasks)
    assert outcomes == ["done", RESTARTING_NOTE, RESTARTING_NOTE]
    assert 0.4 < loop.time() - began < 1.0
    # A turn that arrives after the deadline stops at once.
    with pytest.raises(TurnStopped):
        async with admission.model_part():
            await asyncio.sleep(1)


# -- acknowledgements first ---------------------------------------------------------------------------------


async def test_a_turn_starts_at_once_when_no_event_is_being_acknowledged() -> None:
    admission = Admission()
    async with asyncio.timeout(0.05):
        await admission.after_intake()
    assert admission.acknowledging == 0


async def test_a_turn_waits_until_the_acknowledgements_in_progress_are_done() -> None:
    admission = Admission()
    with admission.intake():
        with admission.intake():
            waiter = asyncio.create_task(admission.after_intake())
            await asyncio.sleep(0.05)
            assert not waiter.done() and admission.acknowledging == 2
        await asyncio.sleep(0.05)
        assert not waiter.done()  # one is still in progress
    async with asyncio.timeout(1):
        await waiter
    assert admission.acknowledging == 0


async def test_a_moment_between_two_acknowledgements_does_not_let_the_turns_in() -> None:
    admission = Admission()
    first = admission.intake()
    first.__enter__()
    waiters = [asyncio.create_task(admission.after_intake()) for _ in range(3)]
    await asyncio.sleep(0.01)
    # The next event's acknowledgement begins before the woken turns run (a burst on many connections).
    first.__exit__(None, None, None)
    with admission.intake():
        await asyncio.sleep(0.05)
        assert not any(w.done() for w in waiters)
    async with asyncio.timeout(1):
        await asyncio.gather(*waiters)


async def test_the_wait_is_bounded_under_a_steady_stream_of_acknowledgements() -> None:
    admission = Admission()
    admission.intake_first = 0.2
    loop = asyncio.get_running_loop()
    with admission.intake():
        began = loop.time()
        await admission.after_intake()
        assert 0.15 < loop.time() - began < 1.0
        assert admission.acknowledging == 1
    # An exception inside an acknowledgement still ends it.
    with pytest.raises(RuntimeError), admission.intake():
        raise RuntimeError("the handler failed")
    assert admission.acknowledging == 0
    async with asyncio.timeout(0.05):
        await admission.after_intake()


async def test_in_a_burst_a_turn_waits_until_acknowledgements_have_been_quiet_for_a_moment() -> None:
    admission = Admission()
    admission.intake_quiet = 0.2
    admission.intake_burst = 2  # two acknowledgements ending close together make a burst here
    with admission.intake():
        pass
    loop = asyncio.get_running_loop()
    with admission.intake():
        waiter = asyncio.create_task(admission.after_intake())
        await asyncio.sleep(0.05)
    ended = loop.time()
    # None in progress now, but one ended just before: the turn waits out the quiet time ...
    await asyncio.sleep(0.1)
    assert not waiter.done()
    # ... which starts again with every acknowledgement that ends meanwhile (a burst's next event).
    with admission.intake():
        pass
    again = loop.time()
    async with asyncio.timeout(1):
        await waiter
    assert loop.time() - again >= 0.19 and loop.time() - ended >= 0.29
    # Long after the last acknowledgement a turn starts at once.
    await asyncio.sleep(0.25)
    async with asyncio.timeout(0.05):
        await admission.after_intake()


async def test_without_a_burst_a_turn_after_its_own_acknowledgement_starts_at_once() -> None:
    admission = Admission()
    admission.intake_quiet = 5.0  # were it waited for, the time-out below would fire
    for _ in range(admission.intake_burst - 1):  # ten threads answered at once are no burst
        with admission.intake():
            pass
    async with asyncio.timeout(0.05):
        await admission.after_intake()


async def test_a_running_turn_lets_acknowledgements_go_first_between_its_chunks() -> None:
    """In a burst, turns that started before it would otherwise keep the CPU for their whole stream."""
    shown: list[str] = []

    class Stream:
        async def update(self, text: str) -> None:
            shown.append(text)

        async def finish(self, text: str) -> None:
            shown.append(text)

    admission = Admission()
    bridge = _StreamBridge(Stream(), pause=admission.yield_to_intake)  # type: ignore[arg-type]
    await bridge.chunk("Hello")  # nothing being acknowledged: at once
    assert shown == ["Hello"]
    with admission.intake():
        chunk = asyncio.create_task(bridge.chunk(", world"))
        await asyncio.sleep(0.05)
        assert not chunk.done() and shown == ["Hello"]
    async with asyncio.timeout(1):
        await chunk
    assert shown == ["Hello", "Hello, world"]


async def test_yielding_to_intake_costs_nothing_when_no_event_is_being_acknowledged() -> None:
    admission = Admission()
    assert not admission.intake_pending()
    async with asyncio.timeout(0.05):
        for _ in range(1000):
            await admission.yield_to_intake()
    with admission.intake():
        assert admission.intake_pending()


async def test_a_slot_that_comes_free_during_acknowledgements_waits_for_them() -> None:
    admission = Admission(limit=1)
    entered = asyncio.Event()

    async def turn() -> None:
        async with admission.model_part():
            entered.set()

    with admission.intake():
        task = asyncio.create_task(turn())
        await asyncio.sleep(0.05)
        assert not entered.is_set()
    async with asyncio.timeout(1):
        await task
    assert entered.is_set()
