#!/usr/bin/env bash
# Build the container image with Debian's podman and run it the way a host runs it (issue 25 item 4).
#
#   bash scripts/ci/container.sh                 # .ci/run calls it; exits 0 when every check holds
#   RIVYA_CONTAINER_FRESH=1 bash scripts/ci/container.sh    # rebuild the local images from Debian too
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
# 6. compose.yaml: resolved by podman-compose (PyPI), which must also refuse it when a required
#    variable is missing, and its build section gives the very image of step 3.
# 7. The compose stack started: compose.yaml plus scripts/ci/compose/compose.ci.yaml, which swaps
#    the postgres and nginx images for a stand-in built from Debian's packages (same mmdebstrap
#    route and caching as the base), publishes the balancer on loopback, and adds the sandbox as
#    the Rivya API. Through nginx: /readyz, and an MCP session with the token that generates an
#    image and reads it back; the image's bytes are in PostgreSQL. docs/hosting.md says what runs.
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
  podman rm --force --volumes --time 5 "$name" >/dev/null 2>&1 || true
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
HOST_CA=/etc/ssl/certs/ca-certificates.crt
keyring=()
# On a host that is not Debian (an Ubuntu CI runner), apt there does not trust Debian's keys.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] && keyring=(--keyring=/usr/share/keyrings/debian-archive-keyring.gpg)

# rootfs_image NAME PACKAGES [mmdebstrap options…] -- [podman import --change values…]
# Prints the tag of an image made by mmdebstrap (essential variant: no apt; no documentation, manual
# pages or translations, the copyright files kept) and `podman import`. The tag names its contents
# (packages, options, changes, and the files uploaded into it), so a run reuses what an earlier one
# built; RIVYA_CONTAINER_FRESH=1 rebuilds it. Earlier tags of the same name are removed.
rootfs_image() {
  local name=$1 packages=$2
  shift 2
  local options=() changes=()
  while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do options+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  changes=("$@")
  local uploads=() option
  for option in "${options[@]}"; do
    [[ $option == "--customize-hook=upload "* ]] && uploads+=("$(echo "$option" | awk '{print $2}')")
  done
  local id
  id=$({ echo "$SUITE $packages v2 ${options[*]} ${changes[*]}"; cat "${uploads[@]}" </dev/null; } | sha256sum | cut -c1-12)
  local tag="localhost/$name:$SUITE-$id"
  if [ -n "${RIVYA_CONTAINER_FRESH:-}" ] || ! podman image exists "$tag"; then
    say "building $tag with mmdebstrap ($SUITE: $packages)" >&2
    local import=()
    for option in "${changes[@]}"; do import+=(--change "$option"); done
    mmdebstrap --quiet --variant=essential --include="$packages" "${keyring[@]}" \
      --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      "${options[@]}" "$SUITE" "$work/$name.tar" >&2
    podman import --quiet "${import[@]}" "$work/$name.tar" "$tag" >/dev/null
    rm -f "$work/$name.tar"
    podman images --format '{{.Repository}}:{{.Tag}}' | grep "^localhost/$name:" | grep -vxF "$tag" \
      | xargs -r podman rmi >/dev/null 2>&1 || true
  else
    say "reusing $tag (RIVYA_CONTAINER_FRESH=1 rebuilds it)" >&2
  fi
  echo "$tag"
}

# The base trusts what this machine trusts, so pip in the build reaches PyPI through the same
# TLS-inspecting proxy the host may sit behind. passwd: the Dockerfile's useradd.
BASE_TAG=$(rootfs_image rivya-mcp-base python3,python3-venv,ca-certificates,passwd \
  "--customize-hook=upload $HOST_CA /etc/ssl/certs/ca-certificates.crt" \
  -- 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' 'CMD ["python3"]')

# The stand-ins for compose.yaml's postgres and nginx images (step 7), one image with both, made
# in the background while the server's image is built and checked.
rootfs_image rivya-ci-services postgresql,nginx-light \
  '--customize-hook=rm -rf "$1"/etc/postgresql/*/main "$1"/var/lib/postgresql/*/main' \
  "--customize-hook=upload scripts/ci/compose/postgres-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" \
  '--customize-hook=chmod 755 "$1/usr/local/bin/docker-entrypoint.sh"' \
  -- 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' >"$work/services.tag" 2>"$work/services.log" &
services_job=$!

# --- 3. the image --------------------------------------------------------------------------------
IMAGE=localhost/rivya-mcp:ci
say "podman build --build-arg BASE=$BASE_TAG -t $IMAGE ."
previous=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
# --format docker keeps the HEALTHCHECK (the OCI image format has no field for it).
podman build --quiet --pull=never --format docker --build-arg "BASE=$BASE_TAG" --tag "$IMAGE" . >/dev/null
if [ -n "$previous" ] && [ "$previous" != "$(podman image inspect --format '{{.Id}}' "$IMAGE")" ]; then
  podman rmi "$previous" >/dev/null 2>&1 || true  # the last run's image, untagged by this build
fi
# The build stage's newest image is the layer cache of the next build; older ones only take space.
podman images --quiet --filter dangling=true --filter label=io.github.rivya-mcp.stage=build --sort created \
  | tail -n +2 | xargs -r podman rmi >/dev/null 2>&1 || true
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

# --- 7. the compose stack ------------------------------------------------------------------------
wait "$services_job" || { cat "$work/services.log" >&2; echo "container: the stand-in image failed" >&2; exit 1; }
cat "$work/services.log" >&2
SERVICES_TAG=$(cat "$work/services.tag")
balancer_port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
stack_token=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
stack_env=(
  RIVYA_API_KEY=rvya_sk_compose_stack_check
  "RIVYA_MCP_AUTH_TOKEN=$stack_token"
  "POSTGRES_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(16))')"
  "RIVYA_CI_SERVICES_IMAGE=$SERVICES_TAG"
)
printf 'services:\n  balancer:\n    ports: !override\n      - "127.0.0.1:%s:8080"\n' "$balancer_port" >"$work/compose.port.yaml"
stack=(env "${stack_env[@]}" "$tools/bin/podman-compose" --project-name rivya-mcp-stack
  -f compose.yaml -f scripts/ci/compose/compose.ci.yaml -f "$work/compose.port.yaml")
stack_down() {
  # The containers with their anonymous volumes (the image declares two), then the network and pgdata.
  podman ps --all --quiet --filter label=io.podman.compose.project=rivya-mcp-stack \
    | xargs -r podman rm --force --volumes --time 5 >/dev/null 2>&1 || true
  "${stack[@]}" down --volumes --timeout 5 >/dev/null 2>&1 || true
}
cleanup_stack() { stack_down; cleanup; }
trap cleanup_stack EXIT
stack_down  # whatever an interrupted run left
say "compose up: postgres and nginx ($SERVICES_TAG), the sandbox, two replicas; nginx on 127.0.0.1:$balancer_port"
"${stack[@]}" up --detach postgres >"$work/stack.log" 2>&1 || { cat "$work/stack.log" >&2; exit 1; }
# podman 4.3 has no health timers here and podman-compose skips service_healthy below podman 4.6:
# the healthcheck of compose.yaml is run by hand until it passes, then the rest starts.
for attempt in $(seq 1 60); do
  podman healthcheck run rivya-mcp-stack_postgres_1 >/dev/null 2>&1 && break
  [ "$attempt" -eq 60 ] && { podman logs rivya-mcp-stack_postgres_1 >&2; echo "container check failed: postgres never healthy" >&2; exit 1; }
  sleep 1
done
echo "ok   postgres passes compose.yaml's healthcheck (pg_isready)"
"${stack[@]}" up --detach >>"$work/stack.log" 2>&1 || { cat "$work/stack.log" >&2; exit 1; }
stack_url="http://127.0.0.1:$balancer_port"
for attempt in $(seq 1 120); do
  "$PY" -c "import urllib.request; urllib.request.urlopen('$stack_url/readyz', timeout=2)" 2>/dev/null && break
  if [ "$attempt" -eq 120 ]; then
    for service in replica-1 replica-2 balancer; do podman logs "rivya-mcp-stack_${service}_1" 2>&1 | tail -20 >&2; done
    echo "container check failed: the stack never answered /readyz through nginx" >&2
    exit 1
  fi
  sleep 0.5
done
echo "ok   /readyz through nginx: a replica reaches PostgreSQL"
.venv/bin/python scripts/ci/container_session.py "$stack_url" "$stack_token"
images=$(podman exec rivya-mcp-stack_postgres_1 psql --username=rivya --dbname=rivya --tuples-only --no-align \
  --command='SELECT count(*) FROM images')
[ "$images" -ge 1 ] || { echo "container check failed: no image in PostgreSQL" >&2; exit 1; }
echo "ok   the image's bytes are in PostgreSQL ($images row), where every replica reads them"
for service in replica-1 replica-2; do
  [ "$(podman inspect --format '{{.State.Running}}' "rivya-mcp-stack_${service}_1")" = "true" ] \
    || { echo "container check failed: $service is not running" >&2; exit 1; }
done
echo "ok   both replicas are running"
stack_down
say "done"
