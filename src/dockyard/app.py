"""``create_app(config)``: every dependency wired explicitly, once per worker process."""

from __future__ import annotations

import json
import os

from starlette.types import ASGIApp

from dockyard import log
from dockyard.api.app import RegistryApp
from dockyard.api.context import Services
from dockyard.auth.access import AllowAll
from dockyard.config import Config
from dockyard.health import HealthApp
from dockyard.storage.drivers import create_driver
from dockyard.storage.registry import Registry

CONFIG_ENV = "DOCKYARD_CONFIG_JSON"


def create_services(config: Config) -> Services:
    name, params = config.storage.driver()
    driver = create_driver(name, params)
    return Services(config=config, driver=driver, registry=Registry(driver), access=AllowAll())


def create_app(config: Config) -> ASGIApp:
    log.configure(config.log)
    services = create_services(config)
    return HealthApp(RegistryApp(services), services)


def app_from_env() -> ASGIApp:
    """Factory for server worker processes: the parent passes the validated config as JSON."""
    config = Config.model_validate(json.loads(os.environ[CONFIG_ENV]))
    return create_app(config)
