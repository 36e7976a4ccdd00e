"""Reading a file a person shared in Slack (``bot.ports.FileFetcher``): ``url_private_download`` with
the bot token of the workspace it was shared in, from Slack's own file hosts only (``adapters.files``).
Needs the ``files:read`` scope (manifest.yml)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from adapters.files import FileOrigin, fetch_file, is_allowed, origins
from bot.files import FileHostRefused, FileUnavailable
from bot.types import Attachment

# Where Slack serves files' private URLs. GovSlack and Enterprise Grid deployments with their own file
# host set HAVEN_SLACK_FILE_ORIGINS instead (as SLACK_API_URL does for the Web API).
SLACK_FILE_ORIGINS = (
    FileOrigin(
        "https://files.slack.com",
        "url_private and url_private_download of every file shared in a workspace; needs the bot token",
    ),
)


class SlackFiles:
    """``token_for(team)``: the workspace's bot token (single-token mode: always the one token)."""

    def __init__(
        self, token_for: Callable[[str], Awaitable[str | None]], configured: Collection[str] | None = None
    ) -> None:
        self._token_for = token_for
        self._allowed = origins(configured, SLACK_FILE_ORIGINS)

    async def fetch(self, workspace: str, file: Attachment, *, max_bytes: int, seconds: float) -> bytes:
        if not file.url:
            # A file Slack did not share in full with the app (a Slack Connect file's "check_file_info").
            raise FileUnavailable("files.not_shared", platform="Slack")
        # Before the token is even looked up: a URL elsewhere never learns it, nor gets a request.
        if not is_allowed(file.url, self._allowed):
            raise FileHostRefused("files.foreign_host", platform="Slack")
        token = await self._token_for(workspace)
        if not token:
            raise FileUnavailable("files.not_handed_over", platform="Slack")
        return await fetch_file(
            file.url,
            allowed=self._allowed,
            platform="Slack",
            max_bytes=max_bytes,
            size=file.size,
            seconds=seconds,
            headers={"Authorization": f"Bearer {token}"},
            html_ok=file.mimetype.startswith("text/html"),
        )
