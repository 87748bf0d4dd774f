"""The benchmark's outputs: derived figures and targets, the table, the JSON, the plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.measure import percentile

#: The targets of issue 6, on these 2-core machines.
TARGETS = {
    "sanitel_vs_raw_pct": 50.0,
    "sanitel_vs_broker_pct": 0.0,
    "sanitel_vs_naive_x": 10.0,
    "live_p99_ms": 1000.0,
    "scale_rss_mb": 200.0,
    "alert_p99_ms": 200.0,
}


def derive(results: dict[str, Any]) -> dict[str, Any]:
    """Sanitel as % of the raw limit and x the naive bridge; each target met or not."""
    drain = results.get("drain", {})
    raw, naive, sanitel = drain.get("raw"), drain.get("naive"), drain.get("sanitel")
    broker = drain.get("broker")
    out: dict[str, Any] = {}
    if sanitel and broker and broker.get("msgs_per_s"):
        out["sanitel_vs_broker_pct"] = round(
            100 * sanitel["msgs_per_s"] / broker["msgs_per_s"], 1)
    if sanitel and raw:
        out["sanitel_vs_raw_pct"] = round(100 * sanitel["msgs_per_s"] / raw["msgs_per_s"], 1)
    if sanitel and naive and naive["msgs_per_s"]:
        out["sanitel_vs_naive_x"] = round(sanitel["msgs_per_s"] / naive["msgs_per_s"], 1)
    live = results.get("live")
    if live and live["latency_ms"]["p99"] is not None:
        out["live_p99_ms"] = live["latency_ms"]["p99"]
    if results.get("scale"):
        out["scale_rss_mb"] = results["scale"]["peak_rss_mb"]
    if results.get("alerts", {}).get("p99_ms") is not None:
        out["alert_p99_ms"] = results["alerts"]["p99_ms"]
    met = {}
    for key, value in out.items():
        if key == "sanitel_vs_broker_pct":
            continue  # a figure, not a target
        bound = TARGETS[key]
        met[key] = value >= bound if key.startswith("sanitel_vs") else value < bound
    return {"figures": out, "targets": TARGETS, "met": met}


def table(results: dict[str, Any]) -> Table:
    derived = results.get("derived", {}).get("figures", {})
    t = Table(title="Sanitel benchmark " + results.get("stamp", ""), show_lines=False)
    for col in ("scenario", "msgs", "s", "msgs/s", "points / expected", "vs raw", "vs naive",
                "p50 ms", "p99 ms", "peak RSS MB", "CPU s"):
        t.add_column(col, justify="left" if col == "scenario" else "right")

    def num(value: Any, fmt: str = "{:,}") -> str:
        return "-" if value is None else fmt.format(value)

    def pts(row: dict[str, Any]) -> str:
        if row.get("points") is None:
            return "-"
        mark = ""
        if row.get("expected_points") is not None:
            mark = f" / {row['expected_points']:,}"
        return f"{row['points']:,}{mark}"

    drain = results.get("drain", {})
    for key in ("raw", "broker", "naive", "sanitel"):
        row = drain.get(key)
        if not row:
            continue
        if row.get("error"):
            t.add_row(f"drain: {row['name']}: {row['error']}", *["-"] * 10)
            continue
        vs_raw = vs_naive = "-"
        if key == "sanitel":
            vs_raw = num(derived.get("sanitel_vs_raw_pct"), "{}%")
            if derived.get("sanitel_vs_broker_pct") is not None:
                vs_raw += f" (C: {derived['sanitel_vs_broker_pct']}%)"
            vs_naive = num(derived.get("sanitel_vs_naive_x"), "{}x")
        name = "drain: " + row["name"] + (" [capped]" if row.get("capped") else "")
        t.add_row(name, num(row["messages"]), num(row["seconds"], "{:.2f}"),
                  num(row["msgs_per_s"]), pts(row), vs_raw, vs_naive, "-", "-",
                  num(row["peak_rss_mb"]), num(row["cpu_s"]))
    live = results.get("live")
    if live:
        lat = live["latency_ms"]
        t.add_row(live["name"] + f" ({live['seconds']:.0f} s)", num(live["messages"]),
                  num(live["seconds"], "{:.1f}"), num(live["msgs_per_s"]), pts(live), "-", "-",
                  num(lat["p50"]), num(lat["p99"]), num(live["peak_rss_mb"]),
                  num(live["cpu_s"]))
    scale = results.get("scale")
    if scale:
        t.add_row(scale["name"] + " (1 reading each)", num(scale["messages"]),
                  num(scale["seconds"], "{:.2f}"), num(scale["msgs_per_s"]), pts(scale), "-",
                  "-", "-", "-", num(scale["peak_rss_mb"]), num(scale["cpu_s"]))
    alerts = results.get("alerts")
    if alerts:
        if alerts.get("error"):
            t.add_row("alert latency: " + alerts["error"][:60], *["-"] * 10)
        else:
            t.add_row(f"alert latency ({alerts.get('received', '')})", "-", "-", "-", "-", "-",
                      "-", num(alerts.get("p50_ms")), num(alerts.get("p99_ms")), "-", "-")
    return t


def targets_text(results: dict[str, Any]) -> list[str]:
    derived = results.get("derived", {})
    labels = {
        "sanitel_vs_raw_pct": ("Sanitel vs raw limit", ">= {}%"),
        "sanitel_vs_naive_x": ("Sanitel vs naive bridge", ">= {}x"),
        "live_p99_ms": ("live p99 publish->stored", "< {} ms"),
        "scale_rss_mb": ("RSS with 10k devices", "< {} MB"),
        "alert_p99_ms": ("alert latency p99", "< {} ms"),
    }
    lines = []
    for key, value in derived.get("figures", {}).items():
        if key not in labels:
            continue
        label, bound = labels[key]
        ok = derived["met"][key]
        mark = "[green]met[/]" if ok else "[red]missed[/]"
        lines.append(f"  {label}: {value} (target {bound.format(TARGETS[key])}) {mark}")
    return lines


def finish(results: dict[str, Any], out: Path, console: Console) -> None:
    results["derived"] = derive(results)
    samples: list[float] = []
    live = results.get("live")
    if live:
        samples = live.pop("latency_samples_ms", [])
        live["latency_percentiles_ms"] = {
            str(p): percentile(samples, p) for p in (*range(0, 100, 5), 99, 99.9, 100)
        }
    console.print(table(results))
    for line in targets_text(results):
        console.print(line)
    drain = results.get("drain", {}).get("sanitel")
    if drain and not drain.get("stored_equals_good"):
        console.print(f"[red]Sanitel stored {drain['points']:,} points, "
                      f"{drain['expected_points']:,} good readings were sent")
    if results.get("failed"):
        console.print(f"[red]failed: {results['failed']}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{results['stamp']}.json"
    text = json.dumps(results, indent=2, default=str)
    path.write_text(text)
    (out / "latest.json").write_text(text)
    console.print(f"results: {path}")
    png = plot(results, samples, out / f"{results['stamp']}.png", console)
    if png:
        console.print(f"plot: {png}")


def plot(results: dict[str, Any], samples: list[float], path: Path,
         console: Console) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        console.print("[yellow]matplotlib is not installed: no plot "
                      "(pip install 'sanitel\\[bench]' or .venv/bin/pip install matplotlib)")
        return None
    fig, (bars, hist) = plt.subplots(1, 2, figsize=(13, 5))
    drain = results.get("drain", {})
    names, rates, colors = [], [], []
    for key, label, color in (("broker", "broker limit\n(mosquitto_sub, C)", "#bbbbbb"),
                              ("raw", "raw limit\n(bare paho)", "#888888"),
                              ("naive", "naive bridge\n(write per msg)", "#d9822b"),
                              ("sanitel", "Sanitel\nsanitel ingest", "#2b7bd9")):
        if key in drain and drain[key].get("msgs_per_s"):
            names.append(label)
            rates.append(drain[key]["msgs_per_s"])
            colors.append(color)
    bars.bar(names, rates, color=colors)
    for x, rate in enumerate(rates):
        bars.text(x, rate, f"{rate:,}", ha="center", va="bottom")
    traffic = results.get("traffic", {})
    bars.set_title(f"Draining a QoS 1 backlog of {traffic.get('messages', 0):,} readings")
    bars.set_ylabel("messages / s")
    if samples:
        live = results["live"]
        upper = max(percentile(samples, 99.9) or 1.0, 1.0)
        hist.hist([min(s, upper) for s in samples], bins=80, color="#2b7bd9")
        for p, style in (("p50", "--"), ("p99", ":")):
            value = live["latency_ms"][p]
            if value is not None:
                hist.axvline(value, color="black", linestyle=style, label=f"{p} {value:.0f} ms")
        hist.set_title(f"Publish -> stored latency, Sanitel at {live['target_rate']:,.0f} msg/s")
        hist.set_xlabel("ms (first seen in InfluxDB - send ts)")
        hist.set_ylabel("points")
        hist.legend()
    else:
        hist.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
