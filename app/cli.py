"""The ``ctiserver`` command line.

    ctiserver [--config FILE] [--set KEY=VALUE ...] run [--demo]
    ctiserver [...] check-config
    ctiserver config schema [--out DIR]
    ctiserver [...] pbx build [--force] | up | down | status | restart | cli COMMAND...
    ctiserver [...] db upgrade | status
    ctiserver [...] report queues | agents | abandoned --from DATE [...]
    ctiserver [...] customers import FILE.csv [--dry-run] | export FILE.csv
    ctiserver [...] users add NAME --role ROLE [--agent ID] | list | passwd NAME | disable NAME
    ctiserver version

Global options come before the subcommand so every subcommand sees the same settings. Errors
of ours (``CtiError``) print one clear line and exit 2 (configuration) or 1 (anything else);
no traceback for a mistake an admin can fix.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from app.settings import Settings, load_settings
from app.wiring import (
    acd_config_path,
    console_config_path,
    crm_url,
    customers_file,
    ivr_paths,
    queue_problems,
    sandbox_config,
    sound_catalog,
)
from cti import __version__
from cti.errors import ConfigError, CtiError
from sandbox import Sandbox, SandboxStatus

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ctiserver", description="Contact-center CTI server")
    parser.add_argument(
        "--config", type=Path, help="settings file (default: config/ctiserver.yaml)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set http.port=8081 (repeatable)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the server (AMI client, FastAGI server, HTTP)")
    run.add_argument(
        "--demo",
        action="store_true",
        help="also start the sandbox with SIPp agent phones and a stream of demo callers "
        "(see app/demo.py; demo users from config/users.yaml)",
    )
    sub.add_parser("check-config", help="validate the configuration and exit")
    sub.add_parser("version", help="print the version")
    config = sub.add_parser("config", help="about the configuration files").add_subparsers(
        dest="config_command", required=True
    )
    schema = config.add_parser(
        "schema", help="write a JSON Schema per kind of file, for editors to complete and check"
    )
    schema.add_argument(
        "--out", type=Path, default=Path("config/schema"), help="folder (default: config/schema)"
    )
    pbx = sub.add_parser("pbx", help="manage the local Asterisk sandbox").add_subparsers(
        dest="pbx_command", required=True
    )
    build = pbx.add_parser("build", help="build the cached Asterisk root (debootstrap)")
    build.add_argument("--force", action="store_true", help="rebuild even if cached")
    pbx.add_parser("up", help="build if needed, render the configuration, start Asterisk")
    pbx.add_parser("down", help="stop Asterisk")
    pbx.add_parser("restart", help="stop, re-render the configuration, start")
    pbx.add_parser("status", help="print the sandbox status as JSON")
    cli = pbx.add_parser("cli", help="run an Asterisk CLI command (asterisk -rx)")
    cli.add_argument("words", nargs="+", help="the command, e.g. core show channels")
    db = sub.add_parser("db", help="the CRM store's database").add_subparsers(
        dest="db_command", required=True
    )
    db.add_parser("upgrade", help="bring the schema to the newest migration")
    db.add_parser("status", help="print the database URL and its schema revision")
    for _name, add_commands, _run in _store_commands():
        add_commands(sub)
    return parser


StoreCommand = Callable[[argparse.Namespace, Any], Awaitable[int]]


def _store_commands() -> list[tuple[str, Callable[[Any], None], StoreCommand]]:
    """Commands of the CRM store's modules: (name, add its parser, run it on an engine)."""
    from agent_console import users_cli
    from crm_bridge import csv_io, reports

    return [
        ("report", reports.add_commands, reports.run_command),
        ("customers", csv_io.add_commands, csv_io.run_command),
        ("users", users_cli.add_commands, users_cli.run_command),
    ]


async def _store_command(settings: Settings, args: argparse.Namespace, run: StoreCommand) -> int:
    from crm_bridge.db import create_engine, migrate

    engine = create_engine(crm_url(settings))
    try:
        await migrate(engine)  # idempotent; a fresh store answers with empty reports
        return await run(args, engine)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            print(__version__)
            return 0
        if args.command == "config":
            from app.config_schema import write_schemas

            for path in write_schemas(args.out):
                print(path)
            return 0
        settings = load_settings(args.config, environ=os.environ, overrides=args.overrides)
        if args.command == "check-config":
            return _check_config(settings, args)
        if args.command == "pbx":
            return _pbx(settings, args)
        if args.command == "db":
            return asyncio.run(_db(settings, args))
        for name, _add, run in _store_commands():
            if args.command == name:
                return asyncio.run(_store_command(settings, args, run))
        if args.demo:
            from sandbox.sipp import require_sipp

            require_sipp()  # before anything starts: a clear error, not a half-started demo
        from app.logs import configure_logging

        configure_logging(settings.log)
        if args.demo:
            return _run_demo(settings)
        from app.server import serve

        asyncio.run(serve(settings))
        return 0
    except ConfigError as exc:
        print(f"ctiserver: configuration error: {exc}", file=sys.stderr)
        return 2
    except CtiError as exc:
        print(f"ctiserver: {exc}", file=sys.stderr)
        return 1


def _run_demo(settings: Settings) -> int:
    """``run --demo``: the sandbox with the demo phones' contacts, the server, the demo."""
    from app.demo import demo_settings

    settings = demo_settings(settings)
    sandbox = Sandbox(sandbox_config(settings))
    if sandbox.status().running:
        # Started by `pbx up` without the demo's static contacts (./dev run does that):
        # write them and let PJSIP read its configuration again.
        sandbox.render()
        sandbox.cli("module reload res_pjsip.so")
    else:
        sandbox.up()

    from app.demo import running_demo
    from app.server import serve

    asyncio.run(serve(settings, alongside=lambda server: running_demo(settings, server)))
    return 0


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    """Validate everything the server would load at start, print the verdict."""
    from ivr.loader import describe_config, load_ivr_config

    print(f"settings OK ({args.config or 'defaults and config/ctiserver.yaml'})")
    catalog = sound_catalog(settings)
    config = load_ivr_config(ivr_paths(settings), catalog=catalog)
    print(f"IVR OK, version {config.version}")
    print(describe_config(config))
    if catalog is None:
        print("note: sound prompts not checked (no sandbox root, set ivr.sounds_dir)")
    _check_other_files(settings)
    if not settings.acd.enabled:
        print("ACD off: queue nodes use Asterisk's app_queue queues of the same names")
        return 0
    from acd.config import check_acd_config, describe_acd_config

    acd, problems = check_acd_config(acd_config_path(settings))
    errors = [p for p in problems if not p.startswith("warning:")]
    if acd is None or errors:
        lines = "\n  ".join(errors)
        print(f"ACD configuration: {len(errors)} problem(s):\n  {lines}", file=sys.stderr)
        return 1
    print(f"ACD OK ({acd_config_path(settings)})")
    print(describe_acd_config(acd))
    for warning in [p for p in problems if p.startswith("warning:")]:
        print(warning)
    mismatches = queue_problems(config, acd)
    for problem in mismatches:
        print(f"IVR/ACD: {problem}", file=sys.stderr)
    return 1 if mismatches else 0


def _check_other_files(settings: Settings) -> None:
    """console.yaml, customers.yaml and the demo's users.yaml, when present: each read by the
    shared source and checked by its model (the JSON Schemas come from the same models)."""
    from agent_console.config import load_console_config
    from agent_console.users_file import UsersFile
    from cti.config import load_model
    from ivr.customers_file import CustomersFile

    console = console_config_path(settings)
    if console.is_file():
        load_console_config(console)
        print(f"console OK ({console})")
    customers = customers_file(settings)
    if customers is not None and customers.is_file():
        found = load_model(customers, CustomersFile, what="customer file")
        print(f"customers OK ({customers}: {len(found.customers)} records)")
    users = settings.config_dir / "users.yaml"
    if users.is_file():
        load_model(users, UsersFile, what="demo users file")
        print(f"demo users OK ({users})")


async def _db(settings: Settings, args: argparse.Namespace) -> int:
    from crm_bridge.db import create_engine, current_revision, head_revision, migrate

    url = crm_url(settings)
    engine = create_engine(url)
    try:
        if args.db_command == "upgrade":
            await migrate(engine)
        revision = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    state = "up to date" if revision == head else f"behind (newest {head})"
    print(f"{_safe_url(url)}: revision {revision or 'none'}, {state}")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password, for printing."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _pbx(settings: Settings, args: argparse.Namespace) -> int:
    sandbox = Sandbox(sandbox_config(settings))
    match args.pbx_command:
        case "build":
            print(sandbox.build(force=args.force))
        case "up":
            sandbox.up()
            print(_status_json(sandbox.status()))
        case "down":
            sandbox.down()
        case "restart":
            sandbox.down()
            sandbox.up()
            print(_status_json(sandbox.status()))
        case "status":
            status = sandbox.status()
            print(_status_json(status))
            return 0 if status.running else 3
        case "cli":
            print(sandbox.cli(" ".join(args.words)), end="")
    return 0


def _status_json(status: SandboxStatus) -> str:
    return json.dumps(dataclasses.asdict(status), indent=2, default=str)


if __name__ == "__main__":
    raise SystemExit(main())
