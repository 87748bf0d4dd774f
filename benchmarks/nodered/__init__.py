"""Node-RED with node-red-contrib-influxdb, the low-code reference contender.

`benchmarks/nodered/setup.sh` installs Node-RED 4.1 and node-red-contrib-influxdb into a
cache folder (`~/.cache/sanitel-bench/nodered`, never the repository) when `npm` is
there; `flow.json` beside it is the flow: `mqtt in` (QoS 1, persistent MQTT 3.1.1
session, JSON) -> `join` (5,000 messages or 0.2 s) -> `function` (the join's messages as
influx points: measurement of the topic's device type, device_id and site_id tags, the
payload's numbers as fields, so that no bad reading makes a field type conflict that loses a
whole batch; its `ts` in ms) -> `influxdb batch`. No validation.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
SETUP = HERE / "setup.sh"
FLOW = HERE / "flow.json"


class NodeRedUnavailable(RuntimeError):
    """Node-RED cannot be run here; the message says why (no npm, install failed)."""


@dataclass(frozen=True)
class NodeRed:
    home: Path

    @property
    def red_js(self) -> Path:
        return self.home / "node_modules" / "node-red" / "red.js"

    def version(self) -> str:
        package = self.home / "node_modules" / "node-red" / "package.json"
        influx = self.home / "node_modules" / "node-red-contrib-influxdb" / "package.json"
        return (f"Node-RED {json.loads(package.read_text())['version']}, "
                f"node-red-contrib-influxdb {json.loads(influx.read_text())['version']}")

    def command(self, user_dir: Path, ui_port: int) -> list[str]:
        """The command that runs the flow, with a settings file and flow copy in `user_dir`."""
        user_dir.mkdir(parents=True, exist_ok=True)
        flow = user_dir / "flow.json"
        shutil.copyfile(FLOW, flow)
        settings = user_dir / "settings.js"
        settings.write_text(
            "module.exports = {\n"
            f"  uiHost: '127.0.0.1', uiPort: {ui_port}, flowFile: {json.dumps(str(flow))},\n"
            f"  userDir: {json.dumps(str(user_dir))}, nodesDir: "
            f"{json.dumps(str(self.home / 'node_modules'))},\n"
            "  httpAdminRoot: false, httpNodeRoot: false, disableEditor: true,\n"
            "  credentialSecret: false, externalModules: {autoInstall: false},\n"
            "  logging: {console: {level: 'warn', metrics: false, audit: false}},\n"
            "  editorTheme: {projects: {enabled: false}},\n"
            "};\n"
        )
        node = shutil.which("node") or "node"
        return [node, str(self.red_js), "--settings", str(settings), "--userDir",
                str(user_dir)]

    @staticmethod
    def env(mqtt_host: str, mqtt_port: int, client_id: str, influx_host: str,
            influx_port: int, database: str) -> dict[str, str]:
        return {
            "SANITEL_BENCH_MQTT_HOST": mqtt_host, "SANITEL_BENCH_MQTT_PORT": str(mqtt_port),
            "SANITEL_BENCH_CLIENT_ID": client_id, "SANITEL_BENCH_INFLUX_HOST": influx_host,
            "SANITEL_BENCH_INFLUX_PORT": str(influx_port), "SANITEL_BENCH_INFLUX_DB": database,
        }


def install(timeout_s: float = 600) -> NodeRed:
    """Run setup.sh (idempotent: quick when the cache holds it already)."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        raise NodeRedUnavailable("npm/node missing (apt-get install nodejs npm)")
    try:
        done = subprocess.run(["bash", str(SETUP)], capture_output=True, text=True,
                              timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise NodeRedUnavailable(f"{SETUP} did not finish in {timeout_s:.0f} s") from None
    if done.returncode != 0:
        raise NodeRedUnavailable(f"{SETUP} exited {done.returncode}: {done.stderr[-300:]}")
    found = NodeRed(Path(done.stdout.strip().splitlines()[-1]))
    if not found.red_js.exists():
        raise NodeRedUnavailable(f"{found.red_js} missing after {SETUP}")
    return found
