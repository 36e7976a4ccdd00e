"""Test doubles for the core's ports, for fast tests and benchmarks; never imported by ``bot/``.

- ``MemoryStore``: ``bot.ports.ConversationStore``, ``bot.ports.AdminStore`` and ``bot.ports.InboxStore``
  in memory, with the semantics of ``storage.repository.Repository`` (``tests/test_store_contract.py``
  runs one suite over both, SQLite and PostgreSQL included).
- ``ScriptedModel``: a ``bot.model.ModelClient`` that answers from queues and records what it was asked.
- ``RecordingRenderer``: a ``bot.ports.Renderer`` that records the presentation items it is handed.

And the local stand-ins for the outside world that the wire-level tests and ``bench/`` drive:
``mock_slack`` (Slack's Web API and Socket Mode), ``fake_discord`` (Discord's REST API and gateway),
``fake_anthropic`` (a scripted Messages API server), ``postgres`` (a throwaway PostgreSQL server),
``slack_harness`` (a real Bolt app with signed requests) and ``harness`` (settings and services).
"""

from fakes.memory_store import MemoryStore
from fakes.recording_renderer import RecordingRenderer
from fakes.scripted_model import ScriptedModel

__all__ = ["MemoryStore", "RecordingRenderer", "ScriptedModel"]
