"""The CPU floor of a drain (`benchmarks/report.cpu_floor`): the least time the CPU that
the consumer, mosquitto and influxd used can fit in on the machine's cores, counted from
the consumer's first stored reading."""

from __future__ import annotations

import pytest

from benchmarks.report import cpu_floor


def test_cpu_seconds_spread_over_the_cores() -> None:
    # 3 CPU seconds on 2 cores take at least 1.5 s
    assert cpu_floor(3.0, 0.0, cores=2) == pytest.approx(1.5)


def test_what_the_cores_could_do_before_the_window_is_taken_off() -> None:
    # 0.25 s before the first stored reading: at most 0.5 CPU s of the 3 done by then
    assert cpu_floor(3.0, 0.25, cores=2) == pytest.approx(1.25)


def test_never_below_zero() -> None:
    # a consumer that worked mostly before its window (Node-RED's receiving) has no floor
    assert cpu_floor(1.0, 2.0, cores=2) == 0.0
    assert cpu_floor(1.0, -0.1, cores=1) == pytest.approx(1.0)  # clock jitter: no credit
