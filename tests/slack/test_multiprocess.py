"""Two `haven run` processes on one PostgreSQL receive the same Slack events: each message answered once.

The machinery is bench/load.py's (``run_load``), scaled down for CI: 80 user messages in 8 threads,
every event delivered to both processes in random order and a fifth of them again as Slack retries.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bench.load import LoadConfig, run_load
from fakes.postgres import PostgresServer

pytestmark = pytest.mark.postgres


async def test_two_processes_answer_every_message_exactly_once_and_in_order(
    postgres_server: PostgresServer, migrated_postgres: str, tmp_path: Path
) -> None:
    cfg = LoadConfig(
        messages=80, conversations=8, latency=0.05, seed=7, retry_share=0.2, timeout=40.0, settle=1.0
    )
    started = time.monotonic()
    with postgres_server.temporary_database(hint="multiprocess_slack", template=migrated_postgres) as url:
        result = await run_load(cfg, database_url=url, workdir=tmp_path)

    report = f"\n{result.table()}\n{result.problems()}"
    assert 180 <= result.deliveries <= 240, report  # both processes got every event, some twice more
    assert result.failed_deliveries == 0, report
    assert result.lost == 0 and result.missing == [], report
    assert result.duplicates == 0 and result.replies == cfg.messages, report
    assert result.in_order == cfg.conversations and not result.overlapping, report
    assert result.error_replies == 0 and result.process_errors == [], report
    # No history was read from Slack: every turn's context came from the database.
    assert not {"conversations.history", "conversations.replies"} & set(result.slack_calls), report
    assert time.monotonic() - started < 60, report
