"""Reading a file attached to a Discord message (``bot.ports.FileFetcher``): the attachment's URL on
Discord's own CDN only, without credentials (the URL is signed by Discord), through ``adapters.files``.

Discord's attachment URLs expire (about a day after they were handed out): a later turn that needs the
file again after that, in a process that no longer holds its bytes, gets a note instead of the file."""

from __future__ import annotations

from collections.abc import Collection

from adapters.files import FileOrigin, fetch_file, origins
from bot.types import Attachment

# Where Discord serves attachments. Tests set HAVEN_DISCORD_FILE_ORIGINS to a local fake instead.
DISCORD_FILE_ORIGINS = (
    FileOrigin("https://cdn.discordapp.com", "an attachment's url, as the gateway hands it over"),
    FileOrigin("https://media.discordapp.net", "an attachment's proxy_url (Discord's media proxy)"),
)


class DiscordFiles:
    def __init__(self, configured: Collection[str] | None = None) -> None:
        self._allowed = origins(configured, DISCORD_FILE_ORIGINS)

    async def fetch(self, workspace: str, file: Attachment, *, max_bytes: int, seconds: float) -> bytes:
        # No credentials to protect: ``fetch_file`` refuses a foreign host before its first request.
        return await fetch_file(
            file.url,
            allowed=self._allowed,
            platform="Discord",
            max_bytes=max_bytes,
            size=file.size,
            seconds=seconds,
            html_ok=file.mimetype.startswith("text/html"),
        )
