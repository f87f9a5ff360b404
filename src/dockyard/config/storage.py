"""The ``storage`` section (one driver's parameters, deletes, maintenance) and ``health``."""

from __future__ import annotations

from typing import Any, Literal

from dockyard.config.base import ConfigError, Duration, Section


class DriverSection(Section):
    """A storage driver's parameters: the ``storage`` key holding one names the driver
    (``dockyard.storage.drivers.DRIVERS`` maps the same names to the classes)."""


class Filesystem(DriverSection):
    rootdirectory: str = "./registry-data"
    maxthreads: int = 100
    fsync: bool = True
    # stat and reads up to 4 KiB on the event loop; auto: unless the root is on NFS, CIFS, FUSE...
    inlinemetadata: bool | Literal["auto"] = "auto"


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
    # distribution's default: a blob GET from a store that signs URLs (S3) answers 307 with a
    # presigned URL for ``regionendpoint``, which clients must reach; ``true`` streams it through
    # the registry instead. A filesystem or in-memory store has no URLs: no effect there.
    disable: bool = False


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
