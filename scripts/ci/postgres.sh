#!/usr/bin/env bash
# CI: make sure the PostgreSQL server binaries are installed. The tests start (and stop) their own
# throwaway cluster in a temp folder as `nobody` (tests/_postgres.py); nothing runs as a service.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "PostgreSQL binaries missing and not root: install them with 'apt-get install postgresql'" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
ls /usr/lib/postgresql/*/bin/initdb >/dev/null
