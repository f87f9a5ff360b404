"""Authentication and authorization behind the :class:`AccessController` interface."""
