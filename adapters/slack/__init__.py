"""Haven on Slack (slack-bolt AsyncApp): events, the /haven command, the Edit & fork shortcut, Block Kit."""

from adapters.slack.app import COMMAND, EVENTS, SHORTCUT_EDIT_FORK, SlackBot, build_app
from adapters.slack.connector import SlackConnector

__all__ = ["COMMAND", "EVENTS", "SHORTCUT_EDIT_FORK", "SlackBot", "SlackConnector", "build_app"]
