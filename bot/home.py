"""A person's Home (Slack's App Home tab): what it shows them, and "forget me".

Everyone sees how to start a conversation, their recent conversations in the workspace, and "forget me"
(the self-serve form of the admin CLI's ``forget-user``, for this workspace only). Workspace admins
(``bot.admin.is_admin``) also see the crisis resources, the settings, recent endings and "mistake"
reports, and this week's model usage. That choice is made here (``compose``); an adapter only draws
the ``HomeContent`` it gets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.admin import cache_hit_ratio, describe_settings, is_admin
from bot.notices import crisis_card
from bot.ports import AdminStore
from bot.types import (
    AuditRecord,
    Author,
    CrisisCard,
    EndingRecord,
    FeedbackRecord,
    UserConversation,
    WorkspaceSettings,
)

CONVERSATIONS_SHOWN = 10
ADMIN_ROWS_SHOWN = 8
USAGE_WINDOW = timedelta(days=7)
# The admin audit's action for a person's own "forget me" (the CLI's forget-user writes none).
FORGET_ACTION = "user.forget"


@dataclass(frozen=True, slots=True)
class AdminOverview:
    """What a workspace admin sees below their own part of the Home."""

    crisis: CrisisCard  # what people at risk are shown now (the workspace's text, or the default)
    crisis_custom: bool
    crisis_locales: tuple[str, ...]
    settings: tuple[tuple[str, str], ...]  # ``bot.admin.describe_settings``
    endings: tuple[EndingRecord, ...]
    feedback: tuple[FeedbackRecord, ...]
    usage: Mapping[str, float]  # ``AdminStore.usage_totals`` plus ``cache_hit_ratio``
    usage_since: datetime


@dataclass(frozen=True, slots=True)
class HomeContent:
    user_id: str
    conversations: tuple[UserConversation, ...] = ()
    admin: AdminOverview | None = None  # None: the person is not an admin of this workspace
    # Set right after "forget me": what was removed, so the Home can say so.
    forgotten: Mapping[str, int] | None = None


def compose(
    actor: Author,
    settings: WorkspaceSettings,
    conversations: Sequence[UserConversation],
    *,
    endings: Sequence[EndingRecord] = (),
    feedback: Sequence[FeedbackRecord] = (),
    usage: Mapping[str, int] | None = None,
    usage_since: datetime,
    forgotten: Mapping[str, int] | None = None,
) -> HomeContent:
    """The Home for ``actor``: the admin part only for an admin of ``settings``'s workspace."""
    overview = None
    if is_admin(actor, settings):
        totals = dict(usage or _NO_USAGE)
        overview = AdminOverview(
            crisis=crisis_card(settings),
            crisis_custom=settings.crisis_message is not None,
            crisis_locales=tuple(sorted(settings.crisis_locales)),
            settings=tuple(describe_settings(settings)),
            endings=tuple(endings[:ADMIN_ROWS_SHOWN]),
            feedback=tuple(feedback[:ADMIN_ROWS_SHOWN]),
            usage={**totals, "cache_hit_ratio": round(cache_hit_ratio(totals), 4)},
            usage_since=usage_since,
        )
    return HomeContent(
        user_id=actor.id,
        conversations=tuple(conversations[:CONVERSATIONS_SHOWN]),
        admin=overview,
        forgotten=forgotten,
    )


_NO_USAGE = {
    "calls": 0,
    "input_tokens": 0,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 0,
}


class Home:
    """Reads what ``compose`` needs, and forgets a person on their own request. ``clock`` (UTC) sets the
    usage window and times the audit record."""

    def __init__(self, store: AdminStore, *, clock: Callable[[], datetime] | None = None) -> None:
        self._store = store
        self._clock = clock or _utcnow

    async def content(
        self, actor: Author, platform: str, workspace: str, *, forgotten: Mapping[str, int] | None = None
    ) -> HomeContent:
        """``actor`` must carry a fresh platform-admin flag: it decides whether the admin part shows."""
        store = self._store
        settings = await store.get_settings(platform, workspace)
        mine = await store.list_user_conversations(platform, workspace, actor.id, CONVERSATIONS_SHOWN)
        since = self._clock() - USAGE_WINDOW
        if not is_admin(actor, settings):
            return compose(actor, settings, mine, usage_since=since, forgotten=forgotten)
        return compose(
            actor,
            settings,
            mine,
            endings=await store.list_endings(platform, workspace, ADMIN_ROWS_SHOWN),
            feedback=await store.list_feedback(platform, workspace, ADMIN_ROWS_SHOWN),
            usage=await store.usage_totals(platform, workspace, since),
            usage_since=since,
            forgotten=forgotten,
        )

    async def forget_me(self, actor: Author, platform: str, workspace: str) -> dict[str, int]:
        """Remove what ``actor`` wrote in this workspace (``AdminStore.forget_user``), audited. Anyone
        may ask for themselves, and only for themselves: the person is ``actor``, never an argument."""
        record = AuditRecord(
            platform=platform,
            workspace=workspace,
            actor_id=actor.id,
            actor_name=None,  # the point is to keep less about them
            action=FORGET_ACTION,
            setting="own-messages",
            old=None,
            new=None,
            created_at=self._clock(),
        )
        return await self._store.forget_user(platform, workspace, actor.id, record)


def _utcnow() -> datetime:
    return datetime.now(UTC)
