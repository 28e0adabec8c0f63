"""The ``ctiserver`` command line.

    ctiserver [--config FILE] [--set KEY=VALUE ...] run
    ctiserver [...] check-config
    ctiserver [...] pbx build [--force] | up | down | status | restart | cli COMMAND...
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
from collections.abc import Sequence
from pathlib import Path

from cti import __version__
from cti.errors import ConfigError, CtiError
from cti.pbx import AgentPhone, Sandbox, SandboxConfig, SandboxStatus
from cti.settings import Settings, load_settings

__all__ = ["main", "sandbox_config"]


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
    sub.add_parser("run", help="run the server (AMI client, FastAGI server, HTTP)")
    sub.add_parser("check-config", help="validate the configuration and exit")
    sub.add_parser("version", help="print the version")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "version":
            print(__version__)
            return 0
        settings = load_settings(args.config, environ=os.environ, overrides=args.overrides)
        if args.command == "check-config":
            print(f"configuration OK ({args.config or 'defaults and config/ctiserver.yaml'})")
            return 0
        if args.command == "pbx":
            return _pbx(settings, args)
        from cti.logs import configure_logging
        from cti.server import serve

        configure_logging(settings.log)
        asyncio.run(serve(settings))
        return 0
    except ConfigError as exc:
        print(f"ctiserver: configuration error: {exc}", file=sys.stderr)
        return 2
    except CtiError as exc:
        print(f"ctiserver: {exc}", file=sys.stderr)
        return 1


def sandbox_config(settings: Settings) -> SandboxConfig:
    """The sandbox instance that serves these settings: same AMI user, ports and agents."""
    pbx = settings.pbx
    templates = pbx.template_dir or settings.config_dir / "asterisk"
    return SandboxConfig(
        ami_secret=settings.ami.secret.get_secret_value(),
        ami_username=settings.ami.username,
        ami_port=settings.ami.port,
        cache_dir=pbx.cache_dir.expanduser(),
        root=pbx.root.expanduser() if pbx.root else None,
        instance=pbx.instance,
        mirror=pbx.mirror,
        suite=pbx.suite,
        sip_port=pbx.sip_port,
        rtp_start=pbx.rtp_start,
        rtp_end=pbx.rtp_end,
        # Asterisk dials the address we listen on; a wildcard listener is reached on loopback.
        agi_host="127.0.0.1" if settings.agi.host in ("0.0.0.0", "::") else settings.agi.host,
        agi_port=settings.agi.port,
        agents=tuple(
            AgentPhone(a.endpoint, a.password.get_secret_value(), contact=a.contact)
            for a in pbx.agents
        ),
        fallback_timeout=pbx.fallback_timeout,
        # None lets the sandbox use the repository's templates (the default config_dir).
        template_dir=templates if (templates / "asterisk.conf").is_file() else None,
    )


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
