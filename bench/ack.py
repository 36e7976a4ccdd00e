"""What one Slack acknowledgement costs Haven: CPU per event, in process, with no turn running beside it.

    .venv/bin/python bench/ack.py                      # PostgreSQL and SQLite, 300 mentions each
    .venv/bin/python bench/ack.py --mentions 1000 --store postgres

``bench/burst.py`` measures the whole process under a burst (HTTP server, many connections, turns
waiting); this isolates the part that decides how many events one process acknowledges a second: the
signed request through Bolt's dispatch and Haven's middleware up to its ``200``. Each person @mentions
Haven in a new thread, which Slack delivers as two events (``app_mention`` and its ``message`` copy), so
the table has a row for each: the first records the message in the inbox, the second is a duplicate.

Turns never run meanwhile: the whole loop is one acknowledgement in progress (``Admission.intake``), so
every turn waits for it, as turns wait for acknowledgements in a burst; they are cancelled at the end.
The mock Slack Web API (``users.info`` for each new person) runs on a thread of this process, so its CPU
counts too, as a real Slack's latency would not; PostgreSQL's server process does not count.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: make the repository importable
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from adapters.slack.app import build_app  # noqa: E402
from bench.common import machine, median, pct, table  # noqa: E402
from fakes.fake_anthropic import FakeAnthropic  # noqa: E402
from fakes.harness import make_settings, services_for  # noqa: E402
from fakes.mock_slack import MockSlack  # noqa: E402
from fakes.postgres import start_postgres  # noqa: E402
from fakes.slack_harness import BOT, BOT_TOKEN, SIGNING_SECRET, SlackHarness  # noqa: E402


async def measure(database_url: str, mentions: int) -> dict[str, list[float]]:
    """CPU milliseconds per acknowledged event, by kind (``app_mention``, its ``message`` copy)."""
    slack, anthropic = MockSlack().start_in_thread(), FakeAnthropic().start_in_thread()
    try:
        people = [f"UB{i:07d}" for i in range(mentions)]
        for i, person in enumerate(people):
            slack.add_user(person, f"person{i}")
        settings = make_settings(database_url, anthropic.url)
        cost: dict[str, list[float]] = {"app_mention": [], "message": []}
        async with services_for(settings) as services:
            # One keep-alive session, as ``SlackConnector`` gives the client it builds.
            client = AsyncWebClient(token=BOT_TOKEN, base_url=slack.api_url, session=aiohttp.ClientSession())
            app = build_app(services, client, signing_secret=SIGNING_SECRET, process_before_response=False)
            h = SlackHarness(app, slack, anthropic, services)
            admission = services.engine.admission
            admission.intake_first = 3600.0
            # One warm-up pair: Bolt's auth.test, the first statements compiled, the first person's lookup.
            await h.mention("warm up", ts=h.ts())
            with admission.intake():
                for person in people:
                    ts = h.ts()
                    for kind in ("app_mention", "message"):
                        event = h.message(f"<@{BOT}> hello there", ts=ts, user=person, kind=kind)
                        start = time.process_time()
                        response = await h.event(event)
                        cost[kind].append((time.process_time() - start) * 1000)
                        assert response.status == 200, response.status
            await _cancel_waiting_turns()
            await client.session.close()
        return cost
    finally:
        slack.stop_thread()
        anthropic.stop_thread()


async def _cancel_waiting_turns() -> None:
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    with contextlib.suppress(Exception):
        await asyncio.gather(*tasks, return_exceptions=True)


def rows(store: str, cost: dict[str, list[float]]) -> list[list[Any]]:
    both = [a + b for a, b in zip(cost["app_mention"], cost["message"], strict=True)]
    named = [*cost.items(), ("one mention (both)", both)]
    return [[store, kind, len(v), median(v), pct(v, 95), pct(v, 99), max(v)] for kind, v in named]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mentions", type=int, default=300, help="new threads, one new person each (default 300)")
    p.add_argument("--store", choices=("postgres", "sqlite", "both"), default="both")
    args = p.parse_args()
    print(machine())
    found: list[list[Any]] = []
    if args.store in ("postgres", "both"):
        server = start_postgres()
        try:
            with server.temporary_database(hint="bench_ack") as url:
                found += rows("postgres", asyncio.run(measure(url, args.mentions)))
        finally:
            server.stop()
    if args.store in ("sqlite", "both"):
        with tempfile_dir() as tmp:
            found += rows("sqlite", asyncio.run(measure(f"sqlite:///{tmp}/haven.db", args.mentions)))
    headers = ["store", "event", "n", "p50 ms CPU", "p95", "p99", "max"]
    print("\n" + table(headers, found))
    return 0


@contextlib.contextmanager
def tempfile_dir() -> Any:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="haven-bench-ack-") as tmp:
        yield tmp


if __name__ == "__main__":
    raise SystemExit(main())
