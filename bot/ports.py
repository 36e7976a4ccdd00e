"""The contract every platform adapter fulfils (after opsdroid's connectors, without a global registry)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from bot.types import Digest


class Connector(Protocol):
    """A platform adapter's lifecycle. ``listen`` returns when the connector is done or disconnected."""

    name: str

    async def connect(self) -> None:
        """Authenticate and open connections; raise a clear error if credentials are rejected."""

    async def listen(self) -> None:
        """Receive events and hand them to the engine until disconnected (or input ends)."""

    async def disconnect(self) -> None:
        """Stop receiving, finish in-flight work briefly, close connections. Safe to call twice."""


@runtime_checkable
class DigestSink(Protocol):
    """A connector that can post the weekly digest to a workspace's alert channel."""

    async def send_digest(self, digest: Digest) -> None: ...


class ReplyStream(Protocol):
    """An adapter's live view of a reply being written (a Slack stream, a Discord message being edited).

    ``update`` receives the whole reply so far, never a delta, so a retried model call can take back
    text it streamed; adapters throttle their platform calls. The final text is the turn's reply.
    """

    async def update(self, text: str) -> None: ...


class StorageUnavailable(RuntimeError):
    """The database could not be reached (a restart, a dropped connection); retrying may succeed."""


class StartupError(RuntimeError):
    """A connector cannot start (rejected credentials, a missing intent); the message says how to fix it."""
