"""What storage keeps of attached files, on SQLite and PostgreSQL: the reference and the hash as written,
and nothing of them after retention or forget-user (``storage.maintenance`` replaces the whole content)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.files import FileLimits, read_file
from bot.types import Attachment, NewMessage, ThreadRef
from storage.maintenance import Maintenance
from storage.models import MESSAGES
from storage.repository import Repository

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
THREAD = ThreadRef("slack", "T1", "C1", "1.0")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 64


def with_file(mid: str, author: str = "U7") -> NewMessage:
    shared = Attachment("FSECRET1", "chart.png", "image/png", "https://files.slack.com/x/chart.png", len(PNG))
    ref = read_file(shared, PNG, FileLimits()).ref
    words = {"type": "text", "text": "[Ann] see this"}
    return NewMessage("user", "text", (ref, words), author, "Ann", mid, "see this")


async def dump(repo: Repository) -> str:
    async with repo.database.connect() as conn:
        return json.dumps([r.content for r in (await conn.execute(select(MESSAGES))).all()])


@pytest.mark.parametrize("how", ["retention", "forget-user"])
async def test_file_references_go_with_the_message(stores: tuple[Repository, Maintenance], how: str) -> None:
    repo, m = stores
    await repo.begin_turn(THREAD, "a", with_file("m1"), create=True)
    stored = await dump(repo)
    assert "FSECRET1" in stored and "sha256" in stored
    assert "AQEBAQ" not in stored  # base64 of the bytes: never stored

    if how == "retention":
        async with repo.database.begin() as conn:
            await conn.execute(update(MESSAGES).values(created_at=NOW - timedelta(days=91)))
        assert await m.apply_retention(NOW) == 1
    else:
        assert await m.forget_user("slack", "U7") == 1

    after = await dump(repo)
    assert "FSECRET1" not in after and "chart.png" not in after and "haven_file" not in after
