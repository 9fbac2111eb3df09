# rivya-mcp as a hosted Streamable HTTP server (see docs/hosting.md).
# Build: docker build -t rivya-mcp .   Run several behind a load balancer with compose.yaml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
COPY manifests ./manifests
RUN pip install ".[postgres]"

# Never root: the image only needs its own output folder (a cache: the bytes live in PostgreSQL).
RUN useradd --system --uid 10001 --home-dir /var/lib/rivya rivya \
    && mkdir -p /var/lib/rivya/out /var/lib/rivya/data && chown -R rivya /var/lib/rivya
USER rivya
ENV RIVYA_OUTPUT_DIR=/var/lib/rivya/out RIVYA_DATA_DIR=/var/lib/rivya/data RIVYA_LOG_FORMAT=json

EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"
# A public bind needs a bearer token (RIVYA_MCP_AUTH_TOKEN); the server refuses to start without one.
CMD ["rivya-mcp", "serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8000"]
