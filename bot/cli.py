"""The ``haven`` command. Platform libraries are imported only by the subcommands that need them.

Composition root (see ``bot.app``): may import ``storage`` and ``adapters``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.types import Author

if TYPE_CHECKING:
    from bot.config import Settings

OPERATOR = Author(id="cli", name="operator", is_platform_admin=True)  # shell access is admin access


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="haven", description="Haven — a Claude chatbot for Slack and Discord.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("run", help="start every configured platform (the terminal when none is configured)")
    sub.add_parser("chat", help="talk to Haven in this terminal")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    dc = sub.add_parser("discord", help="Discord maintenance")
    dc.add_argument("action", choices=["sync"], help="sync: push the application commands to Discord now")
    ev = sub.add_parser("eval", help="measure the local detectors on the evaluation data")
    ev.add_argument("--data", help="directory with the eval .jsonl files")

    adm = sub.add_parser("admin", help="workspace settings, endings and feedback")
    adm.add_argument("--platform", default="terminal", help="slack | discord | terminal (default terminal)")
    adm.add_argument("--workspace", default="local", help="Slack team id, Discord guild id, or 'local'")
    adm.add_argument("--json", action="store_true", help="machine-readable output")
    what = adm.add_subparsers(dest="what", required=True)
    res = what.add_parser("resources", help="the crisis resources message")
    res.add_argument("action", choices=["show", "set", "reset", "preview"])
    res.add_argument("--text", help="new message (markdown); default: read stdin")
    res.add_argument("--locale", help="set a variant for one locale, e.g. de or pt-BR")
    st = what.add_parser("settings", help="show or change settings")
    st.add_argument("action", choices=["show", "set"])
    st.add_argument("name", nargs="?")
    st.add_argument("value", nargs="?")
    what.add_parser("usage", help="model tokens used and the prompt-cache hit ratio")
    fu = what.add_parser("forget-user", help="remove every message text a user wrote on a platform")
    fu.add_argument("user_platform", metavar="platform", choices=["slack", "discord", "terminal"])
    fu.add_argument("user_id")
    ex = what.add_parser("export", help="print one conversation as JSON")
    ex.add_argument("conversation_id")
    for name in ("endings", "decisions", "feedback"):
        q = what.add_parser(name, help=f"list recent {name}")
        q.add_argument("--limit", type=int, default=20)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # pydantic is imported only now, so `haven --help` and argument errors answer at once.
    from bot.config import SettingsError, configure_logging, load_settings

    if args.command == "eval":
        from bot.eval import main as eval_main

        return eval_main(["--data", args.data] if args.data else [])
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return 2
    terminal = args.command == "chat" or (
        args.command == "run" and not (settings.slack_configured or settings.discord_configured)
    )
    if terminal and "log_level" not in settings.model_fields_set:
        # Someone is typing here: keep the conversation readable unless they asked for logs.
        settings = settings.model_copy(update={"log_level": "WARNING"})
    configure_logging(settings)
    from bot.ports import StartupError

    try:
        return asyncio.run(_dispatch(args, settings))
    except StartupError as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        from storage.db import upgrade

        await upgrade(settings.database_url)
        print("database is at the newest schema")
        return 0
    from bot.app import initialize, run_connectors

    services = await initialize(settings)
    if args.command in ("run", "chat") and services.model.rehearsal:
        from bot.notices import REHEARSAL_BANNER

        logging.getLogger("bot").warning(REHEARSAL_BANNER)
    try:
        if args.command == "chat":
            from adapters.terminal import TerminalConnector

            await run_connectors([TerminalConnector(services.engine)])
            return 0
        if args.command == "discord":
            from adapters.discord import sync_command

            return await sync_command(services)
        if args.command == "run":
            from bot.connectors import build_connectors
            from bot.ports import DigestSink
            from bot.scheduler import JobContext, Scheduler, holder_id
            from storage.maintenance import Maintenance

            connectors = build_connectors(services)
            sinks = {c.name: c for c in connectors if isinstance(c, DigestSink)}
            scheduler = Scheduler(JobContext(Maintenance(services.repo.database), holder_id(), sinks))
            await scheduler.start()
            try:
                await run_connectors(connectors)
            finally:
                await scheduler.stop()
            return 0
        return await _admin(args, services)
    finally:
        await services.aclose()


async def _admin(args: argparse.Namespace, services: Any) -> int:
    from bot.admin import SETTINGS, BadSetting, describe_settings
    from bot.notices import DEFAULT_CRISIS_MESSAGE

    admin = services.admin
    plat, ws = args.platform, args.workspace
    out: Any
    if args.what in ("forget-user", "export"):
        return await _privacy(args, services)
    try:
        if args.what == "resources":
            if args.action == "set":
                text = args.text if args.text is not None else sys.stdin.read()
                await admin.set_crisis_message(OPERATOR, plat, ws, text, args.locale)
            elif args.action == "reset":
                await admin.reset_crisis_message(OPERATOR, plat, ws)
            s = await admin.settings(OPERATOR, plat, ws)
            text = s.crisis_locales.get(args.locale, "") if args.locale else s.crisis_message
            out = {
                "custom": bool(text),
                "text": text or DEFAULT_CRISIS_MESSAGE,
                "locales": sorted(s.crisis_locales),
            }
            if not args.json:
                head = "custom" if out["custom"] else "built-in default"
                out = f"Crisis resources ({head}):\n\n{out['text']}"
        elif args.what == "settings":
            if args.action == "set":
                if not args.name or args.value is None:
                    names = "\n".join(f"  {k}: {v[2]}" for k, v in SETTINGS.items())
                    print(f"usage: haven admin settings set NAME VALUE\n{names}", file=sys.stderr)
                    return 2
                await admin.change(OPERATOR, plat, ws, args.name, args.value)
            s = await admin.settings(OPERATOR, plat, ws)
            out = _jsonable(s) if args.json else "\n".join(f"{k:16} {v}" for k, v in describe_settings(s))
        elif args.what == "usage":
            out = await admin.usage(OPERATOR, plat, ws)
            if not args.json:
                out = "\n".join(f"{k:30} {v}" for k, v in out.items())
        else:
            rows = await getattr(admin, args.what)(OPERATOR, plat, ws, args.limit)
            out = [_jsonable(r) for r in rows]
            if not args.json:
                out = "\n".join(_line(r) for r in out) or f"(no {args.what})"
    except BadSetting as exc:
        print(f"haven: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, default=str) if args.json else out)
    return 0


async def _privacy(args: argparse.Namespace, services: Any) -> int:
    from storage.maintenance import Maintenance

    maintenance = Maintenance(services.repo.database)
    if args.what == "forget-user":
        removed = await maintenance.forget_user(args.user_platform, args.user_id)
        print(json.dumps({"removed": removed}) if args.json else f"removed {removed} texts")
        return 0
    data = await maintenance.export_conversation(args.platform, args.workspace, args.conversation_id)
    if data is None:
        print(
            f"haven: no conversation {args.conversation_id} in {args.platform}/{args.workspace}",
            file=sys.stderr,
        )
        return 1
    print(json.dumps(data, indent=2, ensure_ascii=False))
    return 0


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def _line(row: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in row.items() if not isinstance(v, dict)) + (
        f"  thread={row['thread']['channel']}/{row['thread']['thread']}"
        if isinstance(row.get("thread"), dict)
        else ""
    )


if __name__ == "__main__":
    raise SystemExit(main())
