"""Slack installations and OAuth states on Haven's database, for Bolt's OAuth flow (many workspaces).

The classes are slack_sdk's async store interfaces (``AsyncInstallationStore``, ``AsyncOAuthStateStore``)
over slack_sdk's own table layout (``slack_installations``, ``slack_bots``, ``slack_oauth_states``;
``storage.models``, created by migration 0009, never ``create_all``) with the queries of slack_sdk's
``SQLAlchemyInstallationStore`` / ``SQLAlchemyOAuthStateStore``: the latest row wins, naive UTC times.
They are not those classes themselves: slack_sdk's SQLAlchemy module imports SQLAlchemy's asyncio
extension, which needs greenlet, a dependency Haven's synchronous engines do not otherwise have. Each
call is one ``Database.run`` (a worker thread) through Haven's ``read()`` / ``write()``, so SQLite's
writers queue like every other write.

Removing a workspace's bot token (``app_uninstalled``, or the token revoked) also records the workspace
as departed (``storage.departures``), in the same transaction; saving an installation clears that.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.models.bot import Bot
from slack_sdk.oauth.installation_store.models.installation import Installation
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from sqlalchemy import Table, delete, insert, select
from sqlalchemy.engine import Connection

from storage.db import Database
from storage.departures import DEPARTED, upsert_departure
from storage.models import BOTS, INSTALLATIONS, STATES

log = logging.getLogger(__name__)

PLATFORM = "slack"
# How long an install link's state stays valid (Bolt's default is the same ten minutes).
STATE_SECONDS = 600

_I, _B, _S = INSTALLATIONS.c, BOTS.c, STATES.c


def _naive(ts: datetime | None) -> datetime | None:
    # slack_sdk's columns are timestamps without a time zone, holding UTC.
    return ts.astimezone(UTC).replace(tzinfo=None) if ts is not None and ts.tzinfo else ts


def _row(values: Mapping[str, Any], table: Table, client_id: str) -> dict[str, Any]:
    row = {k: v for k, v in values.items() if k in table.c and k != "id"}
    row["client_id"] = client_id
    for key in ("installed_at", "bot_token_expires_at", "user_token_expires_at"):
        if key in row:
            row[key] = _naive(row[key])
    row.setdefault("is_enterprise_install", False)
    return row


def _bot(row: Any) -> Bot:
    return Bot(
        app_id=row.app_id,
        enterprise_id=row.enterprise_id,
        enterprise_name=row.enterprise_name,
        team_id=row.team_id,
        team_name=row.team_name,
        bot_token=row.bot_token,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=row.bot_refresh_token,
        bot_token_expires_at=row.bot_token_expires_at,
        is_enterprise_install=row.is_enterprise_install,
        installed_at=row.installed_at,
    )


def _installation(row: Any) -> Installation:
    return Installation(
        app_id=row.app_id,
        enterprise_id=row.enterprise_id,
        enterprise_name=row.enterprise_name,
        enterprise_url=row.enterprise_url,
        team_id=row.team_id,
        team_name=row.team_name,
        bot_token=row.bot_token,
        bot_id=row.bot_id,
        bot_user_id=row.bot_user_id,
        bot_scopes=row.bot_scopes,
        bot_refresh_token=row.bot_refresh_token,
        bot_token_expires_at=row.bot_token_expires_at,
        user_id=row.user_id,
        user_token=row.user_token,
        user_scopes=row.user_scopes,
        user_refresh_token=row.user_refresh_token,
        user_token_expires_at=row.user_token_expires_at,
        incoming_webhook_url=row.incoming_webhook_url,
        incoming_webhook_channel=row.incoming_webhook_channel,
        incoming_webhook_channel_id=row.incoming_webhook_channel_id,
        incoming_webhook_configuration_url=row.incoming_webhook_configuration_url,
        is_enterprise_install=row.is_enterprise_install,
        token_type=row.token_type,
        installed_at=row.installed_at,
    )


class SlackInstallationStore(AsyncInstallationStore):
    """Installations and bot tokens of one Slack app (``client_id``)."""

    def __init__(self, database: Database, client_id: str) -> None:
        self._db = database
        self._client_id = client_id
        self._dialect = database.dialect.name

    @property
    def logger(self) -> logging.Logger:
        return log

    def _where(self, c: Any, enterprise_id: str | None, team_id: str | None) -> tuple[Any, ...]:
        # ``== None`` renders IS NULL, as slack_sdk's store relies on.
        return (c.client_id == self._client_id, c.enterprise_id == enterprise_id, c.team_id == team_id)

    # -- saving --------------------------------------------------------------------------------------

    async def async_save(self, installation: Installation) -> None:
        await self._db.run(self._save, installation)

    def _save(self, installation: Installation) -> None:
        with self._db.write() as conn:
            conn.execute(insert(INSTALLATIONS), _row(installation.to_dict(), INSTALLATIONS, self._client_id))
            conn.execute(insert(BOTS), _row(installation.to_bot().to_dict(), BOTS, self._client_id))
            if installation.team_id:
                conn.execute(
                    delete(DEPARTED).where(
                        DEPARTED.c.platform == PLATFORM, DEPARTED.c.workspace == installation.team_id
                    )
                )

    async def async_save_bot(self, bot: Bot) -> None:
        await self._db.run(self._save_bot, bot)

    def _save_bot(self, bot: Bot) -> None:
        with self._db.write() as conn:
            conn.execute(insert(BOTS), _row(bot.to_dict(), BOTS, self._client_id))

    # -- finding -------------------------------------------------------------------------------------

    async def async_find_bot(
        self, *, enterprise_id: str | None, team_id: str | None, is_enterprise_install: bool | None = False
    ) -> Bot | None:
        if is_enterprise_install or team_id is None:
            team_id = None
        return await self._db.run(self._find_bot, enterprise_id, team_id)

    def _find_bot(self, enterprise_id: str | None, team_id: str | None) -> Bot | None:
        stmt = (
            select(BOTS)
            .where(*self._where(_B, enterprise_id, team_id), _B.bot_token.is_not(None))
            .order_by(_B.installed_at.desc(), _B.id.desc())
            .limit(1)
        )
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        return None if row is None else _bot(row)

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        if is_enterprise_install or team_id is None:
            team_id = None
        return await self._db.run(self._find_installation, enterprise_id, team_id, user_id)

    def _find_installation(
        self, enterprise_id: str | None, team_id: str | None, user_id: str | None
    ) -> Installation | None:
        where = self._where(_I, enterprise_id, team_id)
        if user_id is not None:
            where = (*where, _I.user_id == user_id)
        stmt = select(INSTALLATIONS).where(*where).order_by(_I.installed_at.desc(), _I.id.desc()).limit(1)
        with self._db.read() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        installation = _installation(row)
        if user_id is not None or installation.bot_token is None:
            # The latest bot token wins over an older one on this installation (as slack_sdk does).
            bot = self._find_bot(enterprise_id, team_id)
            if bot is not None and bot.bot_token != installation.bot_token:
                installation.bot_id, installation.bot_user_id = bot.bot_id, bot.bot_user_id
                installation.bot_token, installation.bot_scopes = bot.bot_token, bot.bot_scopes
                installation.bot_refresh_token = bot.bot_refresh_token
                installation.bot_token_expires_at = bot.bot_token_expires_at
        return installation

    # -- removing ------------------------------------------------------------------------------------

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        # Without its bot token Haven can neither hear nor answer the workspace: it has left.
        await self._db.run(self._delete, enterprise_id, team_id, None, bots=True, installations=False)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await self._db.run(self._delete, enterprise_id, team_id, user_id, bots=False, installations=True)

    async def async_delete_all(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await self._db.run(self._delete, enterprise_id, team_id, None, bots=True, installations=True)

    def _delete(
        self,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        *,
        bots: bool,
        installations: bool,
    ) -> None:
        with self._db.write() as conn:
            if installations:
                where = self._where(_I, enterprise_id, team_id)
                if user_id is not None:
                    where = (*where, _I.user_id == user_id)
                conn.execute(delete(INSTALLATIONS).where(*where))
            if bots:
                conn.execute(delete(BOTS).where(*self._where(_B, enterprise_id, team_id)))
                if team_id:
                    reason = "app_uninstalled" if installations else "tokens_revoked"
                    self._depart(conn, team_id, reason)

    def _depart(self, conn: Connection, team_id: str, reason: str) -> None:
        conn.execute(upsert_departure(self._dialect, PLATFORM, team_id, reason, datetime.now(UTC)))


class SlackOAuthStateStore(AsyncOAuthStateStore):
    """The one-time ``state`` of each install link, consumed by the redirect that brings it back."""

    def __init__(self, database: Database, *, expiration_seconds: int = STATE_SECONDS) -> None:
        self._db = database
        self._seconds = expiration_seconds

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await self._db.run(self._issue)

    def _issue(self) -> str:
        state = str(uuid.uuid4())
        expire_at = _naive(datetime.now(UTC) + timedelta(seconds=self._seconds))
        with self._db.write() as conn:
            conn.execute(insert(STATES).values(state=state, expire_at=expire_at))
        return state

    async def async_consume(self, state: str) -> bool:
        return await self._db.run(self._consume, state)

    def _consume(self, state: str) -> bool:
        now = _naive(datetime.now(UTC))
        with self._db.write() as conn:
            # Delete-and-count: two redirects with one state cannot both succeed.
            result = conn.execute(delete(STATES).where(_S.state == state, _S.expire_at > now))
            consumed = bool(result.rowcount)
            # Expired states are never consumed; sweep them here rather than in another job.
            conn.execute(delete(STATES).where(_S.expire_at <= now))
        return consumed
