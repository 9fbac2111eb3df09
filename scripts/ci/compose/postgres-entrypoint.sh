#!/bin/sh
# The entrypoint of the stand-in for the official postgres image that scripts/ci/container.sh builds
# from Debian's postgresql package (our machines cannot pull images). It reads what compose.yaml
# gives that image (POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB; data in /var/lib/postgresql/data),
# creates the cluster on first start, and runs the server as the postgres user.
set -eu
PGDATA=/var/lib/postgresql/data
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  # UTF-8 as in the official image: a minimal system has no locale, and initdb would then pick
  # SQL_ASCII, for which psycopg hands text back as bytes.
  as_postgres "$BIN/initdb" --pgdata="$PGDATA" --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --encoding=UTF8 --locale=C.UTF-8 --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  as_postgres "$BIN/pg_ctl" --pgdata="$PGDATA" --wait --silent --options="-c listen_addresses=''" start
  as_postgres "$BIN/psql" --quiet --username="$POSTGRES_USER" --dbname=postgres \
    --command="CREATE DATABASE \"${POSTGRES_DB:-$POSTGRES_USER}\""
  as_postgres "$BIN/pg_ctl" --pgdata="$PGDATA" --wait --silent stop
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA"
