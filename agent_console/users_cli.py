"""``ctiserver users``: bootstrap and manage console accounts from the command line.

    ctiserver users add NAME --role agent|supervisor|admin [--agent agent1001] [--name "..."]
    ctiserver users list
    ctiserver users passwd NAME
    ctiserver users disable|enable NAME

Passwords are read with no echo from the terminal (asked twice), or one line from standard
input with ``--password-stdin`` (scripts, the demo set-up); never from the command line, where
``ps`` and the shell history would show them.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any, TextIO

from sqlalchemy.ext.asyncio import AsyncEngine

from agent_console.accounts import ROLES, AccountError, AccountStore

__all__ = ["add_commands", "run_command"]


def add_commands(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="console accounts (agents, supervisors, admins)")
    actions = users.add_subparsers(dest="users_command", required=True)
    add = actions.add_parser("add", help="create an account")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--agent", help="the ACD agent an agent account works as")
    add.add_argument("--name", help="display name")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    actions.add_parser("list", help="list accounts")
    passwd = actions.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("username")
    passwd.add_argument("--password-stdin", action="store_true")
    for verb in ("disable", "enable"):
        actions.add_parser(verb, help=f"{verb} an account").add_argument("username")


def _password(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


async def run_command(
    args: argparse.Namespace,
    engine: AsyncEngine,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
) -> int:
    out = stdout or sys.stdout
    accounts = AccountStore(engine)
    command = args.users_command
    try:
        if command == "add":
            user = await accounts.add_user(
                args.username,
                _password(args, stdin or sys.stdin),
                args.role,
                agent_id=args.agent,
                display_name=args.name,
            )
            out.write(f"added {user.username} ({user.role})\n")
        elif command == "list":
            for user in await accounts.users():
                agent = f" as {user.agent_id}" if user.agent_id else ""
                state = " (disabled)" if user.disabled else ""
                out.write(f"{user.username}\t{user.role}{agent}\t{user.display_name}{state}\n")
        elif command == "passwd":
            await accounts.set_password(args.username, _password(args, stdin or sys.stdin))
            out.write(f"password of {args.username} changed; their sessions ended\n")
        else:
            await accounts.set_disabled(args.username, command == "disable")
            out.write(f"{args.username} {command}d\n")
    except AccountError as exc:
        print(f"ctiserver users: {exc}", file=sys.stderr)
        return 1
    return 0
