"""``dockyard events ls|redeliver|purge --config FILE``: the webhook queue of a configuration,
whichever it is (the store's spool, or the PostgreSQL outbox with ``database.dsn``).

``ls`` shows each endpoint's waiting events, failures, last error and last success (as the admin
API's ``/admin/v1/notifications`` does); ``redeliver ENDPOINT`` clears an endpoint's backoff so its
waiting events are sent at once when a registry next sends (after its receiver is fixed, instead
of waiting up to ``maxbackoff``); ``purge ENDPOINT`` drops what an endpoint has not had yet. Both
need the sender's lease, so they refuse (exit 5) while a registry is sending: a running sender
keeps its endpoints' state in memory between rounds and would write it back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from dockyard.config import ConfigError, load_config

REFUSED = 5
USAGE = 2


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("events", help="the webhook queue: ls, redeliver, purge")
    commands = parser.add_subparsers(dest="events_command", required=True)
    ls = commands.add_parser("ls", help="per endpoint: events waiting, failures, last error, last success")
    ls.add_argument("--config", required=True, metavar="FILE", help="the registry's configuration")
    ls.add_argument("--json", action="store_true", help="print JSON for scripts")
    again = commands.add_parser(
        "redeliver",
        help="send an endpoint's waiting events without waiting out its backoff (registry stopped)",
    )
    again.add_argument("endpoint")
    again.add_argument("--config", required=True, metavar="FILE", help="the registry's configuration")
    purge = commands.add_parser("purge", help="drop the events an endpoint has not had (registry stopped)")
    purge.add_argument("endpoint")
    purge.add_argument("--config", required=True, metavar="FILE", help="the registry's configuration")


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_run(args))
    except ConfigError as exc:
        print(f"dockyard events: {exc}", file=sys.stderr)
        return USAGE


async def _run(args: argparse.Namespace) -> int:
    from dockyard.app import create_services
    from dockyard.auth.access import AllowAll
    from dockyard.notify.leader import LEASE

    config = load_config(args.config)
    services = create_services(config, access=AllowAll())
    notifier = services.notifier
    try:
        if notifier is None:
            print(f"dockyard events: no notification endpoint is enabled in {args.config}", file=sys.stderr)
            return 0 if args.events_command == "ls" else USAGE
        if args.events_command == "ls":
            rows = await notifier.status()
            if args.json:
                print(json.dumps(rows, indent=2))
            for row in [] if args.json else rows:
                state = "disabled" if row["disabled"] else "failing" if row["failing"] else "ok"
                print(
                    f"{row['name']}\t{state}\tpending {row['pending']}\tdelivered {row['delivered']}\t"
                    f"dropped {row['dropped']}\tlast success {row['lastSuccessAt'] or '-'}\t"
                    f"last error {row['lastError'] or '-'}"
                )
            return 0
        names = [e.name for e in config.notifications.endpoints if not e.disabled]
        if args.endpoint not in names:
            print(
                f"dockyard events: no enabled endpoint {args.endpoint!r} (have: {', '.join(names)})",
                file=sys.stderr,
            )
            return USAGE
        deliverer = notifier.deliverer
        if not await services.coordinator.acquire_lease(LEASE, deliverer.holder, config.notifications.lease):
            print("dockyard events: a running registry is sending this queue: stop it first", file=sys.stderr)
            return REFUSED
        if args.events_command == "redeliver":
            waiting = await deliverer.redeliver(args.endpoint)
            print(f"{waiting} events for {args.endpoint} go at the next round")
            return 0
        dropped = await deliverer.purge(args.endpoint)
        print(f"purged {dropped} events for {args.endpoint}")
        return 0
    finally:
        if notifier is not None:
            await notifier.deliverer.stop()  # closes its HTTP client, gives the lease back
        await services.coordinator.close()
