# dockyard's container image: `docker build --network host -t dockyard .` from the repository root.
#
# It takes distribution's `registry:2` configuration unchanged: the same config file path
# (/etc/docker/registry/config.yml), the same data volume (/var/lib/registry), the same port (5000)
# and the same REGISTRY_<SECTION>_<KEY> environment overrides, so
#   docker run -d -p 5000:5000 -v "$(pwd)"/data:/var/lib/registry \
#     -e REGISTRY_HTTP_TLS_CERTIFICATE=/certs/domain.crt -e REGISTRY_HTTP_TLS_KEY=/certs/domain.key \
#     -v "$(pwd)"/certs:/certs dockyard
# runs like the guide's registry:2 line. Unlike registry:2 it runs as uid/gid 65532, not root: the
# data directory, certificate and key must be readable (data also writable) by that uid, or pass
# `--user` (README "Deploying" shows both). It runs with `--read-only` given a tmpfs on /tmp
# (Prometheus multiprocess metrics files and Python temporaries; nothing else is written outside
# /var/lib/registry).
#
# BASE_IMAGE: any image with python3 (>= 3.11) and its venv module at the same path in both
# stages; CI builds a Debian bookworm root with mmdebstrap (no Docker Hub there). PIP_ARGS lets
# an offline build install from a wheel directory copied into the context (deploy/image/wheels).
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ARG PIP_ARGS=""
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1
RUN python3 -m venv /opt/dockyard
COPY deploy/image/wheels/ /wheels/
COPY pyproject.toml README.md /src/
# The dependencies first, from pyproject.toml alone (a placeholder package stands in for the
# source), so this layer is rebuilt only when they change. The extras a replica on S3 + PostgreSQL
# needs. Then: drop pip and setuptools (nothing installs at run time), strip the extension modules
# (uvloop's alone goes from 13 to 2 MB; `strip` comes from binutils, installed here with apt when
# the base lacks it), and compile the bytecode now, since a read-only root filesystem would
# otherwise recompile every module at every start.
RUN mkdir -p /src/src/dockyard && touch /src/src/dockyard/__init__.py \
 && /opt/dockyard/bin/pip install --find-links /wheels ${PIP_ARGS} "/src[postgres,s3]" \
 && /opt/dockyard/bin/pip uninstall -q -y dockyard setuptools \
 && (command -v strip >/dev/null || { apt-get update -qq && apt-get install -y -qq --no-install-recommends binutils; }) \
 && find /opt/dockyard -name '*.so*' -type f -exec strip --strip-unneeded {} + \
 && find /opt/dockyard -name '__pycache__' -prune -exec rm -rf {} + \
 && /opt/dockyard/bin/python3 -m compileall -q -j 0 /opt/dockyard/lib \
 && rm -rf /src/src /src/build
COPY src/ /src/src/
RUN /opt/dockyard/bin/pip install --no-deps --find-links /wheels ${PIP_ARGS} /src \
 && /opt/dockyard/bin/python3 -m pip uninstall -q -y pip \
 && /opt/dockyard/bin/python3 -m compileall -q -j 0 /opt/dockyard/lib/python3*/site-packages/dockyard

FROM ${BASE_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/dockyard-registry/dockyard
LABEL org.opencontainers.image.title="dockyard" \
      org.opencontainers.image.description="A private OCI / Docker container image registry" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
COPY --from=build /opt/dockyard /opt/dockyard
COPY deploy/image/config.yml /etc/docker/registry/config.yml
# uid/gid 65532 owns the data directory; /var/lib/registry is also the working directory, so the
# relative default paths of the token server's keys and robot accounts land in the volume.
RUN install -d -o 65532 -g 65532 -m 0750 /var/lib/registry
ENV PATH=/opt/dockyard/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /var/lib/registry
VOLUME ["/var/lib/registry"]
EXPOSE 5000
# Reads the same configuration (file + REGISTRY_* environment) and asks GET /health on http.addr
# (over TLS when http.tls is set): storage and coordinator reachable.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["dockyard", "health"]
ENTRYPOINT ["dockyard", "serve"]
CMD ["/etc/docker/registry/config.yml"]
