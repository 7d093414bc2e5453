# syntax=docker/dockerfile:1.7
# supportgate: the service, run by Granian, with its store from SUPPORTGATE_REDIS_URL.

FROM python:3.11-slim AS build
RUN pip install --no-cache-dir uv
WORKDIR /app
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
COPY pyproject.toml uv.lock README.md ./
# A uv workspace: the members' project files are needed to resolve the dependencies, their code is not.
COPY packages/supportgate-verify/pyproject.toml packages/supportgate-verify/README.md ./packages/supportgate-verify/
RUN uv sync --frozen --no-dev --no-install-workspace
COPY src ./src
COPY packages ./packages
# Not editable: the run stage takes /opt/venv alone, without /app.
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim AS run
RUN useradd --system --uid 10001 --home-dir /var/lib/supportgate --create-home supportgate
COPY --from=build /opt/venv /opt/venv
# The extension's source: the service builds the install page's packages from it for its public URL.
COPY extension/manifest.chromium.json extension/manifest.firefox.json /opt/supportgate/extension/
COPY extension/src /opt/supportgate/extension/src
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SUPPORTGATE_DATA_DIR=/var/lib/supportgate \
    SUPPORTGATE_EXTENSION_SOURCE=/opt/supportgate/extension
USER supportgate
WORKDIR /var/lib/supportgate
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
# Set SUPPORTGATE_REDIS_URL to your Redis/Valkey; without it the embedded store runs in the data dir.
# Set SUPPORTGATE_MASTER_KEY too; without it the key that seals the store's secrets is made in the data dir.
CMD ["supportgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
