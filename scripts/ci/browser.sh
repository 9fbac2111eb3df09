#!/usr/bin/env bash
# What the viewer's browser tests (tests/browser) need: Debian's chromium and the test host's npm
# packages (locked in tests/browser/package-lock.json). Browsers downloaded by npm packages are
# unreachable in CI, so the driver (playwright-core) runs /usr/bin/chromium.
# Fails loudly: a CI run without a browser must not pass by skipping.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x /usr/bin/chromium ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
/usr/bin/chromium --version
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node --version
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
