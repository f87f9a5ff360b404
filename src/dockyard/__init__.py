"""dockyard: a private OCI / Docker registry, storage-compatible with CNCF distribution."""

__version__ = "0.1.0"
