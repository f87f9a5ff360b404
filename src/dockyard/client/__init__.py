"""A client of other registries, shared by the command line (admin over HTTP) and the pull-through
cache (``dockyard.proxy``): how to answer a registry's Basic and Bearer challenges."""

from dockyard.client.auth import RegistryAuth, challenge_params

__all__ = ["RegistryAuth", "challenge_params"]
