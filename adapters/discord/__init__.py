"""Haven on Discord (discord.py 2.x): threads, closure notices with a persistent button, forks, admin."""

from adapters.discord.connector import DiscordConnector, DiscordStartupError, sync_command

__all__ = ["DiscordConnector", "DiscordStartupError", "sync_command"]
