"""Publishing to an MQTT broker, like the devices would (paho-mqtt 2.x).

Two ways to connect:

- per device (small cities, `--connections per-device`): one MQTT connection per device,
  each with its own last will, `{"online": false}` retained on its status topic, so the
  broker announces a device that drops off;
- gateway (large cities, the default above `PER_DEVICE_LIMIT` devices): a few shared
  connections, as a LoRaWAN or NB-IoT gateway would; each device's status is published
  retained on start and `{"online": false}` on a clean stop (a gateway cannot leave a
  will per device).

With broker accounts (`sanitel simulate --credentials`, SPEC section 8) every device
connects as itself (per device), or each site's gateway as `{site_id}-gw` (gateway mode,
one connection per site). A message the broker would not take from that account (a
fault naming a device that is not registered, or another site) is still sent on it:
the broker refuses it, as it would a spoofing device.

Either way paho's network threads reconnect when the broker goes away, and QoS 1
messages published meanwhile are sent once it is back. `publish` waits while too many
messages are unacknowledged, which is the simulator's backpressure.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from devices.sites import Device
from simulators.engine import OFFLINE, Message, status_topic

PER_DEVICE_LIMIT = 200
ConnectionMode = Literal["auto", "per-device", "gateway"]


class PublisherError(RuntimeError):
    """The broker cannot be reached or refuses us; the message names host and port."""


@dataclass(frozen=True)
class BrokerOptions:
    host: str = "localhost"
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    qos: int = 1
    keepalive_s: int = 30
    client_id_prefix: str = "sanitel-sim"
    connect_timeout_s: float = 10.0
    #: Broker accounts: device id -> (username, password), and site id -> the site
    #: gateway's (username, password). Empty: every connection uses username/password.
    device_accounts: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    gateway_accounts: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)

    @property
    def with_accounts(self) -> bool:
        return bool(self.device_accounts or self.gateway_accounts)

    def where(self) -> str:
        return f"MQTT broker {self.host}:{self.port}"


class _Link:
    """One paho client and what it has sent and had acknowledged (written by its thread)."""

    def __init__(
        self, options: BrokerOptions, client_id: str, will: Device | None,
        account: tuple[str, str] | None = None,
    ) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311
        )
        self.sent = 0
        self.done = 0
        self.connects = 0
        self.error: str | None = None
        client = self.client
        if account is not None:
            client.username_pw_set(*account)
        elif options.username is not None:
            client.username_pw_set(options.username, options.password)
        if options.tls:
            client.tls_set(
                ca_certs=str(options.ca_file) if options.ca_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        if will is not None:
            client.will_set(status_topic(will), OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(1000)
        client.reconnect_delay_set(1, 5)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_disconnect = self._on_disconnect

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self.error = str(reason)
        else:
            self.connects += 1
            self.error = None

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if not self.connects and not self.error:
            self.error = (
                "it closed the connection before accepting it "
                "(a TLS port without --tls, or a plain one with it?)"
            )

    def _on_publish(self, client: Any, userdata: Any, mid: Any, reason: Any, props: Any) -> None:
        self.done += 1

    @property
    def pending(self) -> int:
        return self.sent - self.done


class MqttPublisher:
    """`async with MqttPublisher(options, devices) as pub: await pub.publish(message)`."""

    def __init__(
        self,
        options: BrokerOptions,
        devices: list[Device],
        *,
        mode: ConnectionMode = "auto",
        gateways: int = 4,
        max_pending: int = 20_000,
    ) -> None:
        self.options = options
        per_device = mode == "per-device" or (mode == "auto" and len(devices) <= PER_DEVICE_LIMIT)
        self.mode: ConnectionMode = "per-device" if per_device else "gateway"
        prefix = f"{options.client_id_prefix}-{os.getpid()}"
        self._by_device: dict[str, _Link] = {}
        if options.with_accounts:
            self._gateways = _accounts_links(options, devices, per_device, self._by_device)
        else:
            # Gateway links also carry what has no device of its own (unknown-device faults).
            self._gateways = [
                _Link(options, f"{prefix}-gw{i}", None) for i in range(max(1, gateways))
            ]
        if per_device and not options.with_accounts:
            self._gateways = self._gateways[:1]
            for d in devices:
                self._by_device[d.id] = _Link(options, f"{options.client_id_prefix}-{d.id}", d)
        self._links = list({id(link): link for link in
                            [*self._gateways, *self._by_device.values()]}.values())
        self._max_pending = max_pending
        self._next_gateway = 0
        self._dropped = 0
        #: Messages the broker had not acknowledged when we stopped (0 after a clean stop).
        self.unacked_at_exit = 0

    async def __aenter__(self) -> Self:
        opts = self.options

        def connect(link: _Link) -> None:
            # The first connect in the caller's thread, so that its error reaches us;
            # from then on paho's network thread reconnects on its own.
            link.client.connect(opts.host, opts.port, opts.keepalive_s)
            link.client.loop_start()

        outcomes = await asyncio.gather(
            *(asyncio.to_thread(connect, link) for link in self._links), return_exceptions=True
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await asyncio.to_thread(self._stop)
            raise PublisherError(f"cannot connect to {opts.where()}: {failures[0]}")
        try:
            await self._wait_connected()
        except BaseException:
            await asyncio.to_thread(self._stop)
            raise
        return self

    async def _wait_connected(self) -> None:
        deadline = time.monotonic() + self.options.connect_timeout_s
        while any(link.connects == 0 for link in self._links):
            errors = {link.error for link in self._links if link.error}
            if errors:
                raise PublisherError(f"{self.options.where()} refused us: {', '.join(errors)}")
            if time.monotonic() > deadline:
                raise PublisherError(
                    f"cannot connect to {self.options.where()} within "
                    f"{self.options.connect_timeout_s:.0f} s; is it running and reachable?"
                )
            await asyncio.sleep(0.02)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None or not issubclass(exc_type, asyncio.CancelledError):
                await self.flush()
            self.unacked_at_exit = self.pending
        finally:
            await asyncio.to_thread(self._stop)

    def _stop(self) -> None:
        for link in self._links:
            link.client.disconnect()
        for link in self._links:
            link.client.loop_stop()

    def _link_for(self, message: Message) -> _Link:
        link = self._by_device.get(message.device_id)
        if link is None:
            link = self._gateways[zlib.crc32(message.device_id.encode()) % len(self._gateways)]
        return link

    async def publish(self, message: Message) -> None:
        while self.pending >= self._max_pending:
            await asyncio.sleep(0.002)
        link = self._link_for(message)
        qos = 1 if message.retain else self.options.qos
        link.sent += 1
        info = link.client.publish(message.topic, message.payload, qos=qos, retain=message.retain)
        if qos == 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN:
            link.done += 1  # paho drops QoS 0 while disconnected and will not report it
            self._dropped += 1

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until the broker has every message; False if it has not within `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.pending == 0

    @property
    def pending(self) -> int:
        return sum(link.pending for link in self._links)

    @property
    def acknowledged(self) -> int:
        return sum(link.done for link in self._links) - self._dropped

    @property
    def reconnects(self) -> int:
        return sum(max(0, link.connects - 1) for link in self._links)

    @property
    def connections(self) -> int:
        return len(self._links)


def _accounts_links(
    options: BrokerOptions, devices: list[Device], per_device: bool, by_device: dict[str, _Link]
) -> list[_Link]:
    """Links that connect as the devices' own accounts (per device) or the site gateways'
    (gateway mode); fills `by_device`; returns the links for messages of no known device."""
    prefix = options.client_id_prefix
    if per_device:
        for d in devices:
            account = options.device_accounts.get(d.id)
            if account is None:
                raise PublisherError(f"device {d.id}: no device row in the credentials; "
                                     "run `sanitel access init` with this registry")
            by_device[d.id] = _Link(options, f"{prefix}-{d.id}", d, account)
        return list(by_device.values())[:1]
    sites: dict[str, _Link] = {}
    for d in devices:
        if d.site.id not in sites:
            account = options.gateway_accounts.get(d.site.id)
            if account is None:
                raise PublisherError(
                    f"site {d.site.id}: no gateway row ({d.site.id}-gw) in the credentials; "
                    "run `sanitel access init --gateways`, or use --connections per-device")
            sites[d.site.id] = _Link(options, f"{prefix}-{d.site.id}-gw", None, account)
        by_device[d.id] = sites[d.site.id]
    return list(sites.values())[:1]
