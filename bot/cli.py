"""The ``haven`` command. Platform libraries are imported only by the subcommands that need them.

Composition root (see ``bot.app``): may import ``storage`` and ``adapters``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import difflib
import json
import logging
import os
import stat
import sys
import traceback
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.types import Author, Platform

if TYPE_CHECKING:
    from bot.config import Settings

OPERATOR = Author(id="cli", name="operator", is_platform_admin=True)  # shell access is admin access


def _operator() -> Author:
    """The CLI's actor: ``cli``, named after the shell's login, so the admin audit says who it was."""
    import getpass

    try:
        login = getpass.getuser()
    except Exception:  # no login name in this environment (some containers)
        return OPERATOR
    return dataclasses.replace(OPERATOR, name=login or OPERATOR.name)


PLATFORMS = tuple(p.value for p in Platform)
# Admin subcommands whose output belongs to one workspace (the rest are global or per user).
_GLOBAL = ("forget-user", "jobs")


def _common(p: argparse.ArgumentParser, *, top: bool, admin: bool = False) -> None:
    """Options accepted anywhere on the line: on the command and on each subcommand. Below the top the
    default is SUPPRESS, so a subcommand that was not given the option keeps what an earlier part set."""

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    p.add_argument("--json", action="store_true", default=default(False), help="machine-readable output")
    p.add_argument("-v", "--verbose", action="store_true", default=default(False), help="show INFO log lines")
    if admin:
        p.add_argument(
            "--platform", default=default(None), help="slack | discord | terminal (default terminal)"
        )
        p.add_argument(
            "--workspace",
            default=default(None),
            help="Slack team id or Discord guild id (required with slack or discord); 'local' for terminal",
        )


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haven", description="Haven — a Claude chatbot for Slack and Discord.")
    _common(p, top=True, admin=True)
    sub = p.add_subparsers(dest="command", required=True)

    def command(parent: Any, name: str, *, admin: bool = False, **kwargs: Any) -> argparse.ArgumentParser:
        cmd: argparse.ArgumentParser = parent.add_parser(name, **kwargs)
        _common(cmd, top=False, admin=admin)
        return cmd

    command(sub, "run", help="start every configured platform (the terminal when none is configured)")
    chat = command(sub, "chat", help="talk to Haven in this terminal")
    chat.add_argument("--locale", help="your locale, e.g. es or pt-BR: Haven's notices in its language")
    db = command(sub, "db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    dc = command(sub, "discord", help="Discord maintenance")
    dc.add_argument("action", choices=["sync"], help="sync: push the application commands to Discord now")
    ev = sub.add_parser("eval", help="measure the local detectors on the evaluation data")
    ev.add_argument("--data", help="directory with the eval .jsonl files")

    adm = command(sub, "admin", admin=True, help="workspace settings, endings and feedback")
    what = adm.add_subparsers(dest="what", required=True)
    res = command(what, "resources", admin=True, help="the crisis resources message")
    res.add_argument("action", choices=["show", "set", "reset", "preview"])
    res.add_argument("--text", help="new message (markdown); default: read stdin")
    res.add_argument("--locale", help="set a variant for one locale, e.g. de or pt-BR")
    st = command(what, "settings", admin=True, help="show or change settings")
    st.add_argument("action", choices=["show", "set"])
    st.add_argument("name", nargs="?")
    st.add_argument("value", nargs="?")
    st.add_argument(
        "--clear",
        action="store_true",
        help="with set: empty a setting (admins, alert-channel, allow-channels, deny-channels, instructions)",
    )
    us = command(
        what,
        "usage",
        admin=True,
        help="model calls, tokens, prompt-cache hits and estimated cost, over a window",
    )
    us.add_argument(
        "--since", type=_utc_time, help="from this UTC date or time on (2026-11-01, 2026-11-01T09:00)"
    )
    us.add_argument("--until", type=_utc_time, help="before this UTC date or time")
    us.add_argument(
        "--by", choices=("user", "conversation"), help="one line per person (who started it) or conversation"
    )
    fu = command(what, "forget-user", admin=True, help="remove every message text a user wrote on a platform")
    fu.add_argument("user_platform", metavar="platform", choices=PLATFORMS)
    fu.add_argument("user_id")
    ex = command(what, "export", admin=True, help="print one conversation as JSON")
    ex.add_argument("conversation_id")
    for name in ("endings", "decisions", "feedback"):
        q = command(what, name, admin=True, help=f"list recent {name}")
        q.add_argument("--limit", type=int, default=20)
    au = command(what, "audit", admin=True, help="who changed which setting, from what to what, and when")
    au.add_argument("--limit", type=int, default=20)
    jobs = command(what, "jobs", admin=True, help="the scheduler's job runs and leader lease (read-only)")
    jobs.add_argument("--limit", type=int, default=20)
    pg = command(
        what,
        "purge",
        admin=True,
        help="delete everything Haven kept about a workspace it left (conversations, messages, inbox,"
        " settings, audit, usage); without --yes it only shows what would go",
    )
    pg.add_argument("--yes", action="store_true", help="really delete it")
    pg.add_argument("--force", action="store_true", help="also when Haven is still installed there")
    return p


def _usage_error(message: str) -> int:
    """One line, exit 2, the way argparse answers a bad argument."""
    print(f"haven: error: {message}", file=sys.stderr)
    return 2


def _check_place(args: argparse.Namespace) -> int | None:
    """Validate --platform/--workspace for admin commands; fill in the defaults."""
    if args.platform is None:
        args.platform = Platform.TERMINAL.value
    elif args.platform.lower() in PLATFORMS:
        args.platform = args.platform.lower()
    else:
        close = difflib.get_close_matches(args.platform.lower(), PLATFORMS, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        return _usage_error(
            f"argument --platform: unknown platform {args.platform!r}{hint}; "
            f"choose from {', '.join(PLATFORMS)}"
        )
    if args.workspace is None:
        if args.platform != Platform.TERMINAL.value and args.what not in _GLOBAL:
            kind = "Slack team id (T…)" if args.platform == "slack" else "Discord server (guild) id"
            return _usage_error(f"argument --workspace: required with --platform {args.platform}: the {kind}")
        args.workspace = "local"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "admin" and (problem := _check_place(args)) is not None:
        return problem
    # pydantic is imported only now, so `haven --help` and argument errors answer at once.
    from bot.config import SettingsError, configure_logging, load_settings

    if args.command == "eval":
        from bot.eval import main as eval_main

        return eval_main(["--data", args.data] if args.data else [])
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"haven: {exc} (fix it in the environment or .env)", file=sys.stderr)
        return 1
    from bot.connectors import NO_PLATFORM_NO_TERMINAL, platform_problem, platform_variables
    from bot.ports import StartupError

    debug = settings.log_level == "DEBUG"
    if args.command == "run":
        if (half := platform_problem(settings)) is not None:
            print(f"haven: {half}", file=sys.stderr)
            return 1
        if not platform_variables(settings) and not _stdin_usable():
            print(f"haven: {NO_PLATFORM_NO_TERMINAL}", file=sys.stderr)
            return 1
    terminal = args.command == "chat" or (args.command == "run" and not platform_variables(settings))
    quiet = terminal or args.command in ("admin", "db", "discord")
    if (
        quiet
        and not debug
        and not args.verbose
        and not (terminal and "log_level" in settings.model_fields_set)
    ):
        # Someone is typing here, or reading a command's answer: no INFO lines unless asked for (-v).
        settings = settings.model_copy(update={"log_level": "WARNING"})
    elif args.verbose and not debug:
        settings = settings.model_copy(update={"log_level": "INFO"})
    configure_logging(settings)

    try:
        return asyncio.run(_dispatch(args, settings))
    except StartupError as exc:
        if debug:
            traceback.print_exc()
        print(f"haven: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.connectors import one_line

        if debug:
            traceback.print_exc()
        print(
            f"haven: stopped by an unexpected error ({one_line(exc)}); HAVEN_LOG_LEVEL=DEBUG shows where",
            file=sys.stderr,
        )
        return 1


def _stdin_usable() -> bool:
    """A terminal, a pipe or a file to read: the terminal adapter has someone (or something) to talk to.
    Under systemd or a container without ``-i`` stdin is absent or /dev/null, and chatting makes no sense."""
    stdin = sys.stdin
    if stdin is None or stdin.closed:
        return False
    try:
        fd = stdin.fileno()
    except (OSError, ValueError):  # an in-memory stream (io.UnsupportedOperation is both)
        return True
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return os.isatty(fd) or stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


@contextlib.contextmanager
def _database_step(url: str) -> Iterator[None]:
    """Turn what a bad DATABASE_URL or an unreachable database raises into one StartupError line."""
    from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError

    from bot.connectors import one_line
    from bot.ports import StartupError
    from storage.db import normalize_url

    try:
        normalize_url(url)
    except (ArgumentError, NoSuchModuleError, ValueError) as exc:
        raise StartupError(
            f"DATABASE_URL is not a database URL Haven can use ({one_line(exc)}): "
            "use sqlite:///path.db or postgresql://user:password@host:5432/dbname"
        ) from exc
    try:
        yield
    except DBAPIError as exc:
        cause = exc.orig if exc.orig is not None else exc
        raise StartupError(
            f"cannot use the database in DATABASE_URL ({one_line(cause)}): check that the server runs and "
            "DATABASE_URL's host, port, user, password and database name"
        ) from exc
    except OSError as exc:
        raise StartupError(
            f"cannot open the database in DATABASE_URL ({one_line(exc)}): fix the path"
        ) from exc


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        from storage.db import upgrade

        with _database_step(settings.database_url):
            await upgrade(settings.database_url)
        print("database is at the newest schema")
        return 0
    from bot.app import build_model, initialize, run_connectors, settle_heap

    metrics = model = None
    if args.command == "run":
        from bot.metrics import MeteredModel, Metrics

        # One Metrics per process, handed down: the engine counts into it, the model is timed by it.
        metrics = Metrics(slow_turn_seconds=settings.slow_turn_seconds)
        model = MeteredModel(build_model(settings), metrics)
    tracing = None
    if args.command in ("run", "chat"):
        from bot.tracing import start_tracing

        tracing = start_tracing()  # OTEL_* variables (bot.tracing); None when they ask for nothing
    with _database_step(settings.database_url):
        services = await initialize(settings, model=model)
    if metrics is not None:
        services.engine.metrics = metrics
    try:
        if args.command in ("run", "chat"):
            await _check_model(services, settings)
        if args.command in ("run", "chat") and services.model.rehearsal:
            from bot.notices import REHEARSAL_BANNER

            logging.getLogger("bot").warning(REHEARSAL_BANNER)
        if args.command == "chat":
            from adapters.terminal import TerminalConnector

            await run_connectors([TerminalConnector(services.engine, locale=args.locale)])
            return 0
        if args.command == "discord":
            from adapters.discord import sync_command

            return await sync_command(services)
        if args.command == "run":
            from bot.connectors import Guarded, build_connectors
            from bot.ports import DigestSink
            from bot.scheduler import JobContext, Scheduler, holder_id
            from storage.maintenance import Maintenance

            connectors = build_connectors(services)
            sinks = {c.name: c for c in connectors if isinstance(c, DigestSink)}
            scheduler = Scheduler(JobContext(Maintenance(services.repo.database), holder_id(), sinks))
            ops = None
            if metrics is not None and any(c.name != "terminal" for c in connectors):
                from bot.ops import ops_server

                # Up before the connectors connect: /healthz answers at once, /readyz once all is ready.
                metrics.watch(leader=lambda: scheduler.ctx.leader)
                ops = ops_server(settings, services, connectors, metrics)
                await ops.start()
            await scheduler.start()
            settle_heap()
            try:
                await run_connectors([Guarded(c) for c in connectors])
            finally:
                await scheduler.stop()
                if ops is not None:
                    await ops.stop()
            return 0
        return await _admin(args, services)
    finally:
        await services.aclose()
        if tracing is not None:
            await asyncio.to_thread(tracing.shutdown)  # the last spans leave before the process does


async def _check_model(services: Any, settings: Settings) -> None:
    """One cheap call proves the key and HAVEN_MODEL before anyone is answered (not for the rehearsal
    model; HAVEN_SKIP_MODEL_CHECK=true skips it)."""
    from bot.ports import StartupError

    check = getattr(services.model, "check", None)
    if services.model.rehearsal or settings.skip_model_check or check is None:
        return
    problem = await check()
    if problem is not None:
        raise StartupError(problem)


# What ``settings set NAME --clear`` sets each clearable setting to.
_CLEARED = {
    "admins": "none",
    "alert-channel": "none",
    "allow-channels": "none",
    "deny-channels": "none",
    "instructions": "",
    "prompts": "none",
}


def _where(args: argparse.Namespace) -> str:
    return f"{args.platform} workspace {args.workspace}"


async def _admin(args: argparse.Namespace, services: Any) -> int:
    from bot.admin import SETTINGS, BadSetting, describe_settings
    from bot.notices import DEFAULT_CRISIS_MESSAGE

    admin, actor = services.admin, _operator()
    plat, ws = args.platform, args.workspace
    out: Any
    if args.what in ("forget-user", "export"):
        return await _privacy(args, services)
    if args.what == "jobs":
        return await _jobs(args, services)
    if args.what == "purge":
        return await _purge(args, services, actor)
    try:
        if args.what == "resources":
            if args.action == "set":
                text = args.text if args.text is not None else sys.stdin.read()
                await admin.set_crisis_message(actor, plat, ws, text, args.locale)
            elif args.action == "reset":
                await admin.reset_crisis_message(actor, plat, ws)
            s = await admin.settings(actor, plat, ws)
            text = s.crisis_locales.get(args.locale, "") if args.locale else s.crisis_message
            out = {
                "custom": bool(text),
                "text": text or DEFAULT_CRISIS_MESSAGE,
                "locales": sorted(s.crisis_locales),
            }
            if not args.json:
                head = "custom" if out["custom"] else "built-in default"
                locale = f", locale {args.locale}" if args.locale else ""
                out = f"Crisis resources of {_where(args)} ({head}{locale}):\n\n{out['text']}"
        elif args.what == "settings":
            if args.action == "set":
                name, value = args.name, args.value
                if args.clear:
                    if name not in _CLEARED or value is not None:
                        print(
                            f"usage: haven admin settings set {'|'.join(_CLEARED)} --clear", file=sys.stderr
                        )
                        return 2
                    value = _CLEARED[name]
                elif name in ("instructions", "prompts") and value == "-":
                    # A persona of several lines, or one prompt a line, from a file or a here-document.
                    value = sys.stdin.read()
                if not name or value is None:
                    names = "\n".join(f"  {k}: {v[2]}" for k, v in SETTINGS.items())
                    print(f"usage: haven admin settings set NAME VALUE\n{names}", file=sys.stderr)
                    return 2
                await admin.change(actor, plat, ws, name, value)
            s = await admin.settings(actor, plat, ws)
            if args.json:
                out = _jsonable(s)
            else:
                out = f"Settings of {_where(args)}:\n" + _table([("setting", "value"), *describe_settings(s)])
        elif args.what == "usage":
            out = await _usage(args, services, admin, actor, plat, ws)
        else:
            records = await getattr(admin, args.what)(actor, plat, ws, args.limit)
            out = [_jsonable(r) for r in records]
            if not args.json:
                out = _records_text(args.what, _where(args), out)
    except BadSetting as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str) if args.json else out)
    return 0


async def _jobs(args: argparse.Namespace, services: Any) -> int:
    """The scheduler's records, read-only: the leader lease and the latest job runs (every workspace)."""
    from sqlalchemy import select

    from storage.models import JOB_RUNS, LEASES

    def read() -> dict[str, Any]:
        with services.repo.database.read() as conn:
            leases = conn.execute(select(LEASES).order_by(LEASES.c.name)).all()
            runs = conn.execute(select(JOB_RUNS).order_by(JOB_RUNS.c.id.desc()).limit(args.limit)).all()
        return {
            "leases": [
                {"name": r.name, "holder": r.holder, "expires_at": _timestamp(r.expires_at)} for r in leases
            ],
            "runs": [
                {
                    "job": r.job,
                    "period": r.period,
                    "holder": r.holder,
                    "result": r.result,
                    "started_at": _timestamp(r.created_at),
                }
                for r in runs
            ],
        }

    data = await services.repo.database.run(read)
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    lines = ["Scheduler leases (all workspaces):"]
    if data["leases"]:
        lines.append(_table([("name", "holder", "expires_at"), *[tuple(d.values()) for d in data["leases"]]]))
    else:
        lines.append("(no lease: no `haven run` has led the scheduler yet)")
    lines += ["", f"Latest job runs (all workspaces, newest first, at most {args.limit}):"]
    if data["runs"]:
        header = ("job", "period", "holder", "result", "started_at")
        rows = [tuple("-" if v is None else v for v in d.values()) for d in data["runs"]]
        lines.append(_table([header, *rows]))
    else:
        lines.append("(no job runs)")
    print("\n".join(lines))
    return 0


async def _purge(args: argparse.Namespace, services: Any, actor: Author) -> int:
    """Delete a departed workspace's data, scoped by platform and workspace; audited as one row."""
    from storage.departures import Departures

    departures = Departures(services.repo.database)
    plat, ws = args.platform, args.workspace
    departure = await departures.get(plat, ws)
    # Slack: an installation stored since the departure means Haven is back (Discord clears the record).
    installed = departure is None or (plat == "slack" and await departures.slack_installed(ws))
    if installed and not args.force:
        why = "Haven is installed there again" if departure is not None else "no departure is recorded"
        print(
            f"haven: {_where(args)} is still Haven's ({why}): uninstall Haven there first, or add --force",
            file=sys.stderr,
        )
        return 1
    if not args.yes:
        counts = await departures.count(plat, ws)
        if args.json:
            print(
                json.dumps(
                    {"platform": plat, "workspace": ws, "would_delete": counts, "deleted": {}}, indent=2
                )
            )
        else:
            print(f"Would delete from {_where(args)}:\n" + _purge_table(counts))
        print("haven: nothing deleted: add --yes to delete it", file=sys.stderr)
        return 2
    deleted = await departures.purge(plat, ws, actor_id=actor.id, actor_name=actor.name)
    if args.json:
        print(json.dumps({"platform": plat, "workspace": ws, "deleted": deleted}, indent=2))
    else:
        print(f"Deleted from {_where(args)}:\n" + _purge_table(deleted))
    return 0


def _purge_table(counts: dict[str, int]) -> str:
    if not counts:
        return "(no rows)"
    return _table([("table", "rows"), *sorted(counts.items())], right={1})


async def _privacy(args: argparse.Namespace, services: Any) -> int:
    from storage.maintenance import Maintenance

    maintenance = Maintenance(services.repo.database)
    if args.what == "forget-user":
        removed = await maintenance.forget_user(args.user_platform, args.user_id)
        where = f"every {args.user_platform} workspace"
        print(json.dumps({"removed": removed}) if args.json else f"removed {removed} texts in {where}")
        return 0
    data = await maintenance.export_conversation(args.platform, args.workspace, args.conversation_id)
    if data is None:
        print(f"haven: no conversation {args.conversation_id} in {_where(args)}", file=sys.stderr)
        return 1
    print(json.dumps(_jsonable(data), indent=2, ensure_ascii=False))
    return 0


PROMPT_TOKENS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def _utc_time(value: str) -> datetime:
    """An ``--since``/``--until`` argument: an ISO date or date-time, read as UTC unless it says else."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date or time: {value!r} (e.g. 2026-11-01)") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def _usage(
    args: argparse.Namespace, services: Any, admin: Any, actor: Author, plat: str, ws: str
) -> Any:
    from bot.pricing import DEFAULT_PRICES, parse_prices, usage_report

    lines = await admin.usage_lines(actor, plat, ws, since=args.since, until=args.until, by=args.by)
    prices = {**DEFAULT_PRICES, **parse_prices(services.settings.model_prices)}
    report = usage_report(lines, prices, by=args.by)
    window = {"since": _timestamp(args.since), "until": _timestamp(args.until)}
    if args.json:
        return {**window, "by": args.by, **report}
    total = report["total"]
    span = f"from {window['since'] or 'the start'} until {window['until'] or 'now'}"
    head = f"Model usage of {_where(args)}, {span} (cost estimated from list prices, USD):"
    rows: list[tuple[object, ...]] = [
        (k, _number(total[k])) for k in ("calls", "input_tokens", "cache_creation_input_tokens")
    ]
    rows += [(k, _number(total[k])) for k in ("cache_read_input_tokens", "output_tokens", "cache_hit_ratio")]
    rows.append(("cost_usd", f"{total['cost_usd']:.4f}"))
    text = head + "\n" + _table([("counter", "total"), *rows], right={1})
    if total["unpriced_models"]:
        text += f"\nNo price for: {', '.join(total['unpriced_models'])} (set HAVEN_MODEL_PRICES)."
    if args.by:
        body = [
            (
                line[args.by] or "(unknown)",
                line["model"],
                _number(line["calls"]),
                _number(
                    line["input_tokens"]
                    + line["cache_creation_input_tokens"]
                    + line["cache_read_input_tokens"]
                ),
                _number(line["output_tokens"]),
                "n/a" if line["cost_usd"] is None else f"{line['cost_usd']:.4f}",
            )
            for line in report["lines"]
        ]
        header = (args.by, "model", "calls", "prompt tokens", "output tokens", "cost_usd")
        text += "\n\n" + _table([header, *body], right={2, 3, 4, 5})
    return text


def _timestamp(value: datetime | None) -> str | None:
    """UTC, ISO-8601 with a ``Z`` (the database may hand back naive UTC)."""
    if value is None:
        return None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.isoformat().replace("+00:00", "Z")


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return _timestamp(obj)
    return obj


def _number(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.4f}"


def _table(rows: Sequence[Sequence[object]], *, right: frozenset[int] | set[int] = frozenset()) -> str:
    """Columns padded to their widest cell, the first row the header, a rule under it."""
    cells = [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]

    def line(row: list[str]) -> str:
        padded = (
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


_COLUMNS = {
    "audit": ("created_at", "actor", "action", "setting", "old", "new"),
    "endings": ("ended_at", "conversation_id", "reason", "warnings", "forked_from", "thread"),
    "decisions": ("created_at", "conversation_id", "decision", "reason", "warnings", "risk_signal"),
    "feedback": ("created_at", "conversation_id", "user_id", "thread", "comment"),
}


def _cell(row: dict[str, Any], column: str) -> str:
    if column == "actor":
        name = row.get("actor_name")
        return f"{row['actor_id']} ({name})" if name and name != row["actor_id"] else str(row["actor_id"])
    if column in ("old", "new"):
        return _audit_value(row.get(column))
    if column == "thread":
        thread = row.get("thread") or {}
        return f"{thread.get('channel', '')}/{thread.get('thread', '')}"
    if column == "risk_signal":
        return str((row.get("signals") or {}).get("risk_signal", "-"))
    value = row.get(column)
    if column == "comment" and isinstance(value, str):
        value = " ".join(value.split())
        value = value if len(value) <= 60 else value[:59] + "…"
    return "-" if value is None or value == "" else str(value)


def _audit_value(value: Any) -> str:
    """An audit value for people: a crisis text's summary as its length, digest and first words; lists
    joined; the rest as JSON; cut at 60 characters (``--json`` has it whole)."""
    if value is None:
        text = "none"
    elif isinstance(value, dict) and {"chars", "sha256", "start"} <= value.keys():
        text = f"{value['chars']} chars, {value['sha256']}: “{value['start']}”"
    elif isinstance(value, dict) and value.keys() == {"message", "locales"}:  # a reset's before and after
        message = "custom" if value["message"] else "built-in default"
        text = f"{message}; locales: {', '.join(value['locales']) or 'none'}"
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value) or "none"
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:59] + "…"


def _records_text(what: str, where: str, rows: list[dict[str, Any]]) -> str:
    name = "admin changes" if what == "audit" else what
    if not rows:
        return f"(no {name} in {where})"
    columns = _COLUMNS[what]
    title = f"{name.capitalize()} in {where}, newest first (times in UTC):"
    return title + "\n" + _table([columns, *[tuple(_cell(r, c) for c in columns) for r in rows]])


if __name__ == "__main__":
    raise SystemExit(main())
