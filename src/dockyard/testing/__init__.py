"""Test support shipped with the package (the storage driver conformance suite)."""
