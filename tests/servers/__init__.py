"""Real infrastructure servers the tests start themselves (S3 engines), stopped by process id."""
