"""Maintenance queries: leases, once-per-period job claims, retention, forgetting a user, export, digests."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, delete, or_, select, update
from sqlalchemy.engine import Connection

from bot.types import Digest
from storage.db import Database, dialect_insert
from storage.models import (
    CONVERSATIONS,
    DECISIONS,
    EVENTS,
    FEEDBACK,
    INBOX,
    JOB_RUNS,
    LEASES,
    MESSAGES,
    WORKSPACES,
    as_json,
    utcnow,
)

DEFAULT_RETENTION_DAYS = 90


def redacted_content(reason: str) -> list[dict[str, Any]]:
    # The API rejects empty text blocks, and the history must stay replayable for ongoing threads.
    return [{"type": "text", "text": f"[message removed: {reason}]"}]


class Maintenance:
    """Every ``now``/``since`` argument is a timezone-aware UTC datetime (SQLite stores them naive).

    Like the repository, each method is one synchronous function on a ``Database`` worker thread.
    """

    def __init__(self, database: Database) -> None:
        self._db = database
        self._dialect = database.dialect.name

    def _insert(self, table: Table) -> Any:
        return dialect_insert(self._dialect)(table)

    # -- leadership ----------------------------------------------------------------------------------

    async def acquire_lease(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take or renew ``name`` for ``holder`` unless someone else holds an unexpired lease."""
        stmt = self._insert(LEASES).values(name=name, holder=holder, expires_at=now + ttl)
        stmt = stmt.on_conflict_do_update(
            index_elements=[LEASES.c.name],
            set_={"holder": holder, "expires_at": now + ttl},
            where=or_(LEASES.c.expires_at < now, LEASES.c.holder == holder),
        ).returning(LEASES.c.holder)
        return await self._db.run(self._write_returns_row, stmt)

    def _write_returns_row(self, stmt: Any) -> bool:
        with self._db.write() as conn:
            return conn.execute(stmt).first() is not None

    def _write_rowcount(self, stmt: Any) -> int:
        with self._db.write() as conn:
            return int(conn.execute(stmt).rowcount or 0)

    async def release_lease(self, name: str, holder: str) -> None:
        await self._db.run(
            self._write_rowcount, delete(LEASES).where(LEASES.c.name == name, LEASES.c.holder == holder)
        )

    async def lease_holder(self, name: str, now: datetime) -> str | None:
        return await self._db.run(self._lease_holder, name, now)

    def _lease_holder(self, name: str, now: datetime) -> str | None:
        with self._db.read() as conn:
            row = conn.execute(
                select(LEASES.c.holder, LEASES.c.expires_at).where(LEASES.c.name == name)
            ).first()
        return row.holder if row is not None and _aware(row.expires_at) >= now else None

    async def claim_run(self, job: str, period: str, holder: str) -> bool:
        """True for exactly one caller per (job, period), across every process."""
        stmt = (
            self._insert(JOB_RUNS)
            .values(job=job, period=period, holder=holder, created_at=utcnow())
            .on_conflict_do_nothing()
            .returning(JOB_RUNS.c.id)
        )
        return await self._db.run(self._write_returns_row, stmt)

    async def finish_run(self, job: str, period: str, result: str) -> None:
        await self._db.run(
            self._write_rowcount,
            update(JOB_RUNS)
            .where(JOB_RUNS.c.job == job, JOB_RUNS.c.period == period)
            .values(result=result[:256]),
        )

    async def runs(self, job: str) -> list[tuple[str, str]]:
        return await self._db.run(self._runs, job)

    def _runs(self, job: str) -> list[tuple[str, str]]:
        stmt = (
            select(JOB_RUNS.c.period, JOB_RUNS.c.holder).where(JOB_RUNS.c.job == job).order_by(JOB_RUNS.c.id)
        )
        with self._db.read() as conn:
            return [(r.period, r.holder) for r in conn.execute(stmt)]

    # -- privacy ------------------------------------------------------------------------------------

    async def apply_retention(self, now: datetime) -> int:
        """Remove message text older than each workspace's retention; keep the audit metadata."""
        return await self._db.run(self._apply_retention, now)

    def _apply_retention(self, now: datetime) -> int:
        with self._db.write() as conn:
            workspaces = conn.execute(
                select(WORKSPACES.c.platform, WORKSPACES.c.workspace, WORKSPACES.c.retention_days)
            ).all()
            custom = {(w.platform, w.workspace): w.retention_days for w in workspaces}
            total = 0
            for (platform, workspace), days in custom.items():
                total += self._redact_before(
                    conn,
                    and_(MESSAGES.c.platform == platform, MESSAGES.c.workspace == workspace),
                    now - timedelta(days=days),
                    f"older than {days} days",
                )
            # Workspaces without a settings row get the default.
            others = [and_(MESSAGES.c.platform == p, MESSAGES.c.workspace == w) for p, w in custom]
            scope = ~or_(*others) if others else MESSAGES.c.id.is_not(None)
            total += self._redact_before(
                conn,
                scope,
                now - timedelta(days=DEFAULT_RETENTION_DAYS),
                f"older than {DEFAULT_RETENTION_DAYS} days",
            )
        self._db.bump_generation()  # cached histories must be read again
        return total

    @staticmethod
    def _redact_before(conn: Connection, scope: Any, cutoff: datetime, reason: str) -> int:
        result = conn.execute(
            update(MESSAGES)
            .where(
                scope,
                MESSAGES.c.created_at < cutoff,
                MESSAGES.c.redacted.is_(False),
                MESSAGES.c.kind == "text",
            )
            .values(text=None, author_name=None, content=redacted_content(reason), redacted=True)
        )
        return int(result.rowcount or 0)

    async def forget_user(self, platform: str, user_id: str) -> int:
        """Remove every text that user wrote, in every workspace of the platform."""
        return await self._db.run(self._forget_user, platform, user_id)

    def _forget_user(self, platform: str, user_id: str) -> int:
        with self._db.write() as conn:
            result = conn.execute(
                update(MESSAGES)
                .where(
                    MESSAGES.c.platform == platform,
                    MESSAGES.c.author_id == user_id,
                    MESSAGES.c.role == "user",
                )
                .values(
                    text=None,
                    author_name=None,
                    content=redacted_content("at the author's request"),
                    redacted=True,
                )
            )
            fb = conn.execute(
                update(FEEDBACK)
                .where(FEEDBACK.c.platform == platform, FEEDBACK.c.user_id == user_id)
                .values(comment=None)
            )
            count = int(result.rowcount or 0) + int(fb.rowcount or 0)
        self._db.bump_generation()  # cached histories must be read again
        return count

    async def export_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> dict[str, Any] | None:
        return await self._db.run(self._export_conversation, platform, workspace, conversation_id)

    def _export_conversation(
        self, platform: str, workspace: str, conversation_id: str
    ) -> dict[str, Any] | None:
        with self._db.read(snapshot=True) as conn:
            conv = (
                conn.execute(select(CONVERSATIONS).where(CONVERSATIONS.c.id == conversation_id))
                .mappings()
                .first()
            )
            if conv is None or (conv["platform"], conv["workspace"]) != (platform, workspace):
                return None

            def children(table: Table, order: str) -> list[dict[str, Any]]:
                rows = conn.execute(
                    select(table).where(table.c.conversation_id == conversation_id).order_by(table.c[order])
                ).mappings()
                return [as_json(r, exclude={"id"}) for r in rows]

            return {
                "conversation": as_json(conv),
                "messages": children(MESSAGES, "seq"),
                "decisions": children(DECISIONS, "id"),
                "feedback": children(FEEDBACK, "id"),
            }

    async def delete_processed_events_before(self, cutoff: datetime) -> int:
        return await self._db.run(self._write_rowcount, delete(EVENTS).where(EVENTS.c.created_at < cutoff))

    async def delete_delivered_inbox_before(self, cutoff: datetime) -> int:
        """Inbox entries delivered before ``cutoff`` (kept as long as dedupe keys, so a late redelivery
        of their event is still a duplicate); undelivered entries stay until they are answered."""
        return await self._db.run(self._write_rowcount, delete(INBOX).where(INBOX.c.delivered_at < cutoff))

    # -- digests ------------------------------------------------------------------------------------

    async def digests(self, since: datetime) -> list[Digest]:
        """Per workspace with an alert channel: what happened since ``since`` (counts and links only)."""
        return await self._db.run(self._digests, since)

    def _digests(self, since: datetime) -> list[Digest]:
        out: list[Digest] = []
        with self._db.read(snapshot=True) as conn:
            workspaces = conn.execute(
                select(WORKSPACES.c.platform, WORKSPACES.c.workspace, WORKSPACES.c.alert_channel).where(
                    WORKSPACES.c.alert_channel.is_not(None)
                )
            ).all()
            for w in workspaces:
                decisions = conn.execute(
                    select(DECISIONS.c.decision, DECISIONS.c.reason).where(
                        DECISIONS.c.platform == w.platform,
                        DECISIONS.c.workspace == w.workspace,
                        DECISIONS.c.created_at >= since,
                    )
                ).all()
                endings = Counter(reason or "unknown" for decision, reason in decisions if decision == "END")
                reported = conn.execute(
                    select(CONVERSATIONS.c.channel, CONVERSATIONS.c.thread)
                    .join(FEEDBACK, FEEDBACK.c.conversation_id == CONVERSATIONS.c.id)
                    .where(
                        FEEDBACK.c.platform == w.platform,
                        FEEDBACK.c.workspace == w.workspace,
                        FEEDBACK.c.created_at >= since,
                    )
                ).all()
                out.append(
                    Digest(
                        platform=w.platform,
                        workspace=w.workspace,
                        channel=w.alert_channel or "",
                        since=since,
                        endings_by_reason=dict(endings),
                        vetoes=sum(d == "VETO_RISK" for d, _ in decisions),
                        warnings=sum(d == "HOLD_WARN" for d, _ in decisions),
                        feedback=len(reported),
                        reported=tuple((c, t) for c, t in reported),
                    )
                )
        return out


def _aware(ts: datetime) -> datetime:
    # SQLite hands back naive datetimes; Haven only ever writes UTC.
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
