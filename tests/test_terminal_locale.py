"""`haven chat --locale`: the terminal's notices in the chosen language (the real command, piped)."""

from __future__ import annotations

from pathlib import Path

from bot.i18n import strings_for
from tests.test_terminal import piped_chat


def test_chat_with_a_spanish_locale_ends_in_spanish(tmp_path: Path) -> None:
    proc = piped_chat(tmp_path, "--locale", "es-ES")
    es = strings_for("es")
    out = proc.stdout
    assert out.count(f"*** {es('notice.closure_title')} ***") == 1
    assert es("notice.reason_abuse") in out and es("terminal.hint_new") in out
    tail = out.split(f"*** {es('notice.closure_title')} ***", 1)[1]
    assert es("notice.ended_reminder", new=es("terminal.hint_new"), fork=es("terminal.hint_fork")) in tail
    assert "This conversation has ended" not in out
