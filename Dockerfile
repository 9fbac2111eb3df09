# rivya-mcp as a hosted Streamable HTTP server (see docs/hosting.md).
#   docker build -t rivya-mcp .          (or: podman build --format docker -t rivya-mcp .)
# Run several behind a load balancer with compose.yaml. scripts/ci/container.sh builds and runs
# this file with podman on every CI run.
#
# BASE is any Debian-like image with python3 (3.11 or newer), its venv module and useradd. The default is
# the public Python image; scripts/ci/container.sh passes one it builds from Debian's packages,
# because CI machines cannot pull from a container registry.
ARG BASE=python:3.12-slim

# --- build: the package and its dependencies in a venv; only the venv goes into the image ----------
FROM ${BASE} AS build
# Lets scripts/ci/container.sh tell this stage's images (its layer cache) from others when it prunes.
LABEL io.github.rivya-mcp.stage="build"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md LICENSE ./
COPY src ./src
COPY manifests/models ./manifests/models
# The pip cache survives between builds on the same machine (BuildKit and buildah both keep it).
# pip and setuptools leave the venv afterwards: nothing installs into the running image.
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -m venv /opt/rivya-mcp \
    && /opt/rivya-mcp/bin/pip install ".[postgres]" \
    && /opt/rivya-mcp/bin/pip uninstall --quiet --yes setuptools pip

# --- runtime ---------------------------------------------------------------------------------------
FROM ${BASE}
COPY --from=build /opt/rivya-mcp /opt/rivya-mcp
# Never root. The image writes only to its output folder (a cache: with RIVYA_DATABASE_URL the
# bytes live in PostgreSQL) and its data folder (the SQLite journal when there is no database), so
# it runs with a read-only root filesystem and those two as volumes.
RUN useradd --uid 10001 --user-group --home-dir /var/lib/rivya --no-create-home --shell /usr/sbin/nologin rivya \
    && mkdir -p /var/lib/rivya/out /var/lib/rivya/data \
    && chown -R rivya:rivya /var/lib/rivya
VOLUME ["/var/lib/rivya/out", "/var/lib/rivya/data"]
USER 10001:10001
ENV PATH=/opt/rivya-mcp/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOME=/var/lib/rivya RIVYA_OUTPUT_DIR=/var/lib/rivya/out RIVYA_DATA_DIR=/var/lib/rivya/data \
    RIVYA_LOG_FORMAT=json

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD ["python3", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# A public bind needs a bearer token (RIVYA_MCP_AUTH_TOKEN); the server refuses to start without one.
CMD ["rivya-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
