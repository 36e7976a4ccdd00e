"""What Haven posts on Discord outside a turn's reply: admin alerts, digests, the threads and intros its
commands open, and the lock and archive of an ended thread Haven opened."""

from __future__ import annotations

import logging

import discord

from adapters.discord import embeds
from adapters.discord.shared import Shared
from adapters.discord.translate import is_dm, nonce_for, split_message, thread_name
from bot.types import AdminAlert, Digest

log = logging.getLogger(__name__)


async def lock_and_archive(shared: Shared, thread: discord.Thread) -> None:
    guild = thread.guild
    me = guild.me
    try:
        allowed = me is not None and thread.permissions_for(me).manage_threads
    except discord.ClientException:
        allowed = False  # parent channel not cached; Discord would refuse anyway
    if not allowed:
        warned = shared.warned_no_manage_threads
        if guild.id not in warned:
            warned.add(guild.id)
            log.warning(
                "ended threads stay open: Haven lacks Manage Threads in this server",
                extra={"guild": guild.id},
            )
        return
    try:
        await thread.edit(locked=True, archived=True, reason="Haven ended this conversation")
    except discord.HTTPException as exc:
        log.warning("lock/archive failed", extra={"guild": guild.id, "status": exc.status})


async def send_alert(shared: Shared, alert: AdminAlert, *, source: str) -> None:
    if is_dm(alert.thread):
        return
    guild = shared.client.get_guild(int(alert.thread.workspace))
    channel = guild.get_channel_or_thread(int(alert.channel)) if guild and alert.channel.isdigit() else None
    if not isinstance(channel, discord.TextChannel | discord.Thread):
        log.warning("alert channel not found", extra={"guild": alert.thread.workspace})
        return
    await shared.send(
        channel, content=embeds.alert_text(alert), nonce=nonce_for(source, f"alert:{alert.kind}")
    )


async def send_digest(shared: Shared, digest: Digest) -> None:
    # The scheduler runs in one process per deployment, which need not run this guild's shard.
    channel = await shared.channel_in(digest.workspace, digest.channel)
    if not isinstance(channel, discord.TextChannel | discord.Thread):
        log.warning("digest channel not found", extra={"guild": digest.workspace})
        return
    source = f"digest:{digest.workspace}:{digest.since.isoformat()}"
    for index, chunk in enumerate(split_message(embeds.digest_text(digest))):
        await shared.send(channel, content=chunk, nonce=nonce_for(source, "digest", index))


async def create_thread(parent: discord.TextChannel, text: str) -> discord.Thread | None:
    try:
        return await parent.create_thread(
            name=thread_name(text), type=discord.ChannelType.public_thread, auto_archive_duration=1440
        )
    except discord.HTTPException as exc:
        log.warning(
            "cannot create a thread",
            extra={"guild": parent.guild.id, "status": exc.status, "code": exc.code},
        )
        return None


async def post_intro(
    shared: Shared, target: discord.abc.Messageable, text: str, *, source: str
) -> discord.Message | None:
    first: discord.Message | None = None
    for index, chunk in enumerate(split_message(text)):
        sent = await shared.send(target, content=chunk, nonce=nonce_for(source, "intro", index))
        first = first or sent
    return first
