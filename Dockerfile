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
RUN pip install . \
    && useradd --system --create-home --home-dir /home/sanitel sanitel \
    && mkdir -p /app/sanitel-data \
    && chown sanitel /app/sanitel-data

# config/ is mounted at /app/config by compose; relative paths in it resolve from /app.
USER sanitel
ENTRYPOINT ["sanitel"]
CMD ["--help"]
