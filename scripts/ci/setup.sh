#!/usr/bin/env bash
# What the test suite needs beside Python, installed where missing (each script checks first):
# Node packages for the Tasks requester and conformance suite (tests/tasks), the PostgreSQL server
# binaries (tests start their own throwaway cluster), Chromium and the browser host (tests/browser).
# Installing OS packages needs root (CI runs as root); elsewhere each script says what to install.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/ci/node.sh
bash scripts/ci/postgres.sh
bash scripts/ci/browser.sh
