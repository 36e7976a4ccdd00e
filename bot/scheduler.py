"""Scheduled jobs: retention, the weekly digest, dedupe-key cleanup — run once per period per deployment.

APScheduler 3's ``AsyncIOScheduler`` runs in the bot's own event loop in every process, but only the
holder of the database lease ``scheduler`` does the work, and each run first claims its period in the
``job_runs`` table, so even a brief overlap of two leaders cannot run a job twice. A leader that dies
stops renewing; another process takes over when the lease expires.

Composition root (see ``bot.app``): the jobs work on ``storage.maintenance`` directly.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.ports import DigestSink
from storage.maintenance import Maintenance

log = logging.getLogger(__name__)

LEASE = "scheduler"
DEDUPE_KEEP = timedelta(days=3)  # far longer than any platform retries or replays an event


def utcnow() -> datetime:
    return datetime.now(UTC)


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class JobContext:
    maintenance: Maintenance
    holder: str
    sinks: Mapping[str, DigestSink] = field(default_factory=dict)
    clock: Callable[[], datetime] = utcnow
    leader: bool = False


def _day(now: datetime) -> str:
    return now.strftime("%Y-%m-%d")


def _week(now: datetime) -> str:
    year, week, _ = now.isocalendar()
    return f"{year}-W{week:02d}"


async def _once(ctx: JobContext, job: str, period: str) -> bool:
    if not ctx.leader:
        return False
    if not await ctx.maintenance.claim_run(job, period, ctx.holder):
        log.info("job already ran this period", extra={"job": job, "period": period})
        return False
    return True


# Module-level job functions, as APScheduler recommends: the scheduler stores references, not closures.
async def retention_job(ctx: JobContext) -> None:
    now = ctx.clock()
    period = _day(now)
    if not await _once(ctx, "retention", period):
        return
    removed = await ctx.maintenance.apply_retention(now)
    await ctx.maintenance.finish_run("retention", period, f"removed={removed}")
    log.info("retention applied", extra={"removed": removed})


async def dedupe_cleanup_job(ctx: JobContext) -> None:
    now = ctx.clock()
    period = now.strftime("%Y-%m-%dT%H")
    if not await _once(ctx, "dedupe_cleanup", period):
        return
    removed = await ctx.maintenance.delete_processed_events_before(now - DEDUPE_KEEP)
    removed += await ctx.maintenance.delete_delivered_inbox_before(now - DEDUPE_KEEP)
    await ctx.maintenance.finish_run("dedupe_cleanup", period, f"removed={removed}")


async def digest_job(ctx: JobContext) -> None:
    now = ctx.clock()
    period = _week(now)
    if not await _once(ctx, "digest", period):
        return
    sent = 0
    for digest in await ctx.maintenance.digests(now - timedelta(days=7)):
        sink = ctx.sinks.get(digest.platform)
        if sink is None:
            continue
        try:
            await sink.send_digest(digest)
            sent += 1
        except Exception:
            log.exception(
                "digest not delivered", extra={"platform": digest.platform, "workspace": digest.workspace}
            )
    await ctx.maintenance.finish_run("digest", period, f"sent={sent}")


async def renew_lease(ctx: JobContext, ttl: timedelta) -> None:
    try:
        leader = await ctx.maintenance.acquire_lease(LEASE, ctx.holder, ttl, ctx.clock())
    except Exception:
        # A database outage must not leave a stale belief of leadership behind.
        log.warning("lease renewal failed", exc_info=True)
        leader = False
    if leader != ctx.leader:
        log.info("scheduler leadership changed", extra={"leader": leader})
    ctx.leader = leader


class Scheduler:
    def __init__(self, ctx: JobContext, *, lease_seconds: float = 60.0) -> None:
        self.ctx = ctx
        self._ttl = timedelta(seconds=lease_seconds)
        self._renew_every = max(1.0, lease_seconds / 3)
        self._aps: AsyncIOScheduler | None = None

    async def start(self) -> None:
        await renew_lease(self.ctx, self._ttl)
        aps = AsyncIOScheduler(timezone=UTC)
        common: dict[str, Any] = {
            "args": [self.ctx],
            "coalesce": True,
            "max_instances": 1,
            "replace_existing": True,
        }
        aps.add_job(
            renew_lease,
            IntervalTrigger(seconds=self._renew_every),
            id="lease",
            misfire_grace_time=int(self._renew_every),
            **{**common, "args": [self.ctx, self._ttl]},
        )
        aps.add_job(
            retention_job, CronTrigger(hour=3, minute=17), id="retention", misfire_grace_time=3600, **common
        )
        aps.add_job(
            digest_job,
            CronTrigger(day_of_week="mon", hour=9),
            id="digest",
            misfire_grace_time=6 * 3600,
            **common,
        )
        aps.add_job(
            dedupe_cleanup_job,
            IntervalTrigger(hours=1),
            id="dedupe_cleanup",
            misfire_grace_time=1800,
            **common,
        )
        aps.start()
        self._aps = aps

    async def stop(self) -> None:
        if self._aps is not None:
            self._aps.shutdown(wait=False)
            self._aps = None
        if self.ctx.leader:
            try:
                await self.ctx.maintenance.release_lease(LEASE, self.ctx.holder)
            except Exception:
                log.warning("lease release failed", exc_info=True)
            self.ctx.leader = False
