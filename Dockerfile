# The sanitel image used by compose.yaml: `sanitel ingest`, `sanitel simulate`, ...
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY devices ./devices
COPY ingest ./ingest
COPY simulators ./simulators
COPY dashboards ./dashboards
COPY sanitel ./sanitel
RUN pip install . \
    && groupadd --system --gid 1883 sanitel \
    && useradd --system --uid 1883 --gid 1883 --create-home --home-dir /home/sanitel sanitel \
    && mkdir -p /app/sanitel-data /access \
    && chown sanitel /app/sanitel-data \
    && chown sanitel:sanitel /access && chmod 700 /access

# uid 1883 is mosquitto's in eclipse-mosquitto: `sanitel access init` writes the broker's
# files (0600) as the broker's user, and ingest and simulate can read credentials.csv.
# config/ is mounted at /app/config by compose; relative paths in it resolve from /app.
USER sanitel
# /healthz, /readyz, /metrics of `sanitel ingest` (http.port); bind 0.0.0.0 to publish it.
EXPOSE 9108
ENTRYPOINT ["sanitel"]
CMD ["--help"]
