"""Writes the report into a directory: `report.md`, `report.html` (charts embedded as data
URIs), one CSV per table and one PNG per chart."""

from __future__ import annotations

import base64
import csv
import html
import re
from dataclasses import dataclass
from pathlib import Path

from ingest.report.charts import Chart
from ingest.report.tables import Cell, Table


class ReportOutputError(OSError):
    """The output directory cannot be written; the message names it."""


@dataclass(frozen=True, slots=True)
class Document:
    title: str
    subtitle: str
    summary: list[str]
    tables: list[Table]
    charts: list[Chart]

    def charts_after(self, table: str) -> list[Chart]:
        return [chart for chart in self.charts if chart.after == table]


def write(doc: Document, out: Path) -> list[Path]:
    """Every file written, report.md and report.html first."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = [out / "report.md", out / "report.html"]
        written[0].write_text(markdown(doc), encoding="utf-8")
        written[1].write_text(html_page(doc), encoding="utf-8")
        for table in doc.tables:
            path = out / f"{table.name}.csv"
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.writer(handle)
                writer.writerow(table.columns)
                writer.writerows(["" if c is None else c for c in row] for row in table.rows)
            written.append(path)
        for chart in doc.charts:
            (out / f"{chart.name}.png").write_bytes(chart.png)
            written.append(out / f"{chart.name}.png")
    except OSError as exc:
        raise ReportOutputError(f"--out {out}: cannot write the report ({exc.strerror or exc})"
                                ) from None
    return written


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".")  # the tables rounded it already
    if isinstance(value, int):
        return f"{value:,}"
    return value


_UNITS = {"pct": "%", "min": "(min)", "ppm": "(ppm)", "m3": "(m³)", "kwh": "(kWh)",
          "l": "(L)", "wh": "(Wh)", "nh3": "NH3", "h2s": "H2S"}


def heading(column: str) -> str:
    """A CSV column as a reader's heading: `median_ack_min` -> `Median ack (min)`."""
    text = " ".join(_UNITS.get(word, word) for word in column.split("_"))
    return text[:1].upper() + text[1:]


def markdown(doc: Document) -> str:
    lines = [f"# {doc.title}", "", doc.subtitle, "", "## Summary", ""]
    lines += [f"- {line}" for line in doc.summary]
    for table in doc.tables:
        lines += ["", f"## {table.title}", "", f"_{table.note}_ (`{table.name}.csv`)", ""]
        lines += _md_table(table)
        lines += [f"\n![{c.title}]({c.name}.png)" for c in doc.charts_after(table.name)]
    return "\n".join(lines) + "\n"


def _md_table(table: Table) -> list[str]:
    if not table.rows:
        return ["No data in the period."]
    def esc(text: str) -> str:
        return text.replace("|", "\\|")
    head = "| " + " | ".join(heading(c) for c in table.columns) + " |"
    rule = "|" + "|".join("---:" if _numeric(table, i) else "---"
                          for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(esc(_cell(c)) for c in row) + " |" for row in table.rows]
    return [head, rule, *body]


def _numeric(table: Table, column: int) -> bool:
    return any(isinstance(row[column], (int, float)) for row in table.rows)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1a202c;padding:0 1em}h1{margin-bottom:.2em}
.sub{color:#4a5568;margin-top:0}.summary{background:#f7fafc;border-left:4px solid #2b6cb0;
padding:.6em 1.2em}.summary li{margin:.35em 0}table{border-collapse:collapse;width:100%;
font-size:.88em;margin:.5em 0}th,td{padding:.25em .6em;border-bottom:1px solid #e2e8f0}
th{background:#edf2f7;text-align:left}.n{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#4a5568;font-size:.9em}details summary{cursor:pointer;color:#2b6cb0}
img{max-width:100%;margin:.6em 0}td:first-child{white-space:nowrap}
h2{margin-top:1.6em;border-bottom:1px solid #cbd5e0}
"""
#: Tables longer than this show the first rows and fold the rest.
FOLD_AFTER = 25


def html_page(doc: Document) -> str:
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
             f"{html.escape(doc.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(doc.title)}</h1><p class=\"sub\">{html.escape(doc.subtitle)}</p>",
             "<h2>Summary</h2><ul class=\"summary\">",
             *(f"<li>{_bold(html.escape(line))}</li>" for line in doc.summary), "</ul>"]
    for table in doc.tables:
        parts.append(f"<h2 id=\"{table.name}\">{html.escape(table.title)}</h2>"
                     f"<p class=\"note\">{_code(html.escape(table.note))} "
                     f"<a href=\"{table.name}.csv\">{table.name}.csv</a></p>")
        parts += _html_table(table)
        for chart in doc.charts_after(table.name):
            data = base64.b64encode(chart.png).decode("ascii")
            parts.append(f"<img src=\"data:image/png;base64,{data}\" "
                         f"alt=\"{html.escape(chart.title)}\" title=\"{chart.name}.png\">")
    return "\n".join([*parts, "</body></html>"]) + "\n"


def _html_table(table: Table) -> list[str]:
    if not table.rows:
        return ["<p>No data in the period.</p>"]
    numeric = [_numeric(table, i) for i in range(len(table.columns))]
    head = "<tr>" + "".join(f"<th{' class=n' if numeric[i] else ''}>{html.escape(heading(c))}"
                            "</th>" for i, c in enumerate(table.columns)) + "</tr>"
    rows = ["<tr>" + "".join(f"<td{' class=n' if numeric[i] else ''}>{html.escape(_cell(c))}"
                             "</td>" for i, c in enumerate(row)) + "</tr>"
            for row in table.rows]
    out = [f"<table><thead>{head}</thead><tbody>", *rows[:FOLD_AFTER], "</tbody></table>"]
    if len(rows) > FOLD_AFTER:
        out += [f"<details><summary>{len(rows) - FOLD_AFTER} more rows</summary><table>"
                f"<thead>{head}</thead><tbody>", *rows[FOLD_AFTER:], "</tbody></table></details>"]
    return out


def _bold(text: str) -> str:
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)


def _code(text: str) -> str:
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)

