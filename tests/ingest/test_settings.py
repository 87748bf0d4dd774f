"""Configuration (SPEC section 7): defaults < YAML file < environment; a bad value stops
start-up with a ConfigError naming the key and its env var; secrets never shown."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from ingest.settings import SHIPPED_CONFIG, ConfigError, Settings, load, redacted

SECRETS = ("s3cret-token-value", "hunter2-password", "mqtt-pass-xyz")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SANITEL_"):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "sanitel.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def config_error(config_file: Path | None = None, **overrides: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load(config_file, **overrides)
    return str(info.value)


# --- sources -------------------------------------------------------------------------------


def test_defaults() -> None:
    settings = load()
    assert isinstance(settings, Settings)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("localhost", 1883,
                                                                           False)
    assert (settings.influx.api, settings.influx.url) == ("v1", "http://localhost:8086")
    assert (settings.influx.database, settings.influx.org) == ("sanitation", "sanitation")
    assert settings.influx.token is None and settings.influx.password is None
    assert settings.mqtt.password is None
    assert settings.registry == SHIPPED_CONFIG / "registry.yaml" and settings.registry.is_file()
    assert settings.alerts == SHIPPED_CONFIG / "alerts.yaml" and settings.alerts.is_file()
    assert settings.data_dir == Path("sanitel-data")
    assert settings.spool_dir == Path("sanitel-data") / "spool"
    assert settings.state_dir == Path("sanitel-data") / "state"
    assert settings.pipeline.max_future_s == 300.0
    assert settings.webhooks.urls == []


def test_yaml_overrides_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, {
        "registry": str(tmp_path / "city.yaml"),
        "data_dir": str(tmp_path / "data"),
        "mqtt": {"host": "broker.city", "port": 8883, "tls": True},
        "influx": {"api": "v2", "url": "https://influx.city", "database": "sani", "org": "city"},
        "spool": {"dir": str(tmp_path / "sp"), "max_bytes": 2048},
        "webhooks": {"urls": ["http://crew.example/hook"]},
    })
    settings = load(path)
    assert (settings.mqtt.host, settings.mqtt.port, settings.mqtt.tls) == ("broker.city", 8883,
                                                                           True)
    assert settings.mqtt.keepalive_s == 30  # untouched keys keep their defaults
    assert (settings.influx.api, settings.influx.url, settings.influx.database,
            settings.influx.org) == ("v2", "https://influx.city", "sani", "city")
    assert settings.registry == tmp_path / "city.yaml"
    assert settings.spool_dir == tmp_path / "sp" and settings.spool.max_bytes == 2048
    assert settings.state_dir == tmp_path / "data" / "state"
    assert settings.webhooks.urls == ["http://crew.example/hook"]


def test_environment_overrides_yaml_key_by_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, {"mqtt": {"host": "yaml-host", "port": 1884},
                                   "influx": {"database": "yaml-db", "org": "yaml-org"}})
    monkeypatch.setenv("SANITEL_MQTT__PORT", "1999")
    monkeypatch.setenv("SANITEL_INFLUX__DATABASE", "env-db")
    settings = load(path)
    assert (settings.mqtt.host, settings.mqtt.port) == ("yaml-host", 1999)
    assert (settings.influx.database, settings.influx.org) == ("env-db", "yaml-org")


@pytest.mark.parametrize(
    ("name", "value", "attribute", "expected"),
    [
        ("SANITEL_MQTT__HOST", "mq.example", ("mqtt", "host"), "mq.example"),
        ("SANITEL_MQTT__PORT", "65535", ("mqtt", "port"), 65535),
        ("SANITEL_MQTT__PORT", "1", ("mqtt", "port"), 1),
        ("SANITEL_MQTT__TLS", "true", ("mqtt", "tls"), True),
        ("SANITEL_MQTT__USERNAME", "ingest", ("mqtt", "username"), "ingest"),
        ("SANITEL_INFLUX__URL", "http://10.0.0.5:8086", ("influx", "url"), "http://10.0.0.5:8086"),
        ("SANITEL_INFLUX__DATABASE", "city", ("influx", "database"), "city"),
        ("SANITEL_INFLUX__API", "v2", ("influx", "api"), "v2"),
        ("SANITEL_INFLUX__ORG", "cityorg", ("influx", "org"), "cityorg"),
        ("SANITEL_INFLUX__BATCH_SIZE", "1", ("influx", "batch_size"), 1),
        ("SANITEL_SPOOL__MAX_BYTES", "1024", ("spool", "max_bytes"), 1024),
        ("SANITEL_PIPELINE__MAX_FUTURE_S", "0", ("pipeline", "max_future_s"), 0.0),
        ("SANITEL_WEBHOOKS__URLS", '["http://a", "http://b"]', ("webhooks", "urls"),
         ["http://a", "http://b"]),
        ("SANITEL_REGISTRY", "/etc/sanitel/city.yaml", ("registry",),
         Path("/etc/sanitel/city.yaml")),
        ("SANITEL_ALERTS", "/etc/sanitel/rules.yaml", ("alerts",), Path("/etc/sanitel/rules.yaml")),
        ("SANITEL_DATA_DIR", "/var/lib/sanitel", ("data_dir",), Path("/var/lib/sanitel")),
        ("sanitel_mqtt__port", "1777", ("mqtt", "port"), 1777),
    ],
)
def test_every_key_is_overridable_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, attribute: tuple[str, ...],
    expected: Any,
) -> None:
    monkeypatch.setenv(name, value)
    node: Any = load()
    for part in attribute:
        node = getattr(node, part)
    assert node == expected


def test_secrets_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITEL_INFLUX__TOKEN", SECRETS[0])
    monkeypatch.setenv("SANITEL_INFLUX__PASSWORD", SECRETS[1])
    monkeypatch.setenv("SANITEL_MQTT__PASSWORD", SECRETS[2])
    settings = load()
    assert settings.influx.token is not None and settings.influx.password is not None
    assert settings.mqtt.password is not None
    assert settings.influx.token.get_secret_value() == SECRETS[0]
    assert settings.influx.password.get_secret_value() == SECRETS[1]
    assert settings.mqtt.password.get_secret_value() == SECRETS[2]
    shown = f"{redacted(settings)} {settings} {settings!r} {settings.influx!r}"
    assert not any(secret in shown for secret in SECRETS)
    dump = redacted(settings)
    assert dump["influx"]["token"] == dump["influx"]["password"] == "**********"
    assert dump["mqtt"]["password"] == "**********"
    assert dump["mqtt"]["port"] == 1883  # the rest is shown


def test_keyword_overrides_beat_the_environment(monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    monkeypatch.setenv("SANITEL_DATA_DIR", "/from/env")
    assert load(data_dir=tmp_path).data_dir == tmp_path


def test_an_empty_config_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    assert load(path).mqtt.port == 1883


def test_a_failed_load_does_not_leak_its_file_into_the_next(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"mqtt": {"port": 0}})
    config_error(path)
    assert load().mqtt.port == 1883
    assert load(write_config(tmp_path, {"mqtt": {"port": 1234}})).mqtt.port == 1234
    assert load().mqtt.port == 1883


# --- bad values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("SANITEL_MQTT__PORT", "abc", "mqtt.port"),
        ("SANITEL_MQTT__PORT", "0", "mqtt.port"),
        ("SANITEL_MQTT__PORT", "65536", "mqtt.port"),
        ("SANITEL_MQTT__PORT", "1883.5", "mqtt.port"),
        ("SANITEL_MQTT__TLS", "maybe", "mqtt.tls"),
        ("SANITEL_MQTT__KEEPALIVE_S", "4", "mqtt.keepalive_s"),
        ("SANITEL_INFLUX__API", "v3", "influx.api"),
        ("SANITEL_INFLUX__BATCH_SIZE", "0", "influx.batch_size"),
        ("SANITEL_INFLUX__TIMEOUT_S", "0", "influx.timeout_s"),
        ("SANITEL_SPOOL__MAX_BYTES", "1023", "spool.max_bytes"),
        ("SANITEL_PIPELINE__MAX_FUTURE_S", "-1", "pipeline.max_future_s"),
        ("SANITEL_WEBHOOKS__MAX_ATTEMPTS", "101", "webhooks.max_attempts"),
    ],
)
def test_a_bad_env_value_names_the_key_the_env_var_and_the_value(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, key: str
) -> None:
    monkeypatch.setenv(name, value)
    message = config_error()
    assert f"configuration key {key} " in message
    assert f"env {name.upper()}" in message
    assert repr(value) in message


@pytest.mark.parametrize(
    ("data", "key", "env"),
    [
        ({"mqtt": {"port": 70_000}}, "mqtt.port", "SANITEL_MQTT__PORT"),
        ({"mqtt": {"hots": "typo"}}, "mqtt.hots", "SANITEL_MQTT__HOTS"),
        ({"mqqt": {"host": "x"}}, "mqqt", "SANITEL_MQQT"),
        ({"mqtt": 5}, "mqtt", "SANITEL_MQTT"),
        ({"influx": {"api": "v9"}}, "influx.api", "SANITEL_INFLUX__API"),
        ({"webhooks": {"urls": "http://a"}}, "webhooks.urls", "SANITEL_WEBHOOKS__URLS"),
        ({"registry": ["a"]}, "registry", "SANITEL_REGISTRY"),
    ],
)
def test_a_bad_yaml_value_names_the_key(
    tmp_path: Path, data: dict[str, Any], key: str, env: str
) -> None:
    message = config_error(write_config(tmp_path, data))
    assert f"configuration key {key} (env {env})" in message


def test_every_bad_key_is_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITEL_MQTT__PORT", "0")
    monkeypatch.setenv("SANITEL_INFLUX__API", "v3")
    message = config_error()
    assert "mqtt.port" in message and "influx.api" in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mqtt: [unclosed\n", ["not valid YAML"]),
        ("- a\n- b\n", ["expected a mapping"]),
        ("just a string\n", ["expected a mapping"]),
    ],
)
def test_a_bad_config_file_is_named(tmp_path: Path, text: str, words: list[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    message = config_error(path)
    assert str(path) in message
    for word in words:
        assert word in message


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    message = config_error(tmp_path / "absent.yaml")
    assert str(tmp_path / "absent.yaml") in message and "cannot be read" in message


def test_config_error_is_a_value_error() -> None:
    assert issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    ("name", "key"),
    [("SANITEL_WEBHOOKS__URLS", "webhooks"), ("SANITEL_MQTT", "mqtt")],
)
def test_an_env_value_that_is_not_json_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, name: str, key: str
) -> None:
    monkeypatch.setenv(name, "notjson")
    message = config_error()
    assert key in message and name in message


# --- secrets never shown -------------------------------------------------------------------


def test_a_bad_value_elsewhere_does_not_show_the_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANITEL_INFLUX__TOKEN", SECRETS[0])
    monkeypatch.setenv("SANITEL_INFLUX__PASSWORD", SECRETS[1])
    monkeypatch.setenv("SANITEL_MQTT__PASSWORD", SECRETS[2])
    monkeypatch.setenv("SANITEL_INFLUX__BATCH_SIZE", "many")
    message = config_error()
    assert "influx.batch_size" in message
    assert not any(secret in message for secret in SECRETS)


@pytest.mark.parametrize(
    ("data", "key", "secret"),
    [
        ({"influx": {"token": [SECRETS[0]]}}, "influx.token", SECRETS[0]),
        ({"influx": {"token": 271828182845}}, "influx.token", "271828182845"),
        ({"influx": {"password": {"p": SECRETS[1]}}}, "influx.password", SECRETS[1]),
        ({"mqtt": {"password": [SECRETS[2]]}}, "mqtt.password", SECRETS[2]),
    ],
)
def test_a_bad_secret_is_named_but_not_shown(
    tmp_path: Path, data: dict[str, Any], key: str, secret: str
) -> None:
    message = config_error(write_config(tmp_path, data))
    assert f"configuration key {key}" in message
    assert secret not in message


def test_a_bad_secret_from_the_environment_section_json_is_not_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SANITEL_INFLUX", f'{{"token": ["{SECRETS[0]}"], "batch_size": "x"}}')
    message = config_error()
    assert "influx.token" in message and "influx.batch_size" in message
    assert SECRETS[0] not in message


def test_secrets_from_yaml_are_redacted(tmp_path: Path) -> None:
    settings = load(write_config(tmp_path, {"influx": {"token": SECRETS[0]},
                                            "mqtt": {"password": SECRETS[2]}}))
    assert settings.influx.token is not None
    assert settings.influx.token.get_secret_value() == SECRETS[0]
    shown = str(redacted(settings))
    assert SECRETS[0] not in shown and SECRETS[2] not in shown


# --- the city's time zone (SPEC v1.1 section 9) ---------------------------------------------


def test_timezone_defaults_to_utc_and_takes_an_iana_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load().timezone == "UTC" and str(load().zone) == "UTC"
    assert str(load(write_config(tmp_path, {"timezone": "Asia/Shanghai"})).zone) \
        == "Asia/Shanghai"
    monkeypatch.setenv("SANITEL_TIMEZONE", "Europe/Berlin")
    assert str(load(write_config(tmp_path, {"timezone": "Asia/Shanghai"})).zone) \
        == "Europe/Berlin"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "CST+8", "../../etc/passwd", "", "asia/shanghai"])
def test_an_unknown_timezone_is_named(monkeypatch: pytest.MonkeyPatch, zone: str) -> None:
    monkeypatch.setenv("SANITEL_TIMEZONE", zone)
    message = config_error()
    assert "configuration key timezone (env SANITEL_TIMEZONE)" in message
    assert "IANA" in message
