"""Local mosquitto, influxd, victoria-metrics and Alertmanager on free loopback ports.

Used by the tests, the demo and the benchmarks: each server runs from Debian's
package binary, with its own data directory, and stops when its context exits.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

INSTALL_HINT = (
    "install it with: sudo apt-get install -y mosquitto mosquitto-clients influxdb "
    "prometheus-alertmanager (or run .ci/setup, which does that when it is missing)"
)


class ServerError(RuntimeError):
    """A local server could not be started; the message says which and why."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str, *candidates: str) -> str:
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    raise ServerError(f"{name} is not installed; {INSTALL_HINT}")


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"{what} exited at start (code {proc.returncode}); see {log}")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerError(f"{what} did not open {host}:{port} within 30 s; see {log}")


@dataclass
class LocalServer:
    """A server process with its data directory; `start`/`stop` may be repeated (restarts)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    name: str = "server"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> None:
        _wait_port(self.host, self.port, self._running(), self.name, self.log_path)

    @property
    def log_path(self) -> Path:
        return self.data_dir / f"{self.name}.log"

    def _running(self) -> subprocess.Popen[bytes]:
        if self.proc is None:
            raise ServerError(f"{self.name} is not running")
        return self.proc

    def start(self) -> Self:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.ready()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@dataclass
class Mosquitto(LocalServer):
    name: str = "mosquitto"
    #: More configuration lines, e.g. those of `sanitel access init` (access control on).
    extra_conf: str = ""

    def reload(self) -> None:
        """SIGHUP: mosquitto reads its password and ACL files again."""
        self._running().send_signal(signal.SIGHUP)

    def command(self) -> list[str]:
        conf = self.data_dir / "mosquitto.conf"
        anonymous = "" if "allow_anonymous" in self.extra_conf else "allow_anonymous true\n"
        # mosquitto 2.0.11 with an unlimited queue (0) drops a client's connection after
        # refusing it a QoS 1 publish by ACL; with access control on, a bound far above any
        # backlog we hold keeps the client connected (and told "not authorized").
        queued = 10_000_000 if "acl_file" in self.extra_conf else 0
        conf.write_text(
            f"listener {self.port} {self.host}\n"
            f"{anonymous}"
            # Run as whoever started us: as root, mosquitto would otherwise become user
            # `mosquitto` and could not write its persistence file in our data directory.
            f"user {getpass.getuser()}\n"
            "persistence true\n"
            f"persistence_location {self.data_dir}/\n"
            # A persistent session must hold every reading while ingest is away.
            f"max_queued_messages {queued}\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 0\n"
            "set_tcp_nodelay true\n"
            "log_type error\nlog_type warning\n"
            f"{self.extra_conf}"
        )
        return [find_binary("mosquitto", "/usr/sbin/mosquitto"), "-c", str(conf)]


@dataclass
class Influxd(LocalServer):
    name: str = "influxd"
    rpc_port: int = field(default_factory=free_port)
    #: InfluxDB's `[http] max-body-size`: bigger write bodies get HTTP 413 (None: its default).
    max_body_size: int | None = None
    #: `[http] auth-enabled`; `admin` is created at the first start and used by `query`.
    auth_enabled: bool = False
    admin: tuple[str, str] = ("admin", "sanitel-admin")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        d = self.data_dir
        conf = d / "influxdb.conf"
        conf.write_text(
            f'reporting-disabled = true\nbind-address = "{self.host}:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n'
            f'[http]\n  bind-address = "{self.host}:{self.port}"\n  log-enabled = false\n'
            f"  auth-enabled = {'true' if self.auth_enabled else 'false'}\n"
            + (f"  max-body-size = {self.max_body_size}\n" if self.max_body_size else "")
            + '[logging]\n  level = "warn"\n'
            '[continuous_queries]\n  enabled = false\n'
        )
        return [find_binary("influxd", "/usr/bin/influxd"), "run", "-config", str(conf)]

    def ready(self) -> None:
        super().ready()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/ping", timeout=1).status_code == 204:
                    self._create_admin()
                    return
            time.sleep(0.05)
        raise ServerError(f"influxd at {self.url} does not answer /ping; see {self.log_path}")

    def _create_admin(self) -> None:
        """With auth on, the admin user (InfluxDB lets anyone create the first one)."""
        if not self.auth_enabled:
            return
        user, password = self.admin
        statement = f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES"
        # Without credentials: it is allowed only while no user exists (the first start).
        httpx.post(f"{self.url}/query", data={"q": statement}, timeout=30)

    def query(self, q: str, db: str = "sanitation", epoch: str = "ms") -> dict[str, Any]:
        """Run InfluxQL; returns the JSON of /query (raises on an HTTP error)."""
        # InfluxDB 1.x reads `u` and `p` from the URL only, not from a form body.
        auth = {"u": self.admin[0], "p": self.admin[1]} if self.auth_enabled else {}
        response = httpx.post(f"{self.url}/query", params=auth,
                              data={"q": q, "db": db, "epoch": epoch}, timeout=30)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def rows(self, q: str, db: str = "sanitation") -> list[dict[str, Any]]:
        """The rows of the first statement, as dicts (with the series' tags merged in)."""
        out: list[dict[str, Any]] = []
        for statement in self.query(q, db).get("results", []):
            if "error" in statement:
                raise ServerError(f"InfluxQL error for {q!r}: {statement['error']}")
            for series in statement.get("series", []):
                tags = series.get("tags", {})
                for values in series["values"]:
                    out.append({**tags, **dict(zip(series["columns"], values, strict=True))})
        return out


@dataclass
class VictoriaMetrics(LocalServer):
    """Serves the InfluxDB v2 write API (`/api/v2/write`); read back with `/api/v1/export`."""

    name: str = "victoria-metrics"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [
            find_binary("victoria-metrics", "/usr/bin/victoria-metrics"),
            f"-storageDataPath={self.data_dir}/data",
            f"-httpListenAddr={self.host}:{self.port}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching `match` (a series selector), as JSON lines parsed."""
        import json

        httpx.get(f"{self.url}/internal/force_flush", timeout=10)
        response = httpx.get(
            f"{self.url}/api/v1/export", params={"match[]": match}, timeout=30
        )
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]


#: Debian's package of Prometheus Alertmanager (0.25) installs it under this name.
ALERTMANAGER_BINARY = "/usr/bin/prometheus-alertmanager"


@dataclass
class Alertmanager(LocalServer):
    """Prometheus Alertmanager, clustering off; `config` is the text of its alertmanager.yml
    (default: every alert to a receiver that sends nothing)."""

    name: str = "alertmanager"
    config: str = "route:\n  receiver: none\nreceivers:\n  - name: none\n"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.data_dir / "alertmanager.yml"

    def command(self) -> list[str]:
        self.config_path.write_text(self.config)
        return [
            find_binary("prometheus-alertmanager", ALERTMANAGER_BINARY),
            f"--config.file={self.config_path}",
            f"--storage.path={self.data_dir}/data",
            f"--web.listen-address={self.host}:{self.port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ]

    def ready(self) -> None:
        super().ready()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise ServerError(f"alertmanager at {self.url} is not ready; see {self.log_path}")

    def alerts(self, **filters: str) -> list[dict[str, Any]]:
        """GET /api/v2/alerts (active, silenced and inhibited ones; resolved ones are not
        listed by Alertmanager)."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=filters, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def silences(self) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/api/v2/silences", timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result
