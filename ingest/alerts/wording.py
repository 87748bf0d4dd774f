"""The human text of alert messages: what a crew member reads on a phone."""

from __future__ import annotations

from ingest.alerts.events import Value
from ingest.alerts.rules import AlertRule, Level

#: field -> (label, unit) for the shipped device types; a rule's `label`/`unit` win.
FIELD_WORDS: dict[str, tuple[str, str]] = {
    "nh3_ppm": ("NH3", " ppm"),
    "h2s_ppm": ("H2S", " ppm"),
    "temp_c": ("Temperature", " °C"),
    "rh_pct": ("Humidity", "%"),
    "fill_pct": ("Container fill", "%"),
    "weight_kg": ("Container weight", " kg"),
    "compactor": ("Compactor", ""),
    "door_open": ("Door open", ""),
    "liquid_pct": ("Fragrance liquid", "%"),
    "state": ("Sprayer state", ""),
    "occupancy": ("Occupancy", " people"),
    "stalls_free": ("Free stalls", ""),
    "paper_pct": ("Toilet paper", "%"),
    "soap_pct": ("Soap", "%"),
    "entries": ("Entries", ""),
    "battery_pct": ("Battery", "%"),
    "rssi_dbm": ("Signal", " dBm"),
}


def duration(ms: float) -> str:
    seconds = ms / 1000
    if seconds >= 3600:
        return f"{_decimal(seconds / 3600)} h"
    if seconds >= 60:
        return f"{_decimal(seconds / 60)} min"
    return f"{_decimal(seconds)} s"


def _decimal(number: float) -> str:
    return f"{number:.1f}".removesuffix(".0")


def _words(rule: AlertRule) -> tuple[str, str]:
    label, unit = FIELD_WORDS.get(rule.field, (rule.field, ""))
    return rule.label or label, (f" {rule.unit}" if rule.unit else unit)


def _shown(value: Value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _where(site_name: str, device_id: str) -> str:
    return f"at {site_name} ({device_id})"


def fired(rule: AlertRule, level: Level, value: Value, site_name: str, device_id: str) -> str:
    label, unit = _words(rule)
    held = f" for {duration(level.for_ms)}" if level.for_ms else ""
    if rule.kind == "equals":
        return f"{label} {_shown(value)}{held} {_where(site_name, device_id)}"
    return (f"{label} {_shown(value)}{unit} {rule.kind} {level.bound:g}{unit}{held} "
            f"{_where(site_name, device_id)}")


def escalated(rule: AlertRule, level: Level, value: Value, site_name: str, device_id: str
              ) -> str:
    label, unit = _words(rule)
    return (f"{label} {_shown(value)}{unit} {rule.kind} {level.bound:g}{unit}: now "
            f"{level.severity} {_where(site_name, device_id)}")


def deescalated(rule: AlertRule, left: Level, now: Level, value: Value, site_name: str,
                device_id: str) -> str:
    label, unit = _words(rule)
    back = "below" if rule.kind == "above" else "above"
    return (f"{label} {_shown(value)}{unit} back {back} {left.recover:g}{unit}: down to "
            f"{now.severity} {_where(site_name, device_id)}")


def resolved(rule: AlertRule, level: Level, value: Value, site_name: str, device_id: str) -> str:
    label, unit = _words(rule)
    if rule.kind == "equals":
        return f"{label} {_shown(value)} again, resolved {_where(site_name, device_id)}"
    back = "below" if rule.kind == "above" else "above"
    return (f"{label} {_shown(value)}{unit} back {back} {level.recover:g}{unit}, resolved "
            f"{_where(site_name, device_id)}")


def acknowledged(previous: str, by: str) -> str:
    return f"{previous} [acknowledged by {by}]"


def offline_lwt(device_type: str, site_name: str, device_id: str) -> str:
    return f"Device offline ({device_type}, last will received) {_where(site_name, device_id)}"


def offline_silent(device_type: str, silent_ms: float, missed: float, interval_s: float,
                   site_name: str, device_id: str) -> str:
    return (f"No data for {duration(silent_ms)} ({device_type}, {missed:g} x {interval_s:g} s "
            f"interval) {_where(site_name, device_id)}")


def back_online(device_type: str, site_name: str, device_id: str) -> str:
    return f"Device back online ({device_type}), resolved {_where(site_name, device_id)}"


def cleaning_overdue(every_h: float, open_hours: str, site_name: str, device_id: str) -> str:
    return (f"No cleaning check-in for {_decimal(every_h)} h of opening hours ({open_hours}) "
            f"{_where(site_name, device_id)}")


def cleaned(by: str, site_name: str, device_id: str) -> str:
    return f"Cleaning check-in by {by or 'an attendant'}, resolved {_where(site_name, device_id)}"


def water_leak(rise_m3: float, for_ms: float, site_name: str, device_id: str) -> str:
    return (f"Possible water leak: the meter rose {rise_m3 * 1000:.0f} L in {duration(for_ms)} "
            f"with nobody counted in {_where(site_name, device_id)}")


def leak_stopped(water_m3: float, site_name: str, device_id: str) -> str:
    return (f"Water meter standing still at {water_m3:g} m3, resolved "
            f"{_where(site_name, device_id)}")
