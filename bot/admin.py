"""Admin operations on a workspace's settings, shared by every adapter and the CLI.

Each call takes the acting person and checks permission here, in code, every time: an adapter's
command registration (Discord ``default_permissions``, a Slack manifest) is a convenience, not a gate.
The model never reaches this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.ports import AdminStore
from bot.starters import MAX_PROMPT_CHARS, MAX_PROMPTS
from bot.types import (
    AuditRecord,
    Author,
    DecisionRecord,
    EndingRecord,
    FeedbackRecord,
    UsageGrouping,
    UsageLine,
    WorkspaceSettings,
)

log = logging.getLogger(__name__)

MAX_CRISIS_CHARS = 3000
# Workspace instructions share the cached system prompt with Haven's rules: long enough for a persona and
# a few house rules, short enough to stay a small part of every request.
MAX_INSTRUCTIONS_CHARS = 2000
# How much of a crisis text an audit record keeps: enough to recognise it, bounded whatever its length.
AUDIT_TEXT_START = 80


class NotAllowed(PermissionError):
    """The actor is not an admin of this workspace."""


class BadSetting(ValueError):
    """A setting name or value an admin typed is not valid; the message says why."""


# Words that empty a list setting rather than naming an entry (no platform issues such ids).
CLEAR_WORDS = frozenset({"none", "off", "-", "clear", "nobody"})


# name → (parser, description). Parsers raise BadSetting with a message a person can act on.
def _bool(value: str) -> bool:
    v = value.strip().lower()
    if v in ("on", "true", "yes", "1", "enable", "enabled"):
        return True
    if v in ("off", "false", "no", "0", "disable", "disabled"):
        return False
    raise BadSetting(f"expected on or off, got {value!r}")


def _int_range(lo: int, hi: int) -> Any:
    def parse(value: str) -> int:
        try:
            n = int(value.strip())
        except ValueError:
            raise BadSetting(f"expected a whole number from {lo} to {hi}, got {value!r}") from None
        if not lo <= n <= hi:
            raise BadSetting(f"expected a whole number from {lo} to {hi}, got {n}")
        return n

    return parse


def _channel(value: str) -> str | None:
    v = value.strip()
    if v.lower() in CLEAR_WORDS or not v:
        return None
    # Slack "<#C123|name>", Discord "<#123>": keep the id only.
    if v.startswith("<#") and v.endswith(">"):
        v = v[2:-1].split("|", 1)[0]
    if not v.replace("-", "").replace("_", "").isalnum() or len(v) > 64:
        raise BadSetting(f"not a channel id: {value!r}")
    return v


def _channels(value: str) -> tuple[str, ...]:
    """A channel list: ids or channel mentions, separated by spaces or commas; a clear word empties it."""
    if value.strip().lower() in CLEAR_WORDS:
        return ()
    found: list[str] = []
    for part in value.replace(",", " ").split():
        channel = _channel(part)
        if channel is not None and channel not in found:
            found.append(channel)
    return tuple(found)


def _instructions(value: str) -> str | None:
    text = value.strip()
    if len(text) > MAX_INSTRUCTIONS_CHARS:
        raise BadSetting(
            f"workspace instructions are limited to {MAX_INSTRUCTIONS_CHARS:,} characters; this text has "
            f"{len(text):,} — shorten it and try again"
        )
    return text or None


def _prompts(value: str) -> tuple[str, ...] | None:
    """Suggested prompts, one per line or separated by ``|`` (a one-line command has no line breaks);
    ``default`` goes back to the process-wide list, a clear word shows none."""
    if value.strip().lower() == "default":
        return None
    if value.strip().lower() in CLEAR_WORDS:
        return ()
    found: list[str] = []
    for part in value.replace("|", "\n").splitlines():
        prompt = " ".join(part.split())
        if prompt and prompt not in found:
            found.append(prompt)
    if len(found) > MAX_PROMPTS:
        raise BadSetting(f"Slack shows at most {MAX_PROMPTS} suggested prompts; this list has {len(found)}")
    long = [p for p in found if len(p) > MAX_PROMPT_CHARS]
    if long:
        raise BadSetting(
            f"a suggested prompt is limited to {MAX_PROMPT_CHARS} characters; {long[0][:30]!r}… has "
            f"{len(long[0])} — shorten it and try again"
        )
    return tuple(found)


def _verify(value: str) -> bool | None:
    return None if value.strip().lower() == "default" else _bool(value)


def _admins(value: str) -> tuple[str, ...]:
    if value.strip().lower() in CLEAR_WORDS:
        return ()
    # Slack mentions arrive as "<@U123|name>", Discord's as "<@123>" or "<@!123>"; keep the ids.
    ids = [v.strip().strip("<>").lstrip("@!").split("|", 1)[0] for v in value.replace(",", " ").split()]
    return tuple(i for i in ids if i)


SETTINGS: dict[str, tuple[Any, str, str]] = {
    # name: (parser, field, help)
    "ending": (_bool, "ending_enabled", "on|off — may Haven end conversations at all"),
    "warnings": (
        _int_range(1, 5),
        "abuse_warnings_before_end",
        "1–5 — held abuse proposals before an ending",
    ),
    "verify": (_verify, "verify_endings", "on|off|default — check abuse endings with a second model call"),
    "alert-channel": (_channel, "alert_channel", "channel id or none — where admins get ending notices"),
    "retention": (_int_range(1, 3650), "retention_days", "1–3650 — days message text is kept"),
    "admins": (_admins, "admin_users", "user ids, or none — extra Haven admins besides platform admins"),
    "allow-channels": (
        _channels,
        "allowed_channels",
        "channels, or none — the only channels Haven answers in (none: every channel; DMs always)",
    ),
    "deny-channels": (
        _channels,
        "denied_channels",
        "channels, or none — channels Haven never answers in (wins over allow-channels)",
    ),
    "instructions": (
        _instructions,
        "instructions",
        f"text, up to {MAX_INSTRUCTIONS_CHARS:,} characters — a persona and preferences for Haven, "
        "below its own safety rules (empty: none)",
    ),
    "prompts": (
        _prompts,
        "suggested_prompts",
        f"up to {MAX_PROMPTS} prompts separated by | — what a new Slack assistant thread suggests asking "
        "(default: the built-in list; none: no suggestions)",
    ),
}
# Settings whose value is free text: the audit keeps a bounded summary of it (``text_summary``).
TEXT_SETTINGS = frozenset({"instructions"})


def is_admin(actor: Author, settings: WorkspaceSettings) -> bool:
    return actor.is_platform_admin or actor.id in settings.admin_users


class Admin:
    """Every change is saved together with its ``AuditRecord`` (one store call, one transaction), so the
    audit shows each change made from Slack, Discord or the CLI alike. ``clock`` (UTC) times the records."""

    def __init__(self, store: AdminStore, *, clock: Callable[[], datetime] | None = None) -> None:
        self._repo = store
        self._clock = clock or _utcnow

    async def _checked(self, actor: Author, platform: str, workspace: str) -> WorkspaceSettings:
        settings = await self._repo.get_settings(platform, workspace)
        if not is_admin(actor, settings):
            log.info("admin action refused", extra={"platform": platform, "workspace": workspace})
            raise NotAllowed("only workspace admins can do that")
        return settings

    def _record(
        self, actor: Author, new: WorkspaceSettings, action: str, setting: str, old: Any, value: Any
    ) -> AuditRecord:
        return AuditRecord(
            platform=new.platform,
            workspace=new.workspace,
            actor_id=actor.id,
            actor_name=actor.name or None,
            action=action,
            setting=setting,
            old=old,
            new=value,
            created_at=self._clock(),
        )

    async def settings(self, actor: Author, platform: str, workspace: str) -> WorkspaceSettings:
        return await self._checked(actor, platform, workspace)

    async def set_crisis_message(
        self, actor: Author, platform: str, workspace: str, text: str, locale: str | None = None
    ) -> WorkspaceSettings:
        settings = await self._checked(actor, platform, workspace)
        text = text.strip()
        if not text:
            raise BadSetting("the crisis message cannot be empty (use reset for the built-in default)")
        if len(text) > MAX_CRISIS_CHARS:
            raise BadSetting(f"the crisis message is limited to {MAX_CRISIS_CHARS} characters")
        if locale:
            old = settings.crisis_locales.get(locale)
            new = dataclasses.replace(settings, crisis_locales={**settings.crisis_locales, locale: text})
        else:
            old = settings.crisis_message
            new = dataclasses.replace(settings, crisis_message=text)
        setting = f"crisis-message:{locale}" if locale else "crisis-message"
        record = self._record(actor, new, "resources.set", setting, text_summary(old), text_summary(text))
        log.info("crisis resources changed", extra={"platform": platform, "workspace": workspace})
        return await self._repo.save_settings(new, [record])

    async def reset_crisis_message(self, actor: Author, platform: str, workspace: str) -> WorkspaceSettings:
        settings = await self._checked(actor, platform, workspace)
        new = dataclasses.replace(settings, crisis_message=None, crisis_locales={})
        record = self._record(
            actor, new, "resources.reset", "crisis-resources", _resources(settings), _resources(new)
        )
        log.info("crisis resources reset", extra={"platform": platform, "workspace": workspace})
        return await self._repo.save_settings(new, [record])

    async def change(
        self, actor: Author, platform: str, workspace: str, name: str, value: str
    ) -> WorkspaceSettings:
        settings = await self._checked(actor, platform, workspace)
        if name not in SETTINGS:
            raise BadSetting(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
        parser, field_name, _ = SETTINGS[name]
        new = dataclasses.replace(settings, **{field_name: parser(value)})
        shown: Callable[[Any], Any] = text_summary if name in TEXT_SETTINGS else _json
        old_value, new_value = (shown(getattr(s, field_name)) for s in (settings, new))
        record = self._record(actor, new, "settings.set", name, old_value, new_value)
        log.info("setting changed", extra={"platform": platform, "workspace": workspace, "setting": name})
        return await self._repo.save_settings(new, [record])

    async def audit(self, actor: Author, platform: str, workspace: str, limit: int = 20) -> list[AuditRecord]:
        """The workspace's admin changes, newest first."""
        await self._checked(actor, platform, workspace)
        return await self._repo.list_admin_audit(platform, workspace, limit)

    async def endings(
        self, actor: Author, platform: str, workspace: str, limit: int = 20
    ) -> list[EndingRecord]:
        await self._checked(actor, platform, workspace)
        return await self._repo.list_endings(platform, workspace, limit)

    async def feedback(
        self, actor: Author, platform: str, workspace: str, limit: int = 20
    ) -> list[FeedbackRecord]:
        await self._checked(actor, platform, workspace)
        return await self._repo.list_feedback(platform, workspace, limit)

    async def usage_lines(
        self,
        actor: Author,
        platform: str,
        workspace: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        by: UsageGrouping | None = None,
    ) -> list[UsageLine]:
        """Usage over a window, per model and optionally per person or conversation (``bot.pricing``
        estimates what it cost)."""
        await self._checked(actor, platform, workspace)
        return await self._repo.usage_lines(platform, workspace, since=since, until=until, by=by)

    async def decisions(
        self, actor: Author, platform: str, workspace: str, limit: int = 50
    ) -> list[DecisionRecord]:
        await self._checked(actor, platform, workspace)
        return await self._repo.list_decisions(platform, workspace, limit)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _json(value: Any) -> Any:
    """A setting's value as the audit stores it (JSON: a tuple of admins becomes a list)."""
    return list(value) if isinstance(value, tuple) else value


def text_summary(text: str | None) -> dict[str, Any] | None:
    """A crisis text (or the workspace instructions) as an audit record keeps it: its length, a short
    SHA-256 digest (equal texts, equal digests) and its first words. Bounded whatever the text's length
    (up to 3,000 characters), and enough to see what changed; the whole current text is one ``resources
    show`` (or ``settings show``) away. ``None``: no custom text (the built-in default, no instructions)."""
    if text is None:
        return None
    start = " ".join(text.split())
    if len(start) > AUDIT_TEXT_START:
        start = start[: AUDIT_TEXT_START - 1] + "…"
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return {"chars": len(text), "sha256": digest, "start": start}


def _resources(settings: WorkspaceSettings) -> dict[str, Any]:
    """Everything a reset touches: the message and each locale's variant, summarised."""
    return {
        "message": text_summary(settings.crisis_message),
        "locales": {k: text_summary(v) for k, v in sorted(settings.crisis_locales.items())},
    }


def cache_hit_ratio(totals: dict[str, int]) -> float:
    """Share of prompt tokens served from the prompt cache."""
    prompt = (
        totals["input_tokens"] + totals["cache_creation_input_tokens"] + totals["cache_read_input_tokens"]
    )
    return totals["cache_read_input_tokens"] / prompt if prompt else 0.0


def _prompts_shown(prompts: tuple[str, ...] | None) -> str:
    if prompts is None:
        return "built-in default"
    return " | ".join(prompts) or "none"


def describe_settings(settings: WorkspaceSettings) -> list[tuple[str, str]]:
    """Name/value rows for showing settings in any adapter."""
    verify = "default" if settings.verify_endings is None else ("on" if settings.verify_endings else "off")
    return [
        ("ending", "on" if settings.ending_enabled else "off"),
        ("warnings", str(settings.abuse_warnings_before_end)),
        ("verify", verify),
        ("alert-channel", settings.alert_channel or "none"),
        ("retention", f"{settings.retention_days} days"),
        ("admins", ", ".join(settings.admin_users) or "platform admins only"),
        ("allow-channels", ", ".join(settings.allowed_channels) or "every channel"),
        ("deny-channels", ", ".join(settings.denied_channels) or "none"),
        ("instructions", f"{len(settings.instructions):,} characters" if settings.instructions else "none"),
        ("prompts", _prompts_shown(settings.suggested_prompts)),
        ("crisis message", "custom" if settings.crisis_message else "built-in default"),
        ("crisis locales", ", ".join(sorted(settings.crisis_locales)) or "none"),
    ]
