#!/bin/sh
# The official postgres image's first-start behaviour, reduced to what compose/ha.yml uses.
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
USER_NAME=${POSTGRES_USER:-postgres}
mkdir -p "$PGDATA" /run/postgresql
chown -R postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "${POSTGRES_PASSWORD:?}" > /run/postgresql/pw
    chown postgres /run/postgresql/pw
    runuser -u postgres -- "$BIN/initdb" -D "$PGDATA" -U "$USER_NAME" --pwfile=/run/postgresql/pw \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm /run/postgresql/pw
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    if [ "${POSTGRES_DB:-$USER_NAME}" != postgres ]; then
        runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
        runuser -u postgres -- psql -h /run/postgresql -U "$USER_NAME" -d postgres -q \
            -c "CREATE DATABASE \"${POSTGRES_DB:-$USER_NAME}\""
        runuser -u postgres -- "$BIN/pg_ctl" -D "$PGDATA" -w stop >/dev/null
    fi
fi
exec runuser -u postgres -- "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' \
    -c unix_socket_directories=/run/postgresql
