"""``dockyard token create|list|revoke|rotate-key``: robot access tokens and the signing key."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import time
from collections.abc import Awaitable, Callable

from dockyard.auth.robots import RobotError
from dockyard.auth.setup import AuthState, local_state
from dockyard.config import Config, ConfigError, load_config
from dockyard.coord.base import Coordinator
from dockyard.durations import parse_duration
from dockyard.events import Event, RobotCreated, RobotRevoked


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    token = sub.add_parser("token", help="manage robot access tokens and the token signing key")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = token_sub.add_parser("create", help="create a robot token (shown once)")
    create.add_argument("name")
    create.add_argument(
        "--repository",
        "-r",
        action="append",
        required=True,
        help="repository glob (repeatable)",
    )
    create.add_argument("--actions", default="pull", help="comma-separated: pull,push,delete (default pull)")
    create.add_argument("--expires", default="90d", help="lifetime, e.g. 720h or 90d; 'never' for none")
    token_sub.add_parser("list", help="list robot tokens")
    revoke = token_sub.add_parser("revoke", help="revoke a robot token")
    revoke.add_argument("name")
    token_sub.add_parser("rotate-key", help="new signing key; the old one validates until its tokens expire")
    for cmd in token_sub.choices.values():
        cmd.add_argument("--config", help="configuration file")


def _lifetime(text: str) -> float | None:
    if text == "never":
        return None
    if text.endswith("d") and text[:-1].isdigit():
        return int(text[:-1]) * 86400.0
    return parse_duration(text)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (a bare container)
        return str(os.getuid())


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ts)) if ts else "-"


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    rotate = args.token_command == "rotate-key"  # noqa: S105 - a command name
    if rotate and (config.auth.token is None or not config.auth.token.server.enabled):
        raise ConfigError("rotate-key needs auth.token.server.enabled in the configuration")
    return asyncio.run(_run(config, args))


async def _state(config: Config) -> tuple[AuthState, Coordinator | None]:
    """The accounts' state where the registry keeps it: the database when ``database.dsn`` is
    set (so a robot made here logs in on every replica), else this machine's files."""
    if not config.database.dsn:
        return local_state(config, create_key=False), None
    from dockyard.auth.setup import postgres_state
    from dockyard.coord.postgres import PostgresCoordinator

    coordinator = PostgresCoordinator(config.database.dsn)
    return postgres_state(config, coordinator), coordinator


Record = Callable[[Event], Awaitable[None]]


def _recorder(config: Config, coordinator: Coordinator | None) -> Record:
    """Writes a robot's creation or revocation to the audit log when it is on (the store's, or
    the database's with ``database.dsn``), durable before the command says it is done."""

    async def record(event: Event) -> None:
        if not config.audit.enabled:
            return
        from dockyard.audit import create_audit_log
        from dockyard.storage.drivers import create_driver

        name, params = config.storage.driver()
        audit = create_audit_log(config, create_driver(name, params), coordinator)
        audit.emit(event)
        await audit.spool.drain()

    return record


async def _run(config: Config, args: argparse.Namespace) -> int:
    state, coordinator = await _state(config)
    try:
        return await _command(state, args, _recorder(config, coordinator))
    finally:
        if coordinator is not None:
            await coordinator.close()


async def _command(state: AuthState, args: argparse.Namespace, record: Record) -> int:
    command = args.token_command
    if command == "rotate-key":
        assert state.keys is not None  # checked in run()
        signer = await state.keys.rotate()
        _, trusted = await state.keys.load()
        print(f"signing with {signer.name} (kid {signer.thumbprint}); {len(trusted)} key(s) trusted")
        return 0
    robots = state.robots
    try:
        if command == "create":
            actions = [a.strip() for a in args.actions.split(",") if a.strip()]
            robot, secret = await robots.create(args.name, args.repository, actions, _lifetime(args.expires))
            await record(
                RobotCreated(robot.name, robot.repositories, robot.actions, robot.expires, _os_user())
            )
            print(f"user:  {robot.username}")
            print(f"token: {secret}")
            print("(the token is shown only now; use it as the password of docker login)", file=sys.stderr)
        elif command == "list":
            await robots.refresh()
            print(f"{'NAME':20} {'REPOSITORIES':30} {'ACTIONS':18} {'EXPIRES':17} STATUS")
            for r in robots.robots():
                status = "revoked" if r.revoked else ("expired" if not r.active() else "active")
                print(
                    f"{r.name:20} {','.join(r.repositories):30} {','.join(r.actions):18} "
                    f"{_when(r.expires):17} {status}"
                )
        elif command == "revoke":
            await robots.revoke(args.name)
            await record(RobotRevoked(args.name, _os_user()))
            print(f"revoked robot {args.name}")
    except (RobotError, ValueError) as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 1
    return 0
