"""``dockyard user add|passwd|rm|list``: the htpasswd file (bcrypt, as ``htpasswd -B`` writes it)."""

from __future__ import annotations

import argparse
import getpass
import sys

from dockyard.auth.htpasswd import DEFAULT_COST, HtpasswdError, HtpasswdFile
from dockyard.config import ConfigError, load_config


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    user = sub.add_parser("user", help="manage htpasswd users")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    for name, help_text in (
        ("add", "add a user"),
        ("passwd", "change a user's password"),
        ("rm", "remove a user"),
        ("list", "list users"),
    ):
        cmd = user_sub.add_parser(name, help=help_text)
        source = cmd.add_mutually_exclusive_group()
        source.add_argument("--config", help="configuration file (its auth user file is used)")
        source.add_argument("--file", help="htpasswd file")
        if name != "list":
            cmd.add_argument("name")
        if name in ("add", "passwd"):
            cmd.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
            cmd.add_argument("--cost", type=int, default=DEFAULT_COST, help="bcrypt cost (4-31)")


def _file(args: argparse.Namespace) -> HtpasswdFile:
    if args.file:
        return HtpasswdFile(args.file)
    path = load_config(args.config).auth.userfile
    if not path:
        raise ConfigError(
            "no user file: set auth.htpasswd.path (or auth.token.server.htpasswd), or use --file"
        )
    return HtpasswdFile(path)


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise HtpasswdError("the passwords differ")
    return first


def run(args: argparse.Namespace) -> int:
    users = _file(args)
    try:
        command = args.user_command
        if command == "list":
            for name in users.users():
                print(name)
        elif command in ("add", "passwd"):
            if not 4 <= args.cost <= 31:
                raise HtpasswdError("--cost must be between 4 and 31")
            users.set_password(args.name, _password(args), cost=args.cost, create=command == "add")
            print(f"{'added' if command == 'add' else 'changed the password of'} {args.name} in {users.path}")
        elif command == "rm":
            users.remove(args.name)
            print(f"removed {args.name} from {users.path}")
    except HtpasswdError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    return 0
