"""`log.format: json`: one JSON object per line, with the fields a log store indexes."""

from __future__ import annotations

import logging

import orjson

from sanitel.log_format import JsonLines


def _record(**extra: object) -> logging.LogRecord:
    record = logging.LogRecord("sanitel.store", logging.WARNING, __file__, 1,
                               "InfluxDB unavailable (%s)", ("refused",), None)
    record.__dict__.update(extra)
    return record


def test_json_line_has_the_standard_fields_and_extras() -> None:
    line = JsonLines().format(_record(device_id="WC-0001-OD-1", batch=3))
    assert "\n" not in line
    event = orjson.loads(line)
    assert event["level"] == "WARNING" and event["logger"] == "sanitel.store"
    assert event["message"] == "InfluxDB unavailable (refused)"
    assert event["timestamp"].endswith("Z") and "T" in event["timestamp"]
    assert event["device_id"] == "WC-0001-OD-1" and event["batch"] == 3


def test_exception_stays_on_one_line() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        import sys

        record = _record()
        record.exc_info = sys.exc_info()
    line = JsonLines().format(record)
    assert "\n" not in line
    assert "ValueError: bad" in orjson.loads(line)["exception"]
