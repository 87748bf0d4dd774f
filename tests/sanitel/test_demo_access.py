"""`sanitel demo` runs with access control on (SPEC section 8): its broker refuses
anonymous clients, ingest and the simulator use their accounts, the secrets stay in the
demo's folder (0600) and out of every log and of the terminal."""

from __future__ import annotations

import signal
import stat
import sys
import time
from pathlib import Path

import httpx
import yaml

from devices.credentials import read_credentials

sys.path.insert(0, str(Path(__file__).resolve().parent))
from access_broker import NOT_AUTHORIZED, Client, connect_as
from test_demo import demo, points


def test_demo_runs_with_access_control_on(tmp_path: Path) -> None:
    directory = tmp_path / "sanitel-demo"
    proc = demo(directory, "--sites", "6")
    try:
        stored, deadline = 0, time.monotonic() + 40
        while time.monotonic() < deadline and stored == 0:
            time.sleep(0.5)
            config = directory / "sanitel.yaml"
            if config.exists():
                try:
                    stored = points(yaml.safe_load(config.read_text())["influx"]["url"])
                except httpx.HTTPError:
                    stored = 0
        assert stored > 0, "no reading reached InfluxDB within 40 s"
        settings = yaml.safe_load((directory / "sanitel.yaml").read_text())
        port = settings["mqtt"]["port"]
        assert settings["access"]["enabled"] is True
        assert Client(port).connack == NOT_AUTHORIZED
        accounts = read_credentials(directory / "access" / "credentials.csv")
        # A site gateway's account (the simulator runs per device: it is free) spoofing a
        # device of another site.
        gateway = next(a for a in accounts if a.role == "gateway")
        spoofer = connect_as(port, gateway)
        other = next(a for a in accounts if a.role == "device" and a.site_id != gateway.site_id)
        topic = f"sanitation/v1/{other.site_id}/odor/{other.device_id}/telemetry"
        assert spoofer.publish(topic, b'{"nh3_ppm": 99}') == NOT_AUTHORIZED
        spoofer.close()
    finally:
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, output
    access = directory / "access"
    for name in ("passwd", "credentials.csv", "acl"):
        assert stat.S_IMODE((access / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(access.stat().st_mode) == 0o700
    # rich wraps long paths anywhere: compare without whitespace
    assert f"{access / 'credentials.csv'}(mode0600)" in "".join(output.split())
    logs = output + "".join(p.read_text(errors="replace") for p in directory.rglob("*.log"))
    logs += (directory / "sanitel.yaml").read_text()
    assert [a.username for a in accounts if a.password in logs] == []
    assert "refused the connection" not in logs
