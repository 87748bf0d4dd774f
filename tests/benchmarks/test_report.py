"""The benchmark's ratios (`benchmarks/report.derive`): each is the median of the rounds'
own ratios, round against the same round, with its range."""

from __future__ import annotations

from typing import Any

from benchmarks.report import derive, targets_text


def _row(rates: list[int], connect_s: list[float], cpu: list[float]) -> dict[str, Any]:
    return {"msgs_per_s": sorted(rates)[(len(rates) - 1) // 2], "rounds_msgs_per_s": rates,
            "connect_to_last_s": connect_s[0], "rounds_connect_to_last_s": connect_s,
            "cpu_s_per_100k": cpu[0], "rounds_cpu_s_per_100k": cpu}


def test_storing_consumers_against_the_storage_limit_round_by_round() -> None:
    drain = {
        "storage": _row([100_000, 50_000, 80_000], [0.5, 1.0, 0.6], [0.1, 0.1, 0.1]),
        "nodered": _row([40_000, 40_000, 40_000], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]),
        "sanitel1": _row([30_000, 45_000, 20_000], [1.5, 1.0, 2.0], [2.0, 2.5, 2.0]),
    }
    derived = derive({"drain": drain})
    figures, ranges = derived["figures"], derived["ranges"]
    # rounds: 30/100, 45/50, 20/80 -> 0.3, 0.9, 0.25: median 0.3
    assert figures["sanitel1_vs_storage_x"] == 0.3
    assert ranges["sanitel1_vs_storage_x"] == [0.25, 0.9]
    # 40/100, 40/50, 40/80 -> 0.4, 0.8, 0.5
    assert figures["nodered_vs_storage_x"] == 0.5
    # the ratio stays against Node-RED: 0.75, 1.125, 0.5 -> 0.75
    assert figures["sanitel1_vs_nodered_x"] == 0.75
    # from connection: Node-RED's time over Sanitel's, 2/1.5, 2/1, 2/2 -> 1.33
    assert figures["sanitel1_from_connect_vs_nodered_x"] == 1.33


def test_no_storage_row_no_storage_ratio() -> None:
    drain = {"nodered": _row([40_000], [2.0], [5.0]), "sanitel1": _row([30_000], [1.5], [2.0])}
    figures = derive({"drain": drain})["figures"]
    assert not [key for key in figures if key.endswith("_vs_storage_x")]
    assert figures["sanitel1_vs_nodered_x"] == 0.75


def test_the_most_the_cpu_allows_is_node_reds_window_over_the_cpu_floor() -> None:
    nodered = {**_row([40_000, 40_000, 40_000], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]),
               "seconds": 1.2, "rounds_seconds": [1.2, 1.0, 1.2]}
    sanitel = {**_row([30_000, 35_000, 40_000], [1.5, 1.4, 1.2], [2.0, 2.0, 2.0]),
               "cpu_floor_s": 1.5, "rounds_cpu_floor_s": [1.5, 0.8, 1.2]}
    derived = derive({"drain": {"nodered": nodered, "sanitel2": sanitel}})
    # round by round, Node-RED's window over Sanitel's floor: 1.2/1.5, 1.0/0.8, 1.2/1.2
    assert derived["figures"]["sanitel2_cpu_allows_vs_nodered_x"] == 1.0  # the median
    assert derived["ranges"]["sanitel2_cpu_allows_vs_nodered_x"] == [0.8, 1.25]


def test_result_files_from_before_the_floor_get_no_such_ratio() -> None:
    drain = {"nodered": {**_row([40_000], [2.0], [5.0]), "seconds": 1.2},
             "sanitel1": _row([30_000], [1.5], [2.0])}
    figures = derive({"drain": drain})["figures"]
    assert "sanitel1_cpu_allows_vs_nodered_x" not in figures
    assert figures["sanitel1_vs_nodered_x"] == 0.75


def _just_under_one() -> dict[str, Any]:
    """One Sanitel against Node-RED, round ratios 0.997, 0.9, 1.2: median 0.997, which
    rounds to 1.0 (the 1.0x target); CPU 0.4x."""
    return {"nodered": _row([37_053, 40_000, 40_000], [2.0, 2.0, 2.0], [5.0, 5.0, 5.0]),
            "sanitel1": _row([36_941, 36_000, 48_000], [1.5, 1.5, 1.5], [2.0, 2.0, 2.0])}


def test_a_median_just_under_a_target_misses_it_though_it_prints_as_the_target() -> None:
    derived = derive({"drain": _just_under_one()})
    assert derived["figures"]["sanitel1_vs_nodered_x"] == 1.0
    assert derived["met"]["sanitel1_vs_nodered_x"] is False
    assert derived["met"]["sanitel1_cpu_vs_nodered_x"] is True  # 0.4, well under 1.0x


def test_the_summary_shows_the_exact_median_where_the_rounded_one_would_read_met() -> None:
    results: dict[str, Any] = {"drain": _just_under_one()}
    results["derived"] = derive(results)
    lines = targets_text(results)
    one = next(line for line in lines if line.strip().startswith("one sanitel ingest vs"))
    assert "1.0 (0.997)" in one and "missed" in one
    cpu = next(line for line in lines if "CPU s/100k" in line)
    assert "(0.4" not in cpu and "met" in cpu  # 0.4 reads the same rounded or not
