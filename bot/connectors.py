"""Choose the connectors ``haven run`` starts, from the Settings. Adapters are imported lazily.

Also the start-up truth about platforms: ``platform_problem`` names a half-configured platform, and
``Guarded`` turns any failure while a connector connects into one ``StartupError`` line.

Composition root (see ``bot.app``): may import ``adapters``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pydantic import SecretStr

from bot.ports import Connector, StartupError

if TYPE_CHECKING:
    from adapters.slack.workspaces import Installs
    from bot.app import Services
    from bot.config import Settings
    from storage.departures import Departures

SLACK_GUIDE = "docs/slack.md"
DISCORD_GUIDE = "docs/discord.md"
SLACK_VARIABLES = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")
SLACK_OAUTH_VARIABLES = ("SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET")
NO_PLATFORM_NO_TERMINAL = (
    "no platform is configured and there is no terminal to chat in: set SLACK_BOT_TOKEN with "
    "SLACK_APP_TOKEN or SLACK_SIGNING_SECRET (docs/slack.md), or DISCORD_TOKEN (docs/discord.md)"
)


def _given(value: SecretStr | str | int | None) -> bool:
    if value is None:
        return False
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return not (isinstance(value, str) and not value.strip())


def _names(names: Sequence[str]) -> str:
    """``A is`` / ``A and B are``."""
    if len(names) == 1:
        return f"{names[0]} is"
    return ", ".join(names[:-1]) + " and " + names[-1] + " are"


def platform_variables(settings: Settings) -> list[str]:
    """The platform variables that are set at all (an empty value counts as set: someone meant it)."""
    fields = {
        "SLACK_BOT_TOKEN": settings.slack_bot_token,
        "SLACK_APP_TOKEN": settings.slack_app_token,
        "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
        "SLACK_CLIENT_ID": settings.slack_client_id,
        "SLACK_CLIENT_SECRET": settings.slack_client_secret,
        "DISCORD_TOKEN": settings.discord_token,
        "DISCORD_SHARD_COUNT": settings.discord_shard_count,
        "DISCORD_SHARD_IDS": settings.discord_shard_ids,
    }
    return [name for name, value in fields.items() if value is not None]


def platform_problem(settings: Settings) -> str | None:
    """One line naming what a half-configured platform is missing, or None when each platform whose
    variables appear is complete."""
    present = set(platform_variables(settings))
    slack = [n for n in (*SLACK_VARIABLES, *SLACK_OAUTH_VARIABLES) if n in present]
    if slack:
        empty = [n for n in slack if not _given(getattr(settings, n.lower()))]
        if empty:
            return f"{_names(empty)} set but empty: fill in or remove it ({SLACK_GUIDE})"
        oauth = [n for n in SLACK_OAUTH_VARIABLES if n in present]
        if oauth:
            problem = _slack_oauth_problem(oauth, present)
            if problem:
                return problem
        elif "SLACK_BOT_TOKEN" not in present:
            return (
                f"{_names(slack)} set but SLACK_BOT_TOKEN is not: set it to the app's Bot User OAuth"
                " Token, xoxb-… (or SLACK_CLIENT_ID and SLACK_CLIENT_SECRET for many workspaces)"
                f" ({SLACK_GUIDE})"
            )
        if len(slack) == 1:
            return (
                "SLACK_BOT_TOKEN is set but neither SLACK_APP_TOKEN (Socket Mode) nor SLACK_SIGNING_SECRET "
                f"(HTTP mode) is: set one of them ({SLACK_GUIDE})"
            )
    discord = [n for n in ("DISCORD_TOKEN", "DISCORD_SHARD_COUNT", "DISCORD_SHARD_IDS") if n in present]
    if discord:
        if "DISCORD_TOKEN" not in present:
            return (
                f"{_names(discord)} set but DISCORD_TOKEN is not: "
                f"set DISCORD_TOKEN to the bot's token ({DISCORD_GUIDE})"
            )
        if not _given(settings.discord_token):
            return f"DISCORD_TOKEN is set but empty: fill in or remove it ({DISCORD_GUIDE})"
    return None


def _slack_oauth_problem(oauth: list[str], present: set[str]) -> str | None:
    """Installs into many workspaces: both OAuth credentials, HTTP mode, and no single bot token."""
    if len(oauth) == 1:
        (other,) = set(SLACK_OAUTH_VARIABLES) - set(oauth)
        return (
            f"{oauth[0]} is set but {other} is not: set both (from the app's Basic Information page) to"
            f" install Haven into many workspaces, or neither ({SLACK_GUIDE})"
        )
    if "SLACK_BOT_TOKEN" in present:
        return (
            "SLACK_BOT_TOKEN and SLACK_CLIENT_ID/SLACK_CLIENT_SECRET are both set: set the bot token for one"
            f" workspace or the client id and secret for many, not both ({SLACK_GUIDE})"
        )
    if "SLACK_APP_TOKEN" in present:
        return (
            "SLACK_APP_TOKEN is set with SLACK_CLIENT_ID: installs into many workspaces run in HTTP mode;"
            f" unset SLACK_APP_TOKEN and set SLACK_SIGNING_SECRET ({SLACK_GUIDE})"
        )
    if "SLACK_SIGNING_SECRET" not in present:
        return (
            "SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are set but SLACK_SIGNING_SECRET is not: set it, the"
            f" install pages and events are served over HTTP ({SLACK_GUIDE})"
        )
    return None


def build_connectors(services: Services) -> list[Connector]:
    settings = services.settings
    connectors: list[Connector] = []
    if settings.slack_configured:
        from adapters.slack import SlackConnector

        departures = _departures(services)
        connectors.append(
            SlackConnector(services, installs=_slack_installs(services), departed=departures.mark)
        )
    if settings.discord_configured:
        from adapters.discord import DiscordConnector

        departures = _departures(services)
        connectors.append(DiscordConnector(services, departed=departures.mark, returned=departures.clear))
    if not connectors:
        from adapters.terminal import TerminalConnector

        connectors.append(TerminalConnector(services.engine))
    return connectors


def _departures(services: Services) -> Departures:
    """Where Haven was removed (Slack uninstalls, Discord guild removals), for ``haven admin purge``."""
    from storage.departures import Departures

    return Departures(services.repo.database)


def _slack_installs(services: Services) -> Installs | None:
    """Many workspaces: Bolt's OAuth flow, with installations and states on Haven's database."""
    settings = services.settings
    if not settings.slack_oauth:
        return None
    assert settings.slack_client_id is not None and settings.slack_client_secret is not None
    from adapters.slack.workspaces import Installs
    from storage.slack_installations import SlackInstallationStore, SlackOAuthStateStore

    database = services.repo.database
    return Installs(
        client_id=settings.slack_client_id,
        client_secret=settings.slack_client_secret.get_secret_value(),
        installations=SlackInstallationStore(database, settings.slack_client_id),
        states=SlackOAuthStateStore(database),
        api_url=settings.slack_api_url,
        redirect_uri=settings.slack_redirect_uri,
    )


_CONNECT_FIXES = {
    "slack": f"check the network, SLACK_API_URL and the Slack tokens ({SLACK_GUIDE})",
    "discord": f"check the network and DISCORD_TOKEN ({DISCORD_GUIDE})",
}


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as ``Type: first line of its message``, short enough for one line on stderr."""
    text = str(exc).strip().splitlines()
    first = text[0].strip() if text else ""
    line = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 1] + "…"


class Guarded:
    """A connector whose ``connect`` fails as one ``StartupError`` line naming the platform and the fix,
    whatever went wrong (an unreachable API, a refused connection); everything else is forwarded."""

    def __init__(self, inner: Connector) -> None:
        self.inner = inner
        self.name = inner.name

    async def connect(self) -> None:
        try:
            await self.inner.connect()
        except StartupError:
            raise
        except Exception as exc:
            fix = _CONNECT_FIXES.get(self.name, "see the log at HAVEN_LOG_LEVEL=DEBUG")
            where = self.name.capitalize()
            raise StartupError(f"could not connect to {where} ({one_line(exc)}): {fix}") from exc

    async def listen(self) -> None:
        await self.inner.listen()

    async def disconnect(self) -> None:
        await self.inner.disconnect()

    async def ready(self) -> bool:
        return await self.inner.ready()
