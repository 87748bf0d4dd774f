"""The department's work report (SPEC section 9): the period's figures from the raw readings.

`period` reads the dates, `influx_reader` asks InfluxDB (InfluxQL over the 1.x `/query`
API, which 1.x, 2.x and 3.x serve), `collect` turns the answers into plain rows, the
`*_figures` modules compute the figures from plain rows (no server needed), `tables` lays
them out, and `document` / `charts` write `report.md`, `report.html`, the CSVs and PNGs.
"""
