"""The configuration: one pydantic-settings model (SPEC section 7).

Sources, strongest first: the environment (`SANITEL_<SECTION>__<KEY>`), the YAML
file given with `--config`, the defaults below. A bad value raises `ConfigError`
naming the key, never echoing a secret.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

#: The checkout's `config/`: the shipped registry and rules are the defaults.
SHIPPED_CONFIG = Path(__file__).resolve().parent.parent / "config"

Port = Annotated[int, Field(ge=1, le=65535)]


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


def city_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Asia/Shanghai); ValueError saying what is accepted."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r:.60}; an IANA name such as UTC or "
                         "Asia/Shanghai") from None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MqttSettings(_Section):
    host: str = "localhost"
    port: Port = 1883
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    tls_insecure: bool = False
    #: Fixed id: the broker keeps the persistent session (and our unacked readings) under it.
    client_id: str = Field(default_factory=lambda: f"sanitel-ingest-{socket.gethostname()}")
    #: Join `$share/<group>/...` so several `sanitel ingest` processes split the load.
    shared_group: str | None = None
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    #: How long the broker keeps our session while we are away.
    session_expiry_s: Annotated[int, Field(ge=60)] = 7 * 24 * 3600
    #: Unacknowledged QoS 1 messages the broker may have in flight to us (MQTT 5 Receive Maximum).
    receive_maximum: Annotated[int, Field(ge=100, le=65535)] = 50_000
    #: Our own QoS 1 publishes (dead letters, alert events) paho may hold until the broker
    #: takes them; beyond it a rejected message stays unacknowledged (the broker keeps it)
    #: and an alert event stays in the outbox, published again once there is room.
    max_queued_publishes: Annotated[int, Field(ge=100)] = 20_000
    reconnect_min_s: Annotated[float, Field(gt=0)] = 0.5
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0


class InfluxSettings(_Section):
    api: Literal["v1", "v2"] = "v1"
    url: str = "http://localhost:8086"
    database: str = "sanitation"
    org: str = "sanitation"
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    #: Points per write, and the longest a point waits for its batch.
    batch_size: Annotated[int, Field(ge=1, le=100_000)] = 5_000
    #: The most bytes one write carries (InfluxDB's `max-body-size`, a proxy's limit):
    #: a batch is written in as many requests as it takes. A 413 lowers it further.
    max_body_bytes: Annotated[int, Field(ge=1024)] = 5_000_000
    flush_interval_ms: Annotated[int, Field(ge=1, le=60_000)] = 200
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0
    #: Create the database on start (v1 API) when it is missing.
    create_database: bool = True
    #: An InfluxDB admin, for `sanitel influx setup` (users, retention policies); env only.
    admin_username: str | None = None
    admin_password: SecretStr | None = None
    #: The read-only user (Grafana's datasource; ingest's rollup task reads with it).
    #: Unset: `sanitel influx setup` generates its password into `<data_dir>/influx-users.csv`.
    read_username: str | None = None
    read_password: SecretStr | None = None


class SpoolSettings(_Section):
    #: Where readings wait while InfluxDB is away; default `<data_dir>/spool`.
    dir: Path | None = None
    max_bytes: Annotated[int, Field(ge=1024)] = 1 << 30
    retry_min_s: Annotated[float, Field(gt=0)] = 0.5
    retry_max_s: Annotated[float, Field(gt=0)] = 30.0


class WebhookSettings(_Section):
    urls: list[str] = Field(default_factory=list)
    timeout_s: Annotated[float, Field(gt=0)] = 5.0
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 8
    backoff_max_s: Annotated[float, Field(gt=0)] = 300.0


class AlertmanagerSettings(_Section):
    """Prometheus Alertmanager (SPEC section 11): off while `urls` is empty."""

    #: Base URLs (`http://am:9093`); an HA pair: both, every alert goes to each.
    urls: list[str] = Field(default_factory=list)
    #: Active incidents are POSTed again this often (Alertmanager forgets unrepeated ones).
    resend_s: Annotated[float, Field(ge=1, le=3600)] = 60.0
    timeout_s: Annotated[float, Field(gt=0, le=300)] = 5.0
    #: An acknowledgement's silence ends this far ahead, and is extended while it lasts.
    silence_s: Annotated[float, Field(ge=60)] = 3600.0

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        return [_http_url(url, "http://am-1:9093") for url in urls]


class GrafanaSettings(_Section):
    """Where the `dashboard` link of an alert points (SPEC section 11)."""

    #: Grafana's base URL as crews open it (`https://grafana.city.example`); None: no link.
    url: str | None = None
    #: site_kind -> uid of the dashboard a site's alerts link to (the uids `sanitel
    #: dashboards export` writes; ingest does not import `dashboards`, so they are named here).
    site_dashboards: dict[str, str] = Field(default_factory=lambda: {
        "toilet": "sanitel-public-toilets", "transfer_station": "sanitel-transfer-stations"})

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        return None if url is None else _http_url(url, "https://grafana.city.example")


def _http_url(url: str, example: str) -> str:
    if not re.match(r"^https?://[^/\s]+", url):
        raise ValueError(f"{url!r} is not an http:// or https:// URL, e.g. {example}")
    return url


class PipelineSettings(_Section):
    instance: str = Field(default_factory=socket.gethostname)
    #: all: one instance does everything. Scaled out: several `store` instances in one
    #: `mqtt.shared_group` split the readings (store, dead-letter), and one `alerts`
    #: instance, outside the group, sees every reading and keeps the incidents.
    role: Literal["all", "store", "alerts"] = "all"
    stats_interval_s: Annotated[float, Field(gt=0)] = 10.0
    #: Readings further ahead of our clock than this are rejected as `clock_skew`.
    max_future_s: Annotated[float, Field(ge=0)] = 300.0
    #: Batches waiting for the writer; the receive side pauses beyond it.
    max_pending_batches: Annotated[int, Field(ge=1)] = 8
    shutdown_timeout_s: Annotated[float, Field(gt=0)] = 30.0


class RetentionSettings(_Section):
    """Retention policies and hourly rollups (SPEC section 9)."""

    #: Readings kept in the `raw` retention policy (the database's default).
    raw_days: Annotated[int, Field(ge=1)] = 90
    #: Hourly rollups kept in the `rollup` retention policy.
    rollup_days: Annotated[int, Field(ge=1)] = 1825
    #: Readings up to this late are folded into the rollups.
    late_days: Annotated[int, Field(ge=0)] = 7
    #: `sanitel ingest` recomputes the hours its writes touched this often (<= 60: SPEC).
    rollup_every_s: Annotated[float, Field(gt=0, le=60)] = 20.0
    #: And, this often, the last two hours whoever wrote them (other writers, restarts).
    catchup_every_s: Annotated[float, Field(gt=0)] = 3600.0
    #: Keep the rollups from inside `sanitel ingest` (off: another instance does).
    rollups: bool = True
    #: Run `sanitel influx setup` at `sanitel ingest` start (skipped, said once, without rights).
    setup_on_start: bool = True
class HttpSettings(_Section):
    """Health, readiness and Prometheus metrics (SPEC section 10)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    #: 0: any free port (the bound one is logged).
    port: Annotated[int, Field(ge=0, le=65535)] = 9108


class LogSettings(_Section):
    #: text: one human line per event; json: one JSON object per line (Loki, Elasticsearch).
    format: Literal["text", "json"] = "text"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class AccessSettings(_Section):
    #: The broker enforces the accounts of `sanitel access init` (SPEC section 8): acks
    #: are taken only from `sanitation/v1/_ack/{crew}`, not from the v1 topic `.../_ack`.
    enabled: bool = False
    #: `credentials.csv` of `sanitel access init`: ingest connects as its `ingest` row when
    #: mqtt.username is unset; `sanitel alerts ack --crew NAME` as that crew's row.
    credentials: Path | None = None


class AlertOutboxSettings(_Section):
    #: Alert events not yet confirmed delivered are kept (and published again) at most this
    #: many, and this long; beyond, the oldest are dropped and it is logged.
    max_events: Annotated[int, Field(ge=100)] = 100_000
    max_age_s: Annotated[float, Field(gt=0)] = 7 * 86_400.0


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SANITEL_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    #: The YAML file read by `load`; set per call, not a setting itself.
    _yaml_file: ClassVar[Path | None] = None

    registry: Path = SHIPPED_CONFIG / "registry.yaml"
    alerts: Path = SHIPPED_CONFIG / "alerts.yaml"
    #: Crews and their districts (SPEC section 8): who may acknowledge which alerts.
    crews: Path = SHIPPED_CONFIG / "crews.yaml"
    data_dir: Path = Path("sanitel-data")
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    influx: InfluxSettings = Field(default_factory=InfluxSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    alertmanager: AlertmanagerSettings = Field(default_factory=AlertmanagerSettings)
    grafana: GrafanaSettings = Field(default_factory=GrafanaSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    #: The city's time zone (IANA name): sites' `open_hours` and report dates are in it.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        city_zone(value)
        return value

    @property
    def zone(self) -> ZoneInfo:
        return city_zone(self.timezone)
    http: HttpSettings = Field(default_factory=HttpSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    access: AccessSettings = Field(default_factory=AccessSettings)
    alert_outbox: AlertOutboxSettings = Field(default_factory=AlertOutboxSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _YamlSource(settings_cls, cls._yaml_file)

    @property
    def spool_dir(self) -> Path:
        return self.spool.dir or self.data_dir / "spool"

    @property
    def state_dir(self) -> Path:
        return self.data_dir / "state"


class _YamlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self._data = _read_yaml(path) if path else {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: expected a mapping of sections at the top")
    return data


def load(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Read the configuration; raise `ConfigError` naming the first bad keys."""
    Settings._yaml_file = config_file
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    except SettingsError as exc:  # an environment value that should be JSON and is not
        match = re.search(r'field "(\w+)"', str(exc))
        key = match.group(1) if match else "?"
        raise ConfigError(
            f"bad configuration:\n  configuration key {key} (env SANITEL_{key.upper()} or "
            f"SANITEL_{key.upper()}__<KEY>): {exc}; a list or section given whole in the "
            'environment must be JSON, e.g. SANITEL_WEBHOOKS__URLS=\'["https://..."]\''
        ) from None
    finally:
        Settings._yaml_file = None


def _describe(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        key = ".".join(loc) or "(top level)"
        env = "SANITEL_" + "__".join(part.upper() for part in loc)
        secret = any(word in key.lower() for word in ("password", "token", "secret"))
        shown = "" if secret or error["type"] == "missing" else f" (got {error['input']!r:.60})"
        lines.append(f"configuration key {key} (env {env}): {error['msg']}{shown}")
    return "bad configuration:\n  " + "\n  ".join(lines)


def redacted(settings: Settings) -> dict[str, Any]:
    """The settings as a dict with every secret replaced, for logs and `--show-config`."""
    return settings.model_dump(mode="json")  # SecretStr dumps as '**********'
