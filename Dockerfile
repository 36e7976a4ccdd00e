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
RUN pip install . \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin haven \
    && mkdir /data \
    && chown haven:haven /data

# Not root: Haven needs no privilege, only its working directory (the SQLite file when DATABASE_URL
# is not set, and Discord's command-sync fingerprint).
USER haven
WORKDIR /data
ENV DATABASE_URL=sqlite:////data/haven.db \
    PORT=3000
EXPOSE 3000

# /healthz answers on the ops port (HAVEN_OPS_PORT), else on PORT (Slack's HTTP mode).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('HAVEN_OPS_PORT') or os.environ.get('PORT', '3000'); urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=4)"]

CMD ["haven", "run"]
