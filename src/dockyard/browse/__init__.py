"""The read model for people: listings, manifest descriptions and pull times that the Hub API and the
web UI share. It sits below both HTTP surfaces and reads only through the registry model and driver."""
