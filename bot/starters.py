"""What Haven offers someone who opens a new conversation in a surface made for starting one (Slack's
assistant view): a greeting and a few prompts to start from. Platform-neutral wording; adapters draw it.

The prompts are a setting: ``Settings.suggested_prompts`` (``HAVEN_SUGGESTED_PROMPTS``), one list for
every workspace, with ``DEFAULT_PROMPTS`` as its default. A list per workspace that admins edit belongs
in ``WorkspaceSettings`` next to the other workspace settings (a new column, so a migration); the adapter
would then take the workspace's list before this one.
"""

from __future__ import annotations

GREETING = (
    "Hi, I'm Haven. Ask me anything and I'll answer here; each thread is its own conversation, "
    "and you can start a new one at any time."
)
PROMPTS_TITLE = "Try one of these:"
DEFAULT_PROMPTS = (
    "Help me write a clear, friendly message to my team",
    "Explain a concept to me step by step",
    "Help me plan my week",
)
# Slack shows at most four suggested prompts.
MAX_PROMPTS = 4
