"""dockyard's web UI: server-rendered pages at ``/`` over the same store and access rules."""
