#!/usr/bin/env bash
# Build the container image with Debian's podman and run it the way a host runs it (issue 25 item 4).
#
#   bash scripts/ci/container.sh                 # .ci/run calls it; exits 0 when every check holds
#   RIVYA_CONTAINER_FRESH=1 bash scripts/ci/container.sh    # rebuild the local base image too
#
# 1. podman, runc and mmdebstrap from Debian (apt-get where missing; root, as the other CI scripts).
# 2. A base image from Debian's packages: our machines cannot pull from a container registry, so
#    mmdebstrap makes a minimal Debian with python3, python3-venv and useradd, and `podman import` turns it
#    into the Dockerfile's BASE. It is kept under a tag naming what went into it and reused by the
#    next run on the same machine (RIVYA_CONTAINER_FRESH=1 rebuilds it).
# 3. `podman build` of the Dockerfile with that BASE (the default BASE stays the public Python image).
# 4. The container runs as it would in production plus `--sandbox`: a read-only root filesystem
#    with no tmpfs, the output and data folders as the only writable mounts, a bearer token, the
#    port published on loopback only.
# 5. Checks from inside (the server's user is not root; writes anywhere but the two volumes fail;
#    the image's HEALTHCHECK command passes) and from outside (scripts/ci/container_session.py: /healthz,
#    401 without the token, an MCP session with it that generates an image into the volume); the
#    token never appears in the container's log.
# 6. compose.yaml: parsed and resolved by podman-compose (PyPI), which must also refuse it when a
#    required variable is missing. Its postgres and nginx images cannot be pulled here, so the
#    stack itself is not started (docs/hosting.md says what runs where).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
started=$SECONDS
say() { printf 'container: [%4d s] %s\n' "$((SECONDS - started))" "$*"; }

# --- 1. tools ------------------------------------------------------------------------------------
missing=()
for tool in podman runc mmdebstrap; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "container: ${missing[*]} missing and not root: apt-get install podman runc mmdebstrap" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends podman runc mmdebstrap debian-archive-keyring \
    netavark aardvark-dns iptables conmon >/dev/null
fi
say "$(podman --version), $(runc --version | head -n1), mmdebstrap $(mmdebstrap --version | awk '{print $2}')"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -e .
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/rivya-container.XXXXXX")
name="rivya-mcp-ci-$$"
cleanup() {
  podman rm --force --time 5 "$name" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# Rootful podman without systemd: cgroupfs, runc, and no default ulimits (the VM refuses raising them).
cat >"$work/containers.conf" <<'CONF'
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
CONF
export CONTAINERS_CONF="$work/containers.conf"

# --- 2. the local base image ---------------------------------------------------------------------
SUITE=${RIVYA_BASE_SUITE:-bookworm}
# essential (not minbase): no apt in the image; passwd for the Dockerfile's useradd.
PACKAGES=python3,python3-venv,ca-certificates,passwd
# The base trusts what this machine trusts, so pip in the build reaches PyPI through the same
# TLS-inspecting proxy the host may sit behind. The bundle is part of the tag: a new one, a new base.
HOST_CA=/etc/ssl/certs/ca-certificates.crt
base_id=$(cat "$HOST_CA" - <<<"$SUITE $PACKAGES v1" | sha256sum | cut -c1-12)
BASE_TAG="localhost/rivya-mcp-base:$SUITE-$base_id"
if [ -n "${RIVYA_CONTAINER_FRESH:-}" ] || ! podman image exists "$BASE_TAG"; then
  say "building $BASE_TAG with mmdebstrap ($SUITE: $PACKAGES)"
  # Documentation, manual pages and translations are left out (the copyright files stay).
  keyring=()
  # On a host that is not Debian (an Ubuntu CI runner), apt there does not trust Debian's keys.
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)
  mmdebstrap --quiet --variant=essential --include="$PACKAGES" "${keyring[@]}" \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook="upload $HOST_CA /etc/ssl/certs/ca-certificates.crt" \
    "$SUITE" "$work/base.tar"
  podman import --quiet \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["python3"]' \
    "$work/base.tar" "$BASE_TAG" >/dev/null
  rm -f "$work/base.tar"
  # Earlier bases of ours (another package list or CA bundle) only take space now.
  podman images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/rivya-mcp-base:' | grep -vxF "$BASE_TAG" \
    | xargs -r podman rmi >/dev/null 2>&1 || true
else
  say "reusing $BASE_TAG (RIVYA_CONTAINER_FRESH=1 rebuilds it)"
fi

# --- 3. the image --------------------------------------------------------------------------------
IMAGE=localhost/rivya-mcp:ci
say "podman build --build-arg BASE=$BASE_TAG -t $IMAGE ."
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
podman build --quiet --pull=never --format docker --build-arg "BASE=$BASE_TAG" --tag "$IMAGE" . >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true  # the last run's image, untagged by this build
fi
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
base_size=$(podman image inspect --format '{{.Size}}' "$BASE_TAG")
say "image $IMAGE: $((size / 1000000)) MB (the base: $((base_size / 1000000)) MB)"

# --- 4. run it -----------------------------------------------------------------------------------
out="$work/out"
data="$work/data"
mkdir -p "$out" "$data"
chown 10001:10001 "$out" "$data"
port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RIVYA_MCP_AUTH_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
export RIVYA_MCP_AUTH_TOKEN
say "podman run --read-only on 127.0.0.1:$port (serve --transport http --sandbox)"
podman run --detach --name "$name" \
  --read-only --read-only-tmpfs=false \
  --volume "$out:/var/lib/rivya/out" --volume "$data:/var/lib/rivya/data" \
  --env RIVYA_MCP_AUTH_TOKEN \
  --publish "127.0.0.1:$port:8000" \
  --no-healthcheck \
  "$IMAGE" rivya-mcp serve --transport http --host 0.0.0.0 --port 8000 --sandbox >/dev/null

url="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('$url/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  if [ "$(podman inspect --format '{{.State.Running}}' "$name")" != "true" ]; then
    podman logs "$name" >&2 || true
    echo "container: the server exited" >&2
    exit 1
  fi
  sleep 0.5
done

# --- 5. checks -----------------------------------------------------------------------------------
podman exec --interactive "$name" python3 - <<'PYCHECK'
import errno, os, sys

server_uid = os.stat("/proc/1").st_uid
assert os.getuid() == 10001 and server_uid == 10001, (os.getuid(), server_uid)
print("ok   the server runs as uid 10001 (rivya), not root")
for folder in ("/", "/tmp", "/var/tmp", "/opt/rivya-mcp", "/var/lib/rivya", "/etc"):
    try:
        with open(os.path.join(folder, ".probe"), "w"):
            pass
    except OSError as exc:
        assert exc.errno in (errno.EROFS, errno.EACCES), (folder, exc)
    else:
        sys.exit(f"container check failed: {folder} is writable")
print("ok   /, /tmp, /var/tmp, /opt/rivya-mcp, /var/lib/rivya and /etc are not writable")
for folder in ("/var/lib/rivya/out", "/var/lib/rivya/data"):
    probe = os.path.join(folder, ".probe")
    with open(probe, "w"):
        pass
    os.remove(probe)
print("ok   /var/lib/rivya/out and /var/lib/rivya/data are writable")
PYCHECK
# The image's HEALTHCHECK command, run by hand: podman's own health timers need systemd, which this
# machine does not run (hence --no-healthcheck above).
healthcheck=$(podman image inspect --format '{{json .HealthCheck}}' "$IMAGE")
mapfile -t probe < <("$PY" -c 'import json, sys; test = json.loads(sys.argv[1])["Test"]; assert test[0] == "CMD"; print("\n".join(test[1:]))' "$healthcheck")
if podman exec "$name" "${probe[@]}"; then
  echo "ok   the image's HEALTHCHECK command passes: ${probe[*]:0:2} …"
else
  echo "container check failed: the image's HEALTHCHECK command" >&2
  exit 1
fi
.venv/bin/python scripts/ci/container_session.py "$url" "$RIVYA_MCP_AUTH_TOKEN" "$out"
if [ -f "$data/sandbox/journal.sqlite3" ]; then
  echo "ok   the task journal is in the data volume"
else
  echo "container check failed: no journal in the data volume" >&2
  exit 1
fi
podman logs "$name" >"$work/server.log" 2>&1
if grep -qF "$RIVYA_MCP_AUTH_TOKEN" "$work/server.log"; then
  echo "container check failed: the bearer token is in the container's log" >&2
  exit 1
fi
"$PY" - "$work/server.log" <<'PYLOG'
import json, sys

lines = [line for line in open(sys.argv[1], encoding="utf-8") if line.strip()]
records = [json.loads(line) for line in lines]  # RIVYA_LOG_FORMAT=json: one object per line
assert records and all("level" in r and "message" in r for r in records), lines[:3]
print(f"ok   the log is {len(records)} JSON lines, without the token")
PYLOG
podman stop --time 10 "$name" >/dev/null
say "container checks passed"

# --- 6. compose.yaml -----------------------------------------------------------------------------
tools=.cache/container-tools
if [ ! -x "$tools/bin/podman-compose" ]; then
  "$PY" -m venv "$tools"
  "$tools/bin/python" -m pip install --quiet --disable-pip-version-check 'podman-compose>=1.2,<2'
fi
compose_env=(RIVYA_API_KEY=rvya_sk_compose_check RIVYA_MCP_AUTH_TOKEN=compose-check POSTGRES_PASSWORD=compose-check)
env "${compose_env[@]}" "$tools/bin/podman-compose" -f compose.yaml config >"$work/compose.out"
for service in postgres replica-1 replica-2 balancer; do
  grep -q "^  $service:" "$work/compose.out" || { echo "container check failed: compose has no $service" >&2; exit 1; }
done
if env RIVYA_API_KEY=rvya_sk_compose_check RIVYA_MCP_AUTH_TOKEN=compose-check \
  "$tools/bin/podman-compose" -f compose.yaml config >/dev/null 2>&1; then
  echo "container check failed: compose.yaml ran without POSTGRES_PASSWORD" >&2
  exit 1
fi
# compose's build section is the Dockerfile with the same local base: podman-compose builds it
# (from the layer cache of step 3, so in seconds).
env "${compose_env[@]}" RIVYA_BASE_IMAGE="$BASE_TAG" \
  "$tools/bin/podman-compose" --project-name rivya-mcp-ci -f compose.yaml \
  --podman-build-args="--pull=never --format docker" build replica-1 >"$work/compose-build.out" 2>&1 \
  || { cat "$work/compose-build.out" >&2; echo "container check failed: podman-compose build" >&2; exit 1; }
built=$(podman image inspect --format '{{.Id}}' localhost/rivya-mcp-ci_replica-1)
[ "$built" = "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ] \
  || { echo "container check failed: compose built another image than the Dockerfile" >&2; exit 1; }
podman rmi localhost/rivya-mcp-ci_replica-1 >/dev/null
compose_version=$("$tools/bin/python" -c 'import importlib.metadata as m; print(m.version("podman-compose"))')
echo "ok   compose.yaml resolves and builds with podman-compose $compose_version, and refuses a missing POSTGRES_PASSWORD"
say "done"
