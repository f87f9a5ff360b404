"""The HTTP API: route table, dispatcher, and one module of handlers per resource."""
