"""Leader lease, once-per-period jobs, retention on a frozen clock, forget-user, export, digests."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from bot.scheduler import JobContext, digest_job, renew_lease, retention_job
from bot.types import (
    Accepted,
    Author,
    Decision,
    Digest,
    IncomingMessage,
    NewMessage,
    Origin,
    StateChange,
    ThreadRef,
)
from storage.maintenance import Maintenance
from storage.models import FEEDBACK, INBOX, MESSAGES
from storage.repository import Repository

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
T1 = ThreadRef("slack", "T1", "C1", "1.0")
T2 = ThreadRef("slack", "T2", "C1", "1.0")


def user(text: str, mid: str, author: str = "U1") -> NewMessage:
    return NewMessage("user", "text", ({"type": "text", "text": text},), author, "Ann", mid, text)


async def test_lease_is_exclusive_and_taken_over_after_expiry(stores: tuple[Repository, Maintenance]) -> None:
    _, m = stores
    ttl = timedelta(seconds=30)
    a = JobContext(m, "proc-a", clock=lambda: NOW)
    b = JobContext(m, "proc-b", clock=lambda: NOW)
    await renew_lease(a, ttl)
    await renew_lease(b, ttl)
    assert a.leader and not b.leader
    # proc-a dies (stops renewing). Within the lease period nobody else takes over ...
    b.clock = lambda: NOW + timedelta(seconds=29)
    await renew_lease(b, ttl)
    assert not b.leader
    # ... and right after it, proc-b does.
    b.clock = lambda: NOW + timedelta(seconds=31)
    await renew_lease(b, ttl)
    assert b.leader
    assert await m.lease_holder("scheduler", NOW + timedelta(seconds=31)) == "proc-b"


async def test_each_job_runs_once_per_period_across_processes(stores: tuple[Repository, Maintenance]) -> None:
    _, m = stores
    # Two processes that both believe they lead (the overlap a lease handover can produce).
    a = JobContext(m, "proc-a", clock=lambda: NOW, leader=True)
    b = JobContext(m, "proc-b", clock=lambda: NOW, leader=True)
    for _ in range(3):
        await retention_job(a)
        await retention_job(b)
    next_day = JobContext(m, "proc-b", clock=lambda: NOW + timedelta(days=1), leader=True)
    await retention_job(next_day)
    follower = JobContext(m, "proc-c", clock=lambda: NOW + timedelta(days=2), leader=False)
    await retention_job(follower)
    runs = await m.runs("retention")
    assert [p for p, _ in runs] == ["2026-11-26", "2026-11-27"]


async def _age(repo: Repository, mid: str, days: float) -> None:
    async with repo.database.begin() as conn:
        await conn.execute(
            update(MESSAGES)
            .where(MESSAGES.c.platform_message_id == mid)
            .values(created_at=NOW - timedelta(days=days))
        )


async def test_retention_deletes_exactly_the_expired_text(stores: tuple[Repository, Maintenance]) -> None:
    repo, m = stores
    s1 = await repo.get_settings("slack", "T1")
    await repo.save_settings(dataclasses.replace(s1, retention_days=7))
    b1 = await repo.begin_turn(T1, "a", user("old one", "m1"), create=True)
    await repo.begin_turn(T1, "b", user("fresh one", "m2"), create=False)
    await repo.begin_turn(T2, "c", user("team two, 30 days", "m3"), create=True)
    await repo.begin_turn(T2, "d", user("team two, 100 days", "m4"), create=True)
    assert b1.conversation is not None
    await repo.finish_turn(
        b1.conversation.id, "T1", [], StateChange(end_reason="abuse"), [Decision("END", "abuse", "n", 2, {})]
    )
    await _age(repo, "m1", 7.01)
    await _age(repo, "m2", 6.99)
    await _age(repo, "m3", 30)
    await _age(repo, "m4", 100)  # T2 has no settings row: the 90-day default applies

    removed = await m.apply_retention(NOW)
    assert removed == 2
    async with repo.database.connect() as conn:
        rows = {r.platform_message_id: r for r in (await conn.execute(select(MESSAGES))).all()}
    assert rows["m1"].text is None and rows["m1"].redacted and "removed" in rows["m1"].content[0]["text"]
    assert rows["m4"].text is None
    assert rows["m2"].text == "fresh one" and rows["m3"].text == "team two, 30 days"
    # Audit metadata survives without content.
    assert [d.decision for d in await repo.list_decisions("slack", "T1")] == ["END"]
    # The history stays replayable: every block still has text.
    history = await repo.history(b1.conversation.id, "T1")
    assert all(b.get("text") for h in history for b in h.content)


async def test_forget_user_leaves_no_text_of_that_user(stores: tuple[Repository, Maintenance]) -> None:
    repo, m = stores
    secret = "my very private words"
    b = await repo.begin_turn(T1, "a", user(secret, "m1", author="U7"), create=True)
    await repo.begin_turn(T2, "b", user(secret + " again", "m2", author="U7"), create=True)
    await repo.begin_turn(T1, "c", user("someone else", "m3", author="U8"), create=False)
    assert b.conversation is not None
    await repo.record_feedback(b.conversation, "U7", secret + " in feedback")
    await m.forget_user("slack", "U7")
    async with repo.database.connect() as conn:
        dump = repr((await conn.execute(select(MESSAGES))).all()) + repr(
            (await conn.execute(select(FEEDBACK))).all()
        )
    assert "private words" not in dump
    assert "someone else" in dump


async def test_export_is_scoped_and_complete(stores: tuple[Repository, Maintenance]) -> None:
    repo, m = stores
    b = await repo.begin_turn(T1, "a", user("hello", "m1"), create=True)
    assert b.conversation is not None
    data = await m.export_conversation("slack", "T1", b.conversation.id)
    assert data is not None and data["messages"][0]["text"] == "hello"
    assert await m.export_conversation("slack", "T2", b.conversation.id) is None


class RecordingSink:
    def __init__(self) -> None:
        self.digests: list[Digest] = []

    async def send_digest(self, digest: Digest) -> None:
        self.digests.append(digest)


async def test_weekly_digest_counts_and_links(stores: tuple[Repository, Maintenance]) -> None:
    repo, m = stores
    s1 = await repo.get_settings("slack", "T1")
    await repo.save_settings(dataclasses.replace(s1, alert_channel="CALERT"))
    b = await repo.begin_turn(T1, "a", user("x", "m1"), create=True)
    assert b.conversation is not None
    cid = b.conversation.id
    await repo.finish_turn(cid, "T1", [], StateChange(), [Decision("HOLD_WARN", "abuse", "n", 1, {})])
    await repo.finish_turn(
        cid, "T1", [], StateChange(end_reason="abuse"), [Decision("END", "abuse", "n", 2, {})]
    )
    await repo.record_feedback(b.conversation, "U1", None)
    sink = RecordingSink()
    ctx = JobContext(m, "proc-a", sinks={"slack": sink}, clock=lambda: datetime.now(UTC), leader=True)
    await digest_job(ctx)
    await digest_job(ctx)  # same week: not again
    assert len(sink.digests) == 1
    d = sink.digests[0]
    assert (d.channel, d.endings_by_reason, d.warnings, d.feedback) == ("CALERT", {"abuse": 1}, 1, 1)
    assert d.reported == (("C1", "1.0"),)


async def test_a_dead_leaders_jobs_are_taken_over_within_one_lease(
    stores: tuple[Repository, Maintenance],
) -> None:
    """Real APScheduler instances: the leader stops renewing (a crash), a follower takes over."""
    import asyncio

    from bot.scheduler import Scheduler

    _, m = stores
    lease = 1.5
    leader = Scheduler(JobContext(m, "proc-a"), lease_seconds=lease)
    follower = Scheduler(JobContext(m, "proc-b"), lease_seconds=lease)
    await leader.start()
    await follower.start()
    try:
        assert leader.ctx.leader and not follower.ctx.leader
        # A crash: renewals stop and the lease is never released.
        assert leader._aps is not None
        leader._aps.shutdown(wait=False)
        leader._aps = None
        died = asyncio.get_running_loop().time()
        # Polling the follower's view is the observable behaviour under test.
        while not follower.ctx.leader and asyncio.get_running_loop().time() - died < 3 * lease:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        took = asyncio.get_running_loop().time() - died
        assert follower.ctx.leader
        # Within one lease period plus one renewal interval of the follower.
        assert took <= lease + max(1.0, lease / 3) + 0.5
        await retention_job(follower.ctx)
        await retention_job(leader.ctx)  # the dead leader's stale belief cannot run it again
        assert len(await m.runs("retention")) == 1
    finally:
        await follower.stop()
        await leader.stop()


async def test_retention_deletes_delivered_inbox_entries_only_when_old(
    stores: tuple[Repository, Maintenance],
) -> None:
    repo, m = stores
    ids = {}
    for name in ("old_delivered", "new_delivered", "old_undelivered"):
        msg = IncomingMessage(
            ThreadRef("slack", "T1", "C1", name), Author("U1", "Ann"), "hello", name, Origin.MENTION
        )
        accepted, entry = await repo.accept(msg, "p1", 60)
        assert accepted is Accepted.NEW and entry is not None
        ids[name] = entry
    for name in ("old_delivered", "new_delivered"):
        assert await repo.mark_delivered(ids[name].hold)
    async with repo.database.begin() as conn:
        old = NOW - timedelta(days=30)
        for name in ("old_delivered", "old_undelivered"):
            await conn.execute(
                update(INBOX)
                .where(INBOX.c.id == int(ids[name].id))
                .values(received_at=old, delivered_at=old if name == "old_delivered" else None)
            )
        await conn.execute(
            update(INBOX).where(INBOX.c.id == int(ids["new_delivered"].id)).values(delivered_at=NOW)
        )

    assert await m.delete_delivered_inbox_before(NOW - timedelta(days=7)) == 1
    assert await repo.get_entry(ids["old_delivered"].id) is None
    assert await repo.get_entry(ids["new_delivered"].id) is not None
    assert await repo.get_entry(ids["old_undelivered"].id) is not None
