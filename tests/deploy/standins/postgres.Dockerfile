# CI's stand-in for postgres:16 (no Docker Hub here): Debian's PostgreSQL 15 on the services
# image (services.Dockerfile), honouring the official image's POSTGRES_USER / POSTGRES_PASSWORD /
# POSTGRES_DB and data directory, listening on 5432 with password (scram) logins from the network.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
VOLUME ["/var/lib/postgresql/data"]
EXPOSE 5432
ENTRYPOINT ["/bin/sh", "/usr/local/bin/postgres-entrypoint.sh"]
