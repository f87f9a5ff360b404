"""Storage: a small async driver interface, distribution's on-disk layout, and registry logic above it."""
