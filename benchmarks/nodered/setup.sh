#!/usr/bin/env bash
# Installs Node-RED and node-red-contrib-influxdb for the benchmark's reference row into a
# cache folder (not the repository): ${SANITEL_BENCH_CACHE:-~/.cache/sanitel-bench}/nodered.
# Needs node and npm (Debian: apt-get install nodejs npm). Idempotent; prints the folder.
set -euo pipefail
NODE_RED_VERSION="${NODE_RED_VERSION:-4.1}"          # 4.1 runs on node >= 18; 5.x needs 22.9
INFLUX_NODE_VERSION="${INFLUX_NODE_VERSION:-0.7}"
cache="${SANITEL_BENCH_CACHE:-$HOME/.cache/sanitel-bench}/nodered"
command -v npm >/dev/null || { echo "npm is missing: apt-get install nodejs npm" >&2; exit 2; }
mkdir -p "$cache"
if [ ! -f "$cache/package.json" ]; then
    printf '{"name": "sanitel-bench-nodered", "private": true}\n' >"$cache/package.json"
fi
if [ ! -f "$cache/node_modules/node-red/red.js" ] \
    || [ ! -d "$cache/node_modules/node-red-contrib-influxdb" ]; then
    npm install --prefix "$cache" --no-audit --no-fund --loglevel=error \
        "node-red@~$NODE_RED_VERSION" "node-red-contrib-influxdb@~$INFLUX_NODE_VERSION" >&2
fi
echo "$cache"
