"""`ingest/paho_fastpath.py` uses paho-mqtt's private API: run the receive path under every
paho version the pin in pyproject.toml allows (`.ci/setup --test` installs each into
`.venv/paho-versions/<version>`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sanitel.local_servers import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
VERSIONS_DIR = ROOT / ".venv" / "paho-versions"
#: The oldest and newest release that `paho-mqtt>=2.1,<2.3` admits; `.ci/setup` installs these.
PINNED = ["2.1.0", "2.2.0"]


@pytest.mark.parametrize("version", PINNED)
def test_receive_path_under_each_allowed_paho(mosquitto: Mosquitto, version: str) -> None:
    target = VERSIONS_DIR / version
    assert (target / "paho").is_dir(), f"{target} missing: run .ci/setup --test"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("paho_probe.py")), str(mosquitto.port)],
        capture_output=True, text=True, env=env, timeout=120, cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["paho"] == version
    assert seen["first"] == {"received": 140, "payloads_ok": True,
                             "own_publish_acknowledged": True}
    assert seen["redelivered"] == 0, "the batched PUBACKs did not reach the broker"
