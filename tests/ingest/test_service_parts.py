"""The service edge's pure parts and small servers (SPEC section 10): readiness verdicts,
the write-duration histogram, config error lines, systemd notifications, the HTTP server."""

from __future__ import annotations

import asyncio
import copy
import os
import socket
import uuid
from pathlib import Path

import pytest
import yaml

from devices.sites import Registry, RegistryError
from ingest import systemd
from ingest.alerts.rules import AlertRulesError, load_rules
from ingest.config_lines import with_line
from ingest.durations import DurationHistogram
from ingest.http_endpoints import HttpEndpointError, HttpEndpoints, Response
from ingest.readiness import Conditions, assess
from tests.conftest import ROOT, SMALL_CITY

MiB = 1 << 20


def test_ready_when_subscribed_and_writing() -> None:
    verdict = assess(Conditions(started=True, subscribed=True, spool_max_bytes=MiB))
    assert verdict.ready and verdict.reasons == [] and verdict.warnings == []


def test_not_ready_while_starting_or_without_broker() -> None:
    assert assess(Conditions(started=False)).reasons == ["starting"]
    verdict = assess(Conditions(started=True, subscribed=False, spool_max_bytes=MiB))
    assert not verdict.ready and verdict.reasons == ["broker_unavailable"]


def test_influxdb_away_with_room_in_the_spool_is_still_storing() -> None:
    verdict = assess(Conditions(started=True, subscribed=True, influx_unavailable=True,
                                spool_bytes=MiB // 2, spool_max_bytes=MiB))
    assert verdict.ready and verdict.warnings == ["influxdb_unavailable"]


def test_influxdb_away_and_spool_full_is_not_ready() -> None:
    verdict = assess(Conditions(started=True, subscribed=True, influx_unavailable=True,
                                spool_bytes=MiB, spool_max_bytes=MiB, paused=True))
    assert not verdict.ready
    assert verdict.reasons == ["influxdb_unavailable", "spool_full"]
    refused = assess(Conditions(started=True, subscribed=True, credentials_refused=True,
                                spool_bytes=MiB, spool_max_bytes=MiB, paused=True))
    assert refused.reasons == ["influxdb_credentials_refused", "spool_full"]


def test_spool_near_full_and_failed_reload_are_warnings() -> None:
    verdict = assess(Conditions(started=True, subscribed=True, influx_unavailable=True,
                                spool_bytes=int(MiB * 0.95), spool_max_bytes=MiB,
                                reload_error="registry file x: bad"))
    assert verdict.ready
    assert verdict.warnings == ["influxdb_unavailable", "spool_near_full",
                                "config_reload_failed"]
    assert verdict.detail["config_reload_failed"] == "registry file x: bad"


def test_histogram_buckets_are_cumulative() -> None:
    hist = DurationHistogram((0.01, 0.1))
    for seconds in (0.005, 0.01, 0.05, 3.0):
        hist.observe(seconds)
    assert hist.cumulative() == [("0.01", 2), ("0.1", 3), ("+Inf", 4)]
    assert hist.count == 4 and hist.total_s == pytest.approx(3.065)


def test_registry_error_names_the_line(tmp_path: Path) -> None:
    city = copy.deepcopy(SMALL_CITY)
    city["sites"][1]["devices"][1]["type"] = "toaster"
    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(city, sort_keys=False))
    with pytest.raises(RegistryError) as caught:
        Registry.load(path)
    message = with_line(str(caught.value), path)
    line = int(message.rsplit("(line ", 1)[1].rstrip(")"))
    assert path.read_text().splitlines()[line - 1].strip() == "type: toaster"
    assert "key 'type'" in message and str(path) in message


def test_rules_error_names_the_line(tmp_path: Path) -> None:
    text = (ROOT / "config" / "alerts.yaml").read_text()
    path = tmp_path / "alerts.yaml"
    path.write_text(text.replace("above: 2.0", "above: lots", 1))
    with pytest.raises(AlertRulesError) as caught:
        load_rules(path)
    message = with_line(str(caught.value), path)
    line = int(message.rsplit("(line ", 1)[1].rstrip(")"))
    assert "above: lots" in path.read_text().splitlines()[line - 1]


def _listen(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


@pytest.mark.parametrize("abstract", [False, True])
def test_notify_reaches_the_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   abstract: bool) -> None:
    name = f"sanitel-test-{uuid.uuid4().hex}"
    address, env = (("\0" + name, "@" + name) if abstract
                    else (str(tmp_path / "notify"), str(tmp_path / "notify")))
    with _listen(address) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", env)
        assert systemd.notify("READY=1")
        assert sock.recv(64) == b"READY=1"


def test_notify_without_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False


def test_watchdog_interval_is_half_and_only_for_our_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert systemd.watchdog_interval_s() == 1.5
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert systemd.watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert systemd.watchdog_interval_s() is None


async def _request(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def test_http_routes_methods_and_bad_requests() -> None:
    async def ok() -> Response:
        return Response(200, b'{"ok": true}')

    async def broken() -> Response:
        raise RuntimeError("boom")

    async def scenario() -> list[bytes]:
        routes = {("GET", "/ok"): ok, ("GET", "/broken"): broken}
        async with HttpEndpoints("127.0.0.1", 0, routes) as http:
            assert http.port > 0
            return [await _request(http.port, raw) for raw in (
                b"GET /ok?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
                b"POST /ok HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
                b"GET /nowhere HTTP/1.1\r\n\r\n",
                b"GET /broken HTTP/1.1\r\n\r\n",
                b"garbage\r\n\r\n",
                b"GET /ok HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n",
            )]

    answers = asyncio.run(scenario())
    assert [a.split(b" ", 2)[1] for a in answers] == [b"200", b"405", b"404", b"500", b"400",
                                                     b"413"]
    assert answers[0].endswith(b'{"ok": true}')


def test_http_port_in_use_names_the_setting() -> None:
    async def scenario() -> None:
        async with HttpEndpoints("127.0.0.1", 0, {}) as first:
            await HttpEndpoints("127.0.0.1", first.port, {}).__aenter__()

    with pytest.raises(HttpEndpointError, match=r"http\.port"):
        asyncio.run(scenario())


def test_unwritable_spool_is_not_ready() -> None:
    verdict = assess(Conditions(started=True, subscribed=True, influx_unavailable=True,
                                spool_max_bytes=MiB, paused=True,
                                spool_error="[Errno 28] No space left on device"))
    assert verdict.reasons == ["influxdb_unavailable", "spool_unwritable"]
    assert "No space left" in verdict.detail["spool_unwritable"]


def test_stopping_is_not_ready() -> None:
    verdict = assess(Conditions(started=True, stopping=True, subscribed=True,
                                spool_max_bytes=MiB))
    assert not verdict.ready and verdict.reasons == ["stopping"]


def test_random_bytes_never_break_the_http_server() -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    async def ok() -> Response:
        return Response(200, b"{}")

    async def exchange(port: int, raw: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        await writer.drain()
        writer.write_eof()
        answer = await asyncio.wait_for(reader.read(), 15)
        writer.close()
        return answer

    loop = asyncio.new_event_loop()
    server = HttpEndpoints("127.0.0.1", 0, {("GET", "/healthz"): ok})
    loop.run_until_complete(server.__aenter__())
    try:
        @settings(max_examples=150, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])
        @given(st.binary(max_size=2048) | st.builds(
            lambda head, tail: head + tail,
            st.sampled_from([b"GET /healthz HTTP/1.1\r\n", b"POST / HTTP/1.0\r\n", b""]),
            st.binary(max_size=512)))
        def check(raw: bytes) -> None:
            answer = loop.run_until_complete(exchange(server.port, raw))
            # an answer is always a whole HTTP response (or nothing, for a cut request)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 ")

        check()
        healthy = loop.run_until_complete(
            exchange(server.port, b"GET /healthz HTTP/1.1\r\n\r\n"))
        assert healthy.startswith(b"HTTP/1.1 200 ")
    finally:
        loop.run_until_complete(server.__aexit__(None, None, None))
        loop.close()


def test_yaml_parsed_in_a_child_equals_the_direct_parse(tmp_path: Path) -> None:
    from ingest.yaml_process import YamlFileError, load_yaml_in_child

    path = tmp_path / "registry.yaml"
    path.write_text(yaml.safe_dump(SMALL_CITY, sort_keys=False))
    assert asyncio.run(load_yaml_in_child(path)) == yaml.safe_load(path.read_text())
    path.write_text("sites: [\n  - id: x\n")
    with pytest.raises(YamlFileError, match=r"(?s)not valid YAML .*line 2"):
        asyncio.run(load_yaml_in_child(path))
    path.write_text("sites:\n  - id: 2026-01-01\n")
    with pytest.raises(YamlFileError, match=r"\(date\) is not text.*quote it"):
        asyncio.run(load_yaml_in_child(path))
    with pytest.raises(YamlFileError, match="cannot be read"):
        asyncio.run(load_yaml_in_child(tmp_path / "missing.yaml"))
