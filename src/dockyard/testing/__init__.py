"""Test support shipped with the package: the storage driver and coordinator conformance suites,
a throwaway PostgreSQL, and stopping a server's process group (also used by ``bench``)."""
