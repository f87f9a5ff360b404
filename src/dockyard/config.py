"""Configuration: one typed model shaped like distribution's ``config.yml``.

``load_config`` reads a YAML file, applies ``REGISTRY_<SECTION>_<KEY>`` environment overrides
(values parsed as YAML, as distribution does), and validates. Unknown keys and bad values raise
:class:`ConfigError` naming the key and what is allowed. Keys never contain ``_`` so that the
environment mapping is unambiguous.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from dockyard.durations import parse_duration
from dockyard.sizes import parse_size

Duration = Annotated[float, BeforeValidator(parse_duration)]
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


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccessLog(Section):
    disabled: bool = False


class Log(Section):
    level: Literal["error", "warn", "info", "debug"] = "info"
    formatter: Literal["text", "json"] = "text"
    fields: dict[str, str] = Field(default_factory=dict)
    accesslog: AccessLog = AccessLog()

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v


class TLS(Section):
    certificate: str | None = None
    key: str | None = None
    minimumtls: Literal["tls1.2", "tls1.3"] = "tls1.2"


class HTTPTimeouts(Section):
    """How long a slow client may hold a connection (see README, "Security")."""

    # The whole request head (line and headers), and an idle keep-alive connection's wait for the
    # next request: granian's HTTP/1 header read timeout.
    header: Duration = 15.0
    # The longest pause between two pieces of a request body (an upload that stalls, a chunked
    # body cut short, a Content-Length larger than what is sent); 0 waits forever.
    body: Duration = 60.0

    @field_validator("header")
    @classmethod
    def _header(cls, v: float) -> float:
        if v < 0.1:
            raise ValueError("the header timeout must be at least 0.1 seconds")
        return v

    @field_validator("body")
    @classmethod
    def _body(cls, v: float) -> float:
        if v < 0:
            raise ValueError("the body timeout must not be negative (0 turns it off)")
        return v


class Prometheus(Section):
    enabled: bool = False
    path: str = "/metrics"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("the metrics path must start with '/'")
        return v


class Debug(Section):
    """distribution's debug listener: a second address, apart from the API, that serves the
    Prometheus metrics of every worker process (``http.debug.prometheus``). No address, no listener."""

    addr: str | None = None
    prometheus: Prometheus = Prometheus()

    @field_validator("addr")
    @classmethod
    def _addr(cls, v: str | None) -> str | None:
        if v:
            split_addr(v)
        return v or None


class HTTP(Section):
    addr: str = "127.0.0.1:5000"
    host: str | None = None
    prefix: str = "/"
    secret: str | None = None  # accepted for compatibility; upload state lives in storage
    relativeurls: bool = False
    tls: TLS = TLS()
    headers: dict[str, list[str]] = Field(default_factory=dict)
    draintimeout: Duration = 30.0
    timeouts: HTTPTimeouts = HTTPTimeouts()
    debug: Debug = Debug()

    @property
    def metrics_enabled(self) -> bool:
        """Whether workers keep Prometheus metrics: enabled, and somewhere to serve them."""
        return self.debug.prometheus.enabled and self.debug.addr is not None

    @field_validator("addr")
    @classmethod
    def _addr(cls, v: str) -> str:
        split_addr(v)
        return v

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError("the prefix must start with '/'")
        return "/" + v.strip("/") if v.strip("/") else "/"

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("http.host must be a URL such as https://registry.example.com")
        return v.rstrip("/") if v else v

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ([x] if isinstance(x, str) else x) for k, x in v.items()}
        return v


class DriverSection(Section):
    """A storage driver's parameters: the ``storage`` key holding one names the driver
    (``dockyard.storage.drivers.DRIVERS`` maps the same names to the classes)."""


class Filesystem(DriverSection):
    rootdirectory: str = "./registry-data"
    maxthreads: int = 100
    fsync: bool = True


class InMemory(DriverSection):
    pass


class S3(DriverSection):
    """distribution's ``storage.s3`` keys (``dockyard.storage.drivers.s3_client`` reads them);
    credentials left out come from the standard AWS environment and files."""

    accesskey: str | None = None
    secretkey: str | None = None
    sessiontoken: str | None = None
    region: str | None = None
    regionendpoint: str | None = None
    bucket: str
    rootdirectory: str = ""
    secure: bool = True
    skipverify: bool = False
    v4auth: bool = True
    forcepathstyle: bool | None = None  # default: path style when regionendpoint is set (2.8.2)
    chunksize: int = 10 << 20
    multipartcopychunksize: int = 32 << 20
    multipartcopymaxconcurrency: int = 100
    multipartcopythresholdsize: int = 32 << 20
    encrypt: bool = False
    keyid: str | None = None
    storageclass: str | None = None
    objectacl: str | None = None
    useragent: str | None = None
    usedualstack: bool = False
    accelerate: bool = False
    loglevel: str | None = None  # accepted from distribution configs; dockyard logs its own way


class Delete(Section):
    enabled: bool = True


class UploadPurging(Section):
    enabled: bool = True
    age: Duration = 168 * 3600.0
    interval: Duration = 24 * 3600.0
    dryrun: bool = False


class ReadOnly(Section):
    enabled: bool = False


class GarbageCollection(Section):
    enabled: bool = True
    interval: Duration = 24 * 3600.0
    grace: Duration = 3600.0
    deleteuntagged: bool = False
    dryrun: bool = False


class Maintenance(Section):
    uploadpurging: UploadPurging = UploadPurging()
    readonly: ReadOnly = ReadOnly()
    gc: GarbageCollection = GarbageCollection()


class Cache(Section):
    blobdescriptor: Literal["inmemory", "redis", ""] = "inmemory"
    blobdescriptorsize: int = 10000


class Redirect(Section):
    disable: bool = True


class Storage(Section):
    filesystem: Filesystem | None = None
    inmemory: InMemory | None = None
    s3: S3 | None = None
    delete: Delete = Delete()
    maintenance: Maintenance = Maintenance()
    cache: Cache = Cache()  # accepted from distribution configs; dockyard keeps its own caches
    redirect: Redirect = Redirect()

    def driver(self) -> tuple[str, dict[str, Any]]:
        chosen = [(n, s) for n in DRIVER_NAMES if (s := getattr(self, n)) is not None]
        if len(chosen) > 1:
            names = " or ".join(DRIVER_NAMES)
            raise ConfigError(f"storage: configure exactly one driver ({names}), not several")
        if not chosen:
            return "filesystem", Filesystem().model_dump()
        name, section = chosen[0]
        return name, section.model_dump()


def _driver_section(annotation: Any) -> bool:
    args = getattr(annotation, "__args__", ())
    return any(isinstance(a, type) and issubclass(a, DriverSection) for a in args)


# The keys under ``storage`` that name a driver, and the ones that are options of every driver.
DRIVER_NAMES = tuple(n for n, f in Storage.model_fields.items() if _driver_section(f.annotation))
STORAGE_OPTIONS = tuple(n for n in Storage.model_fields if n not in DRIVER_NAMES)


class StorageDriverHealth(Section):
    enabled: bool = True
    interval: Duration = 10.0
    threshold: int = 3


class Health(Section):
    storagedriver: StorageDriverHealth = StorageDriverHealth()


# --- auth (distribution's htpasswd and token sections; dockyard's additions in named sub-keys) -----


class HtpasswdAuth(Section):
    realm: str = "dockyard"
    path: str


class TokenServer(Section):
    """dockyard's built-in token issuer, served at ``path`` beside the API."""

    enabled: bool = False
    path: str = "/token"
    keys: str = "./registry-auth/keys"  # signing keys (0600), generated on first start
    algorithm: Literal["ES256", "RS256"] = "ES256"
    kid: Literal["thumbprint", "libtrust"] = "thumbprint"
    expiration: Duration = 300.0
    refreshexpiration: Duration = 30 * 24 * 3600.0
    htpasswd: str | None = None  # the user database; default: auth.htpasswd.path


class TokenAuth(Section):
    realm: str | None = None  # default with the built-in server: <this registry>/token
    service: str = "dockyard"
    issuer: str = "dockyard"
    rootcertbundle: str | None = None
    jwks: str | None = None  # a JWKS file or an http(s) URL
    autoredirect: bool = False
    signingalgorithms: list[str] | None = None
    leeway: Duration = 60.0
    server: TokenServer = TokenServer()


class AccessRule(Section):
    repositories: list[str]
    actions: list[Literal["pull", "push", "delete", "*"]]
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    anonymous: bool = False
    authenticated: bool = False


class AccessPolicy(Section):
    admins: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    rules: list[AccessRule] = Field(default_factory=list)


class Robots(Section):
    path: str = "./registry-auth/robots.json"


class Throttle(Section):
    enabled: bool = True
    attempts: int = 5
    window: Duration = 60.0


class Auth(Section):
    htpasswd: HtpasswdAuth | None = None
    token: TokenAuth | None = None
    access: AccessPolicy | None = None  # dockyard: per-repository rules (default: users may do all)
    robots: Robots = Robots()  # dockyard: robot accounts / access tokens
    throttle: Throttle = Throttle()  # dockyard: failed-login throttling

    @property
    def mode(self) -> Literal["none", "htpasswd", "token"]:
        if self.token is not None:
            return "token"
        return "htpasswd" if self.htpasswd is not None else "none"

    @property
    def userfile(self) -> str | None:
        server = self.token.server.htpasswd if self.token is not None else None
        return server or (self.htpasswd.path if self.htpasswd is not None else None)


class RetentionPolicy(Section):
    repositories: str = "**"
    keep: int | None = Field(default=None, ge=0)
    keepmatch: str | None = None
    match: str | None = None
    olderthan: Duration | None = None
    untagged: bool = False

    @field_validator("keepmatch", "match")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"invalid regular expression {v!r}: {exc}") from None
        return v


class Retention(Section):
    interval: Duration = 0.0  # 0: only on demand (dockyard prune, POST /admin/v1/retention)
    force: bool = False  # allow a policy to delete every tag of a repository
    policies: list[RetentionPolicy] = Field(default_factory=list)


class Quota(Section):
    repositories: str
    limit: Annotated[int, BeforeValidator(parse_size)]


class UI(Section):
    """dockyard's web UI at ``/`` (``dockyard.web``) and its login sessions."""

    enabled: bool = True
    title: str = "dockyard"
    secret: str | None = None  # signs session cookies; default: http.secret, else a key kept in storage
    sessionlifetime: Duration = 12 * 3600.0


class Database(Section):
    """The coordinator's database. Set ``dsn`` (``postgresql://user@host:5432/db``) when several
    machines serve one store; without it, the processes of one machine coordinate through files
    in the store (the filesystem driver) or in memory (the in-memory driver)."""

    dsn: str | None = None


# --- proxy: a pull-through cache of other registries (dockyard.proxy) ------------------------------


class Credentials(Section):
    """How a proxy signs in to its upstream. The secret comes from the configuration itself
    (distribution's ``password``), an environment variable, or a file (a mounted secret); it is
    never logged, and ``repr`` hides it."""

    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    passwordenv: str | None = None
    passwordfile: str | None = None

    def secret(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The password, read now (a rotated file or variable is picked up on the next token)."""
        if self.password is not None:
            return self.password
        if self.passwordenv is not None:
            return (os.environ if environ is None else environ).get(self.passwordenv)
        if self.passwordfile is not None:
            try:
                return Path(self.passwordfile).read_text().strip()
            except OSError:
                return None
        return None


def _remote(v: str) -> str:
    if not v.startswith(("http://", "https://")):
        raise ValueError("remoteurl must be a URL such as https://registry-1.docker.io")
    return v.rstrip("/")


class Upstream(Section):
    """One upstream registry, mirrored under a repository prefix: ``prefix: docker.io`` serves
    ``docker.io/library/nginx`` from ``<remoteurl>/v2/library/nginx``. ``dockerhub`` makes names
    outside every prefix that no hosted repository holds resolve here (docker's
    ``registry-mirrors`` asks for ``library/nginx`` with no host)."""

    prefix: str
    remoteurl: str
    credentials: Credentials = Credentials()
    ttl: Duration = 168 * 3600.0  # distribution's meaning: how long cached content is kept
    revalidate: Duration = 60.0  # how long a cached tag is served before a HEAD asks again
    platforms: list[str] = Field(default_factory=list)  # os/arch[/variant]; empty: all
    dockerhub: bool = False
    timeout: Duration = 30.0  # connect and per-read timeout towards the upstream

    @field_validator("remoteurl")
    @classmethod
    def _url(cls, v: str) -> str:
        return _remote(v)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, v: str) -> str:
        v = v.strip("/")
        if v.endswith("/**"):  # the glob form names the same prefix
            v = v[:-3]
        if not re.fullmatch(r"[a-z0-9]+(?:[._-][a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*", v):
            raise ValueError(f"{v!r} is not a repository prefix such as docker.io or ghcr.io/org")
        return v

    @field_validator("platforms")
    @classmethod
    def _platforms(cls, v: list[str]) -> list[str]:
        for p in v:
            if not re.fullmatch(r"[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?", p):
                raise ValueError(f"{p!r} is not a platform such as linux/amd64 or linux/arm64/v8")
        return v


class Proxy(Section):
    """distribution's ``proxy`` section (``remoteurl``, ``username``, ``password``, ``ttl``: the
    whole registry mirrors one upstream, and refuses pushes), plus dockyard's ``upstreams``:
    many registries, each under its prefix, beside hosted repositories."""

    remoteurl: str | None = None
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    ttl: Duration = 168 * 3600.0
    revalidate: Duration = 60.0
    upstreams: list[Upstream] = Field(default_factory=list)
    # Where blobs being fetched are spooled, so later requesters on this machine read the bytes
    # received so far (default: a directory under the system's temporary directory).
    spooldirectory: str | None = None

    @field_validator("remoteurl")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        return None if v is None else _remote(v)

    @model_validator(mode="after")
    def _one_form(self) -> Proxy:
        if self.remoteurl is not None and self.upstreams:
            raise ValueError(
                "set either remoteurl (the whole registry mirrors one upstream) or upstreams "
                "(each under its prefix), not both"
            )
        return self

    @field_validator("upstreams")
    @classmethod
    def _distinct(cls, v: list[Upstream]) -> list[Upstream]:
        prefixes = [u.prefix for u in v]
        for a in prefixes:
            for b in prefixes:
                if a != b and b.startswith(a + "/"):
                    raise ValueError(f"prefix {b} lies inside prefix {a}; use one of them")
        if len(set(prefixes)) != len(prefixes):
            raise ValueError("two upstreams have the same prefix")
        if sum(u.dockerhub for u in v) > 1:
            raise ValueError("only one upstream may take unprefixed names (dockerhub: true)")
        return v

    def all_upstreams(self) -> list[Upstream]:
        """Every upstream; distribution's ``remoteurl`` is one with the empty prefix (all names)."""
        if self.remoteurl is None:
            return list(self.upstreams)
        whole = Upstream.model_construct(
            prefix="",
            remoteurl=self.remoteurl,
            credentials=Credentials(username=self.username, password=self.password),
            ttl=self.ttl,
            revalidate=self.revalidate,
            platforms=[],
            dockerhub=False,
            timeout=30.0,
        )
        return [whole]

    @property
    def enabled(self) -> bool:
        return self.remoteurl is not None or bool(self.upstreams)


class EndpointIgnore(Section):
    mediatypes: list[str] = Field(default_factory=list)
    actions: list[Literal["push", "pull", "delete", "mount"]] = Field(default_factory=list)


class Endpoint(Section):
    """One receiver of distribution's notification envelopes (``notifications.endpoints[]``)."""

    name: str
    url: str
    headers: dict[str, list[str]] = Field(default_factory=dict)
    timeout: Duration = 5.0
    # Consecutive failures after which the endpoint is reported failing (logged once, admin API).
    threshold: int = Field(default=5, ge=1)
    backoff: Duration = 1.0  # the first retry's wait; doubled per failure up to maxbackoff
    ignoredmediatypes: list[str] = Field(default_factory=list)
    ignore: EndpointIgnore = EndpointIgnore()
    disabled: bool = False
    secret: str | None = None  # dockyard: signs each body, X-Dockyard-Signature: sha256=<HMAC-SHA256>
    maxbackoff: Duration = 300.0  # dockyard

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", v):
            raise ValueError("an endpoint name is 1-64 letters, digits, '.', '_' or '-'")
        return v

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("an endpoint url starts with http:// or https://")
        return v

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ([x] if isinstance(x, str) else x) for k, x in v.items()}
        return v


class NotificationEvents(Section):
    includereferences: bool = True  # accepted from distribution configurations


class Notifications(Section):
    """Webhooks as distribution sends them, delivered at least once from a durable queue."""

    events: NotificationEvents = NotificationEvents()
    endpoints: list[Endpoint] = Field(default_factory=list)
    # dockyard: events kept waiting per endpoint at most; past it the oldest are dropped (counted
    # and logged), so a receiver that is down for good never fills the disk or blocks a push. The
    # sender holds the waiting events in memory (about 1-2 KiB each).
    maxpending: int = Field(default=10_000, ge=1)

    @field_validator("endpoints")
    @classmethod
    def _unique(cls, v: list[Endpoint]) -> list[Endpoint]:
        names = [e.name for e in v]
        if len(set(names)) != len(names):
            raise ValueError("endpoint names must be unique (each keeps its own queue position)")
        return v


class Audit(Section):
    """dockyard's audit log: who changed what, and who logged in, kept in the store."""

    enabled: bool = False
    retention: Duration = 90 * 24 * 3600.0  # whole days older than this are deleted

    @field_validator("retention")
    @classmethod
    def _retention(cls, v: float) -> float:
        if v < 24 * 3600:
            raise ValueError("the audit retention is at least one day (24h)")
        return v


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

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if str(v) != "0.1":
            raise ValueError("only configuration version 0.1 is known")
        return "0.1"


def split_addr(addr: str) -> tuple[str, int]:
    """``host:port``, ``:port`` or ``[v6]:port`` → (host, port); an empty host means all interfaces."""
    host, sep, port = addr.rpartition(":")
    if not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"{addr!r} is not host:port (e.g. :5000, 127.0.0.1:5000, [::1]:5000)")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (from ``split_addr``) reaches only this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
