"""What Haven offers someone who opens a new conversation in a surface made for starting one (Slack's
assistant view): a greeting and a few prompts to start from. Platform-neutral wording; adapters draw it.

The prompts are a workspace setting admins edit (``WorkspaceSettings.suggested_prompts``, the ``prompts``
setting of ``bot.admin``); a workspace that never set its own takes the process-wide list
(``Settings.suggested_prompts``, ``HAVEN_SUGGESTED_PROMPTS``), whose default is ``DEFAULT_PROMPTS``.
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
# Slack states no limit; a suggestion is one click that sends it as the person's message, so it stays a
# line, not a letter.
MAX_PROMPT_CHARS = 200


def prompts_for(workspace: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """The prompts a new assistant thread shows: the workspace's own list when its admins set one (an
    empty list shows none), else the process-wide one."""
    return default if workspace is None else workspace
