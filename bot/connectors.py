"""Choose the connectors ``haven run`` starts, from the Settings. Adapters are imported lazily.

Composition root (see ``bot.app``): may import ``adapters``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.ports import Connector

if TYPE_CHECKING:
    from bot.app import Services


def build_connectors(services: Services) -> list[Connector]:
    settings = services.settings
    connectors: list[Connector] = []
    if settings.slack_configured:
        from adapters.slack import SlackConnector

        connectors.append(SlackConnector(services))
    if settings.discord_configured:
        from adapters.discord import DiscordConnector

        connectors.append(DiscordConnector(services))
    if not connectors:
        from adapters.terminal import TerminalConnector

        connectors.append(TerminalConnector(services.engine))
    return connectors
