"""The weekly digest for a workspace's alert channel: counts and links only, never content."""

from __future__ import annotations

import logging

from adapters.slack.api import SlackApi
from adapters.slack.translate import link_or_channel, thread_ref
from bot.notices import reason_phrase
from bot.types import Digest

log = logging.getLogger(__name__)

DIGEST_LINKS = 20  # reported threads linked in one digest; the rest are counted


async def post_digest(api: SlackApi, digest: Digest) -> None:
    """One ``chat.postMessage``. Links to reported threads are built from the workspace URL that
    ``auth.test`` gave (no call per link); without it each link costs a ``chat.getPermalink``."""
    total = sum(digest.endings_by_reason.values())
    reasons = ", ".join(
        f"{n} {reason_phrase(reason, 'for another reason')}"
        for reason, n in sorted(digest.endings_by_reason.items(), key=lambda kv: (-kv[1], kv[0]))
        if n
    )
    lines = [
        f":bar_chart: *Haven weekly digest* (since {digest.since.strftime('%Y-%m-%d')})",
        f"• Conversations ended: *{total}*" + (f" ({reasons})" if reasons else ""),
        f"• Endings held back because someone may be at risk: *{digest.vetoes}*",
        f"• Warnings given before an ending: *{digest.warnings}*",
        f"• Endings reported as a mistake: *{digest.feedback}*",
    ]
    reported = list(dict.fromkeys(digest.reported))
    if reported:
        shown = reported[:DIGEST_LINKS]
        links = [
            link_or_channel(await api.thread_link(channel, ts), thread_ref("", channel, ts))
            for channel, ts in shown
        ]
        more = f" and {len(reported) - len(shown)} more" if len(reported) > len(shown) else ""
        lines.append("• Reported threads: " + ", ".join(links) + more)
    lines.append("`/haven endings` and `/haven feedback` list the details.")
    if await api.post(digest.channel, "\n".join(lines)) is None:
        raise RuntimeError("the Slack digest could not be posted")
    log.info("slack digest posted", extra={"workspace": digest.workspace, "endings": total})
