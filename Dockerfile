# Haven in a container: `docker compose up` runs it next to PostgreSQL (compose.yaml), or
# `docker build -t haven . && docker run --env-file .env haven`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY storage ./storage
RUN pip install ".[otel]" \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin haven \
    && mkdir /data \
    && chown haven:haven /data

# Not root: Haven needs no privilege, only its working directory (the SQLite file when DATABASE_URL
# is not set).
USER haven
WORKDIR /data
# PORT is Slack's HTTP mode (public); HAVEN_OPS_PORT serves /healthz, /readyz and /metrics in every
# mode (keep it private to the cluster).
ENV DATABASE_URL=sqlite:////data/haven.db \
    PORT=3000 \
    HAVEN_OPS_PORT=8080
EXPOSE 3000 8080

# /healthz is on the ops port whatever the platform (Socket Mode and Discord have no PORT server).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ.get('HAVEN_OPS_PORT', '8080')}/healthz\", timeout=4)"]

CMD ["haven", "run"]
