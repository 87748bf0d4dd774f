"""The Alertmanager notifier against real Alertmanagers, in-process: an HA pair where one
comes late, silences extended and left alone once a crew ended them, silences Alertmanager
lost made again; and the pure payloads."""

from __future__ import annotations

import asyncio
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
from alert_city import CITY

from devices.sites import Registry
from ingest.alerts.alertmanager import AlertmanagerNotifier
from ingest.alerts.alertmanager_payloads import (
    AlertSnapshot,
    DashboardLinks,
    labels,
    postable,
    show,
)
from ingest.alerts.alertmanager_silences import SilenceKeeper
from ingest.alerts.alertmanager_state import AlertmanagerState
from ingest.alerts.events import ACKNOWLEDGED, FIRING, Incident
from ingest.settings import AlertmanagerSettings, GrafanaSettings
from sanitel.local_servers import Alertmanager

REGISTRY = Registry.from_dict(CITY)


def incident(alert_id: str, device_id: str = "WC-0001-OD-1", rule: str = "odor_nh3_high",
             by: str | None = None) -> Incident:
    device = REGISTRY.devices[device_id]
    now = int(time.time() * 1000)
    return Incident(alert_id, rule, "warning", ACKNOWLEDGED if by else FIRING, device.site.id,
                    device.site.name, device_id, device.type, "nh3_ppm", 3.0, 2.0, now - 60_000,
                    now, f"NH3 3 ppm above 2 ppm at {device.site.name}", by)


def ids(am: Alertmanager) -> set[str]:
    return {a["annotations"]["alert_id"] for a in am.alerts()}


async def until(what: str, check: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_ha_pair_both_get_every_alert_even_the_one_that_came_late(
        alertmanager: Alertmanager, tmp_path: Path) -> None:
    late = Alertmanager(tmp_path / "late")  # its port is chosen, nothing listens yet
    active = [incident("a1"), incident("a2", "TS-0001-OD-1")]
    settings = AlertmanagerSettings(urls=[alertmanager.url, late.url], resend_s=1,
                                    timeout_s=1)

    async def scenario() -> None:
        async with AlertmanagerNotifier(settings, GrafanaSettings(), lambda: REGISTRY,
                                        lambda: list(active), tmp_path / "state") as notifier:
            await until("the first has both", lambda: ids(alertmanager) == {"a1", "a2"})
            assert notifier.failures >= 1  # the second did not answer
            late.start()
            try:
                await until("the late one has both", lambda: ids(late) == {"a1", "a2"})
            finally:
                late.stop()

    asyncio.run(scenario())


def test_silence_extended_left_alone_once_ended_by_a_crew_and_remade_when_lost(
        alertmanager: Alertmanager, tmp_path: Path) -> None:
    state = AlertmanagerState(tmp_path / "state")
    acked = AlertSnapshot.of_incident(incident("s1", by="crew-central"))
    url = alertmanager.url

    def active_silences() -> list[dict[str, Any]]:
        """Not expired (a silence made at a `now` of the test's future is `pending`)."""
        return [s for s in alertmanager.silences() if s["status"]["state"] != "expired"]

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=5) as client:
            keeper = SilenceKeeper(client, url, state, silence_s=600)
            now = int(time.time() * 1000)
            await keeper.reconcile([acked], now)
            first = state.silences(url)["s1"]
            assert [s["id"] for s in active_silences()] == [first.silence_id]
            await keeper.reconcile([acked], now + 100_000)  # 500 s left: nothing to do
            assert state.silences(url)["s1"] == first
            await keeper.reconcile([acked], now + 400_000)  # 200 s left: extended
            extended = state.silences(url)["s1"]
            assert extended.ends_ms == now + 1_000_000
            [live] = active_silences()
            assert live["id"] == extended.silence_id and live["createdBy"] == "crew-central"
            assert abs(_ms(live["endsAt"]) - extended.ends_ms) < 1000

            # Alertmanager lost its storage: the silence is made again
            alertmanager.stop()
            shutil.rmtree(alertmanager.data_dir / "data")
            alertmanager.start()
            await keeper.reconcile([acked], now + 800_000)
            remade = state.silences(url)["s1"]
            assert [s["id"] for s in active_silences()] == [remade.silence_id]

            # a crew ends it early in Alertmanager's UI: it stays ended
            httpx.delete(f"{url}/api/v2/silence/{remade.silence_id}").raise_for_status()
            await keeper.reconcile([acked], now + 1_500_000)
            assert active_silences() == [] and state.silences(url)["s1"].released
            # the incident resolves: nothing of ours left, nothing touched
            await keeper.reconcile([], now + 1_600_000)
            assert state.silences(url) == {} and active_silences() == []

    asyncio.run(scenario())
    state.close()


def _ms(text: str) -> int:
    from ingest.alerts.alertmanager_payloads import ms_of

    return ms_of(text)


def test_payload_of_a_transfer_station_alert_with_a_dashboard_link() -> None:
    snapshot = AlertSnapshot.of_incident(incident("p1", "TS-0001-ST-1", "battery_low"))
    links = DashboardLinks("https://grafana.example/", dict(GrafanaSettings().site_dashboards))
    body = postable(snapshot, REGISTRY, links, now_ms=snapshot.started_ms + 60_000,
                    active_for_ms=240_000)
    assert body["labels"]["site_kind"] == "transfer_station"
    assert body["labels"]["district"] == "Chenghua"
    link = httpx.URL(body["annotations"]["dashboard"])
    assert link.path == "/d/sanitel-transfer-stations" and link.params["var-site"] == "TS-0001"
    assert body["generatorURL"] == body["annotations"]["dashboard"]
    assert _ms(body["endsAt"]) == snapshot.started_ms + 300_000


def test_a_device_gone_from_the_registry_keeps_its_site_labels_or_says_unknown() -> None:
    gone = AlertSnapshot.of_incident(incident("g1"))
    registry = Registry.from_dict({"sites": [{**CITY["sites"][0], "devices": []}]})
    assert labels(gone, registry)["district"] == "Jinjiang"
    empty = Registry.from_dict({"sites": []})
    assert labels(gone, empty)["district"] == "unknown"
    assert labels(gone, empty)["site_kind"] == "unknown"


def test_annotation_values() -> None:
    assert [show(v) for v in (3.0, 3.25, None, False, True, "fault", 7)] == [
        "3", "3.25", "", "false", "true", "fault", "7"]


def test_dashboard_uids_are_those_the_dashboards_package_writes() -> None:
    from dashboards import public_toilets, transfer_stations

    assert GrafanaSettings().site_dashboards == {
        public_toilets.KIND: public_toilets.UID, transfer_stations.KIND: transfer_stations.UID}


def test_a_url_that_is_no_alertmanager_is_retried_and_said_and_spares_the_other(
        alertmanager: Alertmanager, tmp_path: Path, caplog: Any) -> None:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Page(BaseHTTPRequestHandler):  # a web server that answers 200 with a page
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "15")
            self.end_headers()
            self.wfile.write(b"<html>hi</html>")

        def log_message(self, *args: object) -> None:
            pass

    page = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    Thread(target=page.serve_forever, daemon=True).start()
    wrong = f"http://127.0.0.1:{page.server_address[1]}"
    active = [incident("w1", by="crew-south")]
    settings = AlertmanagerSettings(urls=[wrong, alertmanager.url], resend_s=1)

    async def scenario() -> None:
        async with AlertmanagerNotifier(settings, GrafanaSettings(), lambda: REGISTRY,
                                        lambda: list(active), tmp_path / "state") as notifier:
            await until("the real one has the alert and its silence", lambda: ids(
                alertmanager) == {"w1"} and [s["createdBy"] for s in alertmanager.silences()]
                == ["crew-south"])
            await until("tried again and again", lambda: notifier.failures >= 3)

    try:
        asyncio.run(scenario())
    finally:
        page.shutdown()
        page.server_close()
    said = [r.getMessage() for r in caplog.records if wrong in r.getMessage()]
    assert len(said) == 1 and "is this URL an Alertmanager?" in said[0]


def test_urls_that_are_not_http_are_refused_naming_the_key() -> None:
    import pytest

    from ingest.settings import ConfigError, load

    with pytest.raises(ConfigError, match=r"alertmanager\.urls .*'am-1:9093' is not an http"):
        load(None, alertmanager={"urls": ["http://am-0:9093", "am-1:9093"]})
    with pytest.raises(ConfigError, match=r"grafana\.url .*'grafana' is not an http"):
        load(None, grafana={"url": "grafana"})


def test_a_late_resolve_never_ends_the_next_incident_under_the_same_labels(
        alertmanager: Alertmanager, tmp_path: Path) -> None:
    """Resolves kept while Alertmanager was away: the one of an earlier incident of the same
    rule and device is dropped (sent, it would end the live one there), a day-old one too,
    another is sent."""
    now = int(time.time() * 1000)
    earlier = replace(AlertSnapshot.of_incident(incident("old1")), resolved_ms=now - 30_000)
    ancient = replace(earlier, alert_id="old2", device_id="WC-0001-OD-2",
                      resolved_ms=now - 2 * 86_400_000)
    other = replace(earlier, alert_id="old3", device_id="TS-0001-OD-1", site_id="TS-0001")
    state = AlertmanagerState(tmp_path / "state")
    for snapshot in (earlier, ancient, other):
        state.add_resolve(alertmanager.url, snapshot)
    state.close()
    active = [incident("new1")]  # same rule, device and severity as `old1`
    settings = AlertmanagerSettings(urls=[alertmanager.url], resend_s=60)

    async def scenario() -> None:
        async with AlertmanagerNotifier(settings, GrafanaSettings(), lambda: REGISTRY,
                                        lambda: list(active), tmp_path / "state") as notifier:
            await until("sent", lambda: notifier.sent >= 2)
            assert notifier.sent == 2  # new1 and old3

    asyncio.run(scenario())
    assert ids(alertmanager) == {"new1"}
    assert AlertmanagerState(tmp_path / "state").resolves(alertmanager.url) == []
