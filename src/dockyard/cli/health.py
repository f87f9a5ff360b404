"""``dockyard health [CONFIG]``: ask the running registry's ``GET /health`` and exit 0 only on 200.

It is what the container image's ``HEALTHCHECK`` runs (the image has no curl): it reads the same
configuration as ``dockyard serve`` (file plus ``REGISTRY_*`` environment), so it finds the
listener on its own, over TLS when ``http.tls`` is set. The certificate is not verified: the
question is whether this process answers, and the name it was issued for need not resolve here.
"""

from __future__ import annotations

import argparse
import ssl
import sys
import urllib.error
import urllib.request

from dockyard.config import Config, load_config, split_addr

_ANY = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("health", help="exit 0 when the running registry's GET /health answers 200")
    parser.add_argument("config", nargs="?", help="the configuration file `dockyard serve` was given")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer")


def health_url(config: Config) -> str:
    """The URL of ``/health`` on this machine's listener of ``config``."""
    host, port = split_addr(config.http.addr)
    host = _ANY.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if config.http.tls.certificate else "http"
    return f"{scheme}://{host}:{port}{config.http.prefix.rstrip('/')}/health"


def run(args: argparse.Namespace) -> int:
    url = health_url(load_config(args.config))
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:  # noqa: S310
            print(response.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read().decode(errors='replace')}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
    return 1
