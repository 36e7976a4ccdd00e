"""The durable inbox on real PostgreSQL, two engines standing for two processes (each its own
``Repository``, so its own pool and lock session): a turn that hangs in the model and stops renewing its
lease is taken over by the other process's recovery, answered exactly once, and the hung turn, when it
wakes up, is fenced off (``LeaseLost``) and draws nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

import bot.engine
from bot.engine import Engine, EngineOptions
from bot.model import ChunkSink, ModelReply, ModelRequest
from bot.types import (
    Author,
    IncomingMessage,
    Origin,
    RiskAssessment,
    RiskLevel,
    ThreadRef,
    TurnResult,
    TurnStatus,
)
from fakes import ScriptedModel
from fakes.postgres import PostgresServer
from storage.db import open_database, upgrade
from storage.repository import Repository
from tests.test_inbox_engine import RecordingSink

pytestmark = pytest.mark.postgres

LEASE = 1.0
THREAD = ThreadRef("slack", "T1", "C1", "300.1")
ALICE = Author("U1", "Alice")


class HungModel(ScriptedModel):
    """A model that does not answer until ``wake`` is set (a process frozen in its model call)."""

    def __init__(self) -> None:
        super().__init__("Answer of the hung process.")
        self.wake = asyncio.Event()
        self.waiting = asyncio.Event()

    async def respond(self, request: ModelRequest, sink: ChunkSink | None = None) -> ModelReply:
        self.waiting.set()
        await self.wake.wait()
        return await super().respond(request, sink)


@pytest.fixture
async def url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    with postgres_server.temporary_database(hint="pg_inbox") as found:
        await upgrade(found)
        yield found


@pytest.fixture(autouse=True)
def _detector(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bot.engine, "assess_risk", lambda text: RiskAssessment(RiskLevel.NONE, None, ()))


async def end_advisory_sessions(repo: Repository) -> int:
    """What a dead host's TCP keepalives do within a minute: the server ends the sessions holding this
    database's advisory locks (the hung process's lock session), and the locks go with them."""

    def terminate() -> int:
        with repo.database.sync_engine.connect() as conn:
            pids = conn.execute(
                sa.text(
                    "SELECT DISTINCT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
                    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
                )
            ).scalars()
            end = sa.text("SELECT pg_terminate_backend(:p)")
            return sum(bool(conn.execute(end, {"p": p}).scalar()) for p in list(pids))

    return await repo.database.run(terminate)


async def test_a_hung_turn_is_answered_once_by_the_other_process_and_fenced_when_it_wakes(url: str) -> None:
    hung_repo, other_repo = Repository(open_database(url)), Repository(open_database(url))
    hung_model, other_model = HungModel(), ScriptedModel()
    other_model.then("Answered by the other process.")
    options = EngineOptions(inbox_lease_seconds=LEASE, lock_wait_seconds=10.0)
    hung = Engine(hung_repo, hung_model, options, inbox=hung_repo, owner="process-a")
    other = Engine(other_repo, other_model, options, inbox=other_repo, owner="process-b")
    try:

        async def frozen() -> None:  # a frozen process renews nothing
            return None

        hung.renew_leases = frozen  # type: ignore[method-assign]
        msg = IncomingMessage(THREAD, ALICE, "hello?", "300.1", origin=Origin.MENTION)
        _, entry = await hung.accept(msg)
        assert entry is not None
        drawn_by_hung: list[TurnResult] = []

        async def deliver(result: TurnResult) -> None:
            drawn_by_hung.append(result)

        turn = asyncio.create_task(hung.handle_message(entry.message, None, deliver, entry))
        await asyncio.wait_for(hung_model.waiting.wait(), 10)  # stored, and stuck with the model

        sink = RecordingSink()
        assert await other.recover({"slack": sink}) == 0  # within the lease it is still process A's
        await asyncio.sleep(LEASE + 0.5)
        assert await end_advisory_sessions(other_repo) >= 1
        assert await other.recover({"slack": sink}) == 1
        assert sink.texts() == ["Answered by the other process."]
        assert await other.recover({"slack": sink}) == 0

        hung_model.wake.set()  # process A wakes up and finishes its model call …
        result = await asyncio.wait_for(turn, 10)
        assert drawn_by_hung == []  # … and draws nothing: its hold was taken over
        assert result.status is TurnStatus.IGNORED
        assert len(hung_model.requests) == 1 and len(other_model.requests) == 1
        assert sink.texts() == ["Answered by the other process."]
        assert await other.pending() == 0
        history = await other.history(THREAD)
        assert [m.text or "" for m in history if m.role == "user"] == ["hello?"]
        replies = [m for m in history if m.role == "assistant"]
        assert len(replies) == 1 and "Answered by the other process." in str(replies[0].content)
    finally:
        hung_model.wake.set()
        for engine in (hung, other):
            engine.begin_shutdown(0)
            await engine.aclose()
        await hung_repo.close()
        await other_repo.close()
