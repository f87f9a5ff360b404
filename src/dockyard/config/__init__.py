"""Configuration: one typed model shaped like distribution's ``config.yml``.

``load_config`` reads a YAML file, applies ``REGISTRY_<SECTION>_<KEY>`` environment overrides
(values parsed as YAML, as distribution does), and validates. Unknown keys and bad values raise
:class:`ConfigError` naming the key and what is allowed. Keys never contain ``_`` so that the
environment mapping is unambiguous.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from dockyard.config.auth import AccessPolicy as AccessPolicy
from dockyard.config.auth import AccessRule as AccessRule
from dockyard.config.auth import Auth as Auth
from dockyard.config.auth import HtpasswdAuth as HtpasswdAuth
from dockyard.config.auth import Robots as Robots
from dockyard.config.auth import Throttle as Throttle
from dockyard.config.auth import TokenAuth as TokenAuth
from dockyard.config.auth import TokenServer as TokenServer
from dockyard.config.base import ConfigError as ConfigError
from dockyard.config.base import Duration as Duration
from dockyard.config.base import Section as Section
from dockyard.config.base import is_loopback as is_loopback
from dockyard.config.base import split_addr as split_addr
from dockyard.config.http import HTTP as HTTP
from dockyard.config.http import TLS as TLS
from dockyard.config.http import Accel as Accel
from dockyard.config.http import AccessLog as AccessLog
from dockyard.config.http import Debug as Debug
from dockyard.config.http import HTTPTimeouts as HTTPTimeouts
from dockyard.config.http import Log as Log
from dockyard.config.http import Prometheus as Prometheus
from dockyard.config.notify import Audit as Audit
from dockyard.config.notify import Endpoint as Endpoint
from dockyard.config.notify import EndpointIgnore as EndpointIgnore
from dockyard.config.notify import NotificationEvents as NotificationEvents
from dockyard.config.notify import Notifications as Notifications
from dockyard.config.policies import UI as UI
from dockyard.config.policies import Database as Database
from dockyard.config.policies import Quota as Quota
from dockyard.config.policies import Retention as Retention
from dockyard.config.policies import RetentionPolicy as RetentionPolicy
from dockyard.config.policies import VulnDB as VulnDB
from dockyard.config.proxy import Credentials as Credentials
from dockyard.config.proxy import Proxy as Proxy
from dockyard.config.proxy import SyncRule as SyncRule
from dockyard.config.proxy import Upstream as Upstream
from dockyard.config.scan import Scan as Scan
from dockyard.config.storage import DRIVER_NAMES as DRIVER_NAMES
from dockyard.config.storage import S3 as S3
from dockyard.config.storage import STORAGE_OPTIONS as STORAGE_OPTIONS
from dockyard.config.storage import Cache as Cache
from dockyard.config.storage import Delete as Delete
from dockyard.config.storage import DriverSection as DriverSection
from dockyard.config.storage import Filesystem as Filesystem
from dockyard.config.storage import GarbageCollection as GarbageCollection
from dockyard.config.storage import Health as Health
from dockyard.config.storage import InMemory as InMemory
from dockyard.config.storage import Maintenance as Maintenance
from dockyard.config.storage import ReadOnly as ReadOnly
from dockyard.config.storage import Redirect as Redirect
from dockyard.config.storage import Storage as Storage
from dockyard.config.storage import StorageDriverHealth as StorageDriverHealth
from dockyard.config.storage import UploadPurging as UploadPurging
from dockyard.config.validation import ImageValidation as ImageValidation
from dockyard.config.validation import IndexValidation as IndexValidation
from dockyard.config.validation import ManifestValidation as ManifestValidation
from dockyard.config.validation import PlatformEntry as PlatformEntry
from dockyard.config.validation import Validation as Validation

# Variables other tools put in the environment under the same prefix.
_FOREIGN_ENV = {"REGISTRY_AUTH_FILE", "REGISTRY_CONFIGURATION_PATH"}


# Where `dockyard serve`'s worker processes read the validated configuration (as JSON): a path,
# not the configuration itself, which carries secrets and would show in /proc/<pid>/environ and
# in the environment of everything a worker starts.
CONFIG_PATH_ENV = "DOCKYARD_CONFIG_PATH"

# Sections a distribution configuration may carry that dockyard accepts, so the file loads, but
# does not act on; and why. Setting one logs a warning at startup (``ignored_sections``).
IGNORED_SECTIONS: dict[tuple[str, ...], str] = {
    ("storage", "cache"): "dockyard keeps its own caches in each worker process",
    ("health", "storagedriver"): "GET /health checks the storage on every request, not on an interval",
}


class Config(Section):
    version: str = "0.1"
    log: Log = Log()
    http: HTTP = HTTP()
    storage: Storage = Storage()
    database: Database = Database()
    health: Health = Health()
    retention: Retention = Retention()
    quotas: list[Quota] = Field(default_factory=list)
    auth: Auth = Auth()
    ui: UI = UI()
    proxy: Proxy = Proxy()
    notifications: Notifications = Notifications()
    audit: Audit = Audit()
    validation: Validation = Validation()
    vulndb: VulnDB = VulnDB()
    scan: Scan = Scan()

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if str(v) != "0.1":
            raise ValueError("only configuration version 0.1 is known")
        return "0.1"

    @model_validator(mode="after")
    def _accel_needs_files(self) -> Config:
        # nginx can only send what it can open: blobs in a local directory it aliases.
        others = [n for n in DRIVER_NAMES if n != "filesystem" and getattr(self.storage, n) is not None]
        if self.http.accel is not None and others:
            raise ValueError(
                f"http.accel serves blobs from the filesystem driver's directory; storage uses {others[0]}"
            )
        return self


def _set_path(tree: dict[str, Any], keys: list[str], value: Any) -> None:
    node = tree
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {} if child is None or not isinstance(child, str) else {child: {}}
            node[key] = child
        node = child
    last = keys[-1]
    if isinstance(value, str) and isinstance(node.get(last), dict) and last == "storage":
        node[last] = {
            value: node[last].get(value, {}),
            **{k: v for k, v in node[last].items() if k in STORAGE_OPTIONS},
        }
    else:
        node[last] = value


def apply_env(tree: dict[str, Any], environ: Mapping[str, str]) -> dict[str, Any]:
    """Apply ``REGISTRY_*`` overrides in sorted order (less specific first)."""
    import yaml  # only the CLI parses YAML; worker processes get the config as JSON

    for var in sorted(environ):
        if not var.startswith("REGISTRY_") or var in _FOREIGN_ENV:
            continue
        keys = var[len("REGISTRY_") :].lower().split("_")
        if keys == ["version"] or not all(keys):
            continue
        try:
            value = yaml.safe_load(environ[var])
        except yaml.YAMLError:
            value = environ[var]
        if value is None:
            value = ""
        _set_path(tree, keys, value)
    return tree


def _format(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        if err["type"] == "extra_forbidden":
            parent = _model_at(err["loc"][:-1])
            allowed = ", ".join(parent.model_fields) if parent else "none"
            lines.append(f"  {key}: unknown key (allowed here: {allowed})")
        else:
            lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = Config
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        ann = field.annotation
        candidates = [ann, *getattr(ann, "__args__", ())]
        nested = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if not nested:
            return None
        model = nested[0]
    return model


def ignored_sections(config: Config) -> dict[str, str]:
    """The :data:`IGNORED_SECTIONS` this configuration sets (defaults do not count) → why."""
    out = {}
    for keys, why in IGNORED_SECTIONS.items():
        node: BaseModel = config
        for key in keys[:-1]:
            node = getattr(node, key)
        if keys[-1] in node.model_fields_set:
            out[".".join(keys)] = why
    return out


def parse_config(tree: dict[str, Any], source: str = "configuration") -> Config:
    try:
        config = Config.model_validate(tree)
        config.storage.driver()
    except ValidationError as exc:
        raise ConfigError(_format(exc, source)) from None
    return config


def load_config(path: str | Path | None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (or nothing: all defaults), apply the environment, validate."""
    import yaml

    environ = os.environ if environ is None else environ
    path = path or environ.get("REGISTRY_CONFIGURATION_PATH") or None
    tree: dict[str, Any] = {}
    source = "defaults and environment"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections")
        tree = loaded
    return parse_config(apply_env(tree, environ), source)
