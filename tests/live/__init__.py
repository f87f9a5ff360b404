"""Live robustness tests: crashes, disk full, TLS, graceful stop, concurrency, slow clients."""
