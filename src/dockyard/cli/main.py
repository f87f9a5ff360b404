"""The ``dockyard`` command."""

from __future__ import annotations

import argparse
import sys

from dockyard import __version__
from dockyard.cli import admin, db, events, health, index, migrate, tokens, users, vulndb
from dockyard.config import ConfigError, ignored_sections, load_config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dockyard", description="A private OCI / Docker container registry."
    )
    parser.add_argument("--version", action="version", version=f"dockyard {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the registry")
    serve.add_argument("config", nargs="?", help="configuration file (like distribution's config.yml)")
    serve.add_argument("--config", dest="config_opt", metavar="FILE", help="configuration file")
    serve.add_argument("--workers", type=int, default=None, help="worker processes (default: CPU count)")

    config = sub.add_parser("config", help="configuration tools")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    check = config_sub.add_parser("check", help="validate a configuration file and exit")
    check.add_argument("file")
    admin.add_parsers(sub)
    users.add_parser(sub)
    tokens.add_parser(sub)
    db.add_parser(sub)
    index.add_parser(sub)
    events.add_parser(sub)
    migrate.add_parser(sub)
    health.add_parser(sub)
    vulndb.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            from dockyard.server import check_tls_files, default_workers, serve

            config = load_config(args.config_opt or args.config)
            check_tls_files(config)
            from dockyard import log
            from dockyard.auth.setup import prepare

            log.configure(config.log)
            prepare(config)
            workers = args.workers if args.workers is not None else default_workers()
            if workers < 1:
                raise ConfigError("--workers must be at least 1")
            serve(config, workers)
            return 0
        if args.command == "config" and args.config_command == "check":
            config = load_config(args.file)
            driver, _params = config.storage.driver()
            from dockyard.auth.setup import check as check_auth

            for warning in check_auth(config):
                print(f"warning: {warning}", file=sys.stderr)
            for section, why in ignored_sections(config).items():
                print(f"warning: {section} is accepted but ignored ({why})", file=sys.stderr)
            addr, mode = config.http.addr, config.auth.mode
            print(f"{args.file}: ok (storage {driver}, listening on {addr}, auth {mode})")
            return 0
        if args.command in admin.COMMANDS:
            return admin.run(args)
        if args.command == "user":
            return users.run(args)
        if args.command == "token":
            return tokens.run(args)
        if args.command == "events":
            return events.run(args)
        if args.command == "db":
            return db.run(args)
        if args.command == "index":
            return index.run(args)
        if args.command == "migrate":
            return migrate.run(args)
        if args.command == "health":
            return health.run(args)
        if args.command == "vulndb":
            return vulndb.run(args)
    except ConfigError as exc:
        print(f"dockyard: {exc}", file=sys.stderr)
        return 2
    return 1  # pragma: no cover - argparse enforces a command


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
