"""The report's queries: InfluxQL over the raw measurements, answers turned into the plain
rows the figure modules take. One step per query, reported to `on_step` for progress."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from devices.registry import DEVICE_TYPES
from devices.sites import Registry
from ingest.report.alert_figures import AlertRow, Incident, incidents
from ingest.report.influx_reader import InfluxReader, Row
from ingest.report.period import Period
from ingest.report.sequence_figures import (
    COLLECTION_MIN_DROP_KG,
    REFILL_MIN_RISE_PCT,
    SprayerTally,
    StationTally,
    steps_query,
)
from ingest.report.site_figures import (
    Availability,
    OdorHourRow,
    OdorSite,
    PeopleRow,
    ToiletRow,
    availability,
    meter_increase,
    odor_hours,
)
from ingest.report.thresholds import WarningLevels

#: Days per query for the queries that return a row per hour and device.
CHUNK_DAYS = 7
NOT_REGISTERED = "(not in registry)"
#: How far before the period a meter's last reading is looked for (as the rollups do).
METER_LOOKBACK_MS = 24 * 3_600_000

StepCallback = Callable[[str], None]


@dataclass
class ReportData:
    """Everything the report shows, as plain figures."""

    period: Period
    registry: Registry
    district: str | None
    #: When the report is made: a period reaching past it expects readings up to it.
    now_ms: int
    people: list[PeopleRow] = field(default_factory=list)
    odor: dict[str, OdorSite] = field(default_factory=dict)
    stations: list[StationTally] = field(default_factory=list)
    sprayers: list[SprayerTally] = field(default_factory=list)
    toilets: list[ToiletRow] = field(default_factory=list)
    availability: list[Availability] = field(default_factory=list)
    incidents: list[Incident] = field(default_factory=list)

    def district_of(self, site_id: str) -> str:
        site = self.registry.sites.get(site_id)
        return site.district if site else NOT_REGISTERED

    def site_name(self, site_id: str) -> str:
        site = self.registry.sites.get(site_id)
        return site.name if site else site_id

    def wanted(self, site_id: str) -> bool:
        return self.district is None or self.district_of(site_id) == self.district


def steps(period: Period) -> int:
    """How many times `collect` calls `on_step`."""
    chunks = len(list(period.chunks(CHUNK_DAYS)))
    return 1 + chunks + 2 + 1 + len(DEVICE_TYPES) + 1


def collect(reader: InfluxReader, data: ReportData, levels: WarningLevels,
            on_step: StepCallback) -> ReportData:
    period = data.period
    on_step("people served")
    data.people = [row for row in _people(reader, period) if data.wanted(row.site_id)]
    odor_rows: list[OdorHourRow] = []
    for start, end in period.chunks(CHUNK_DAYS):
        on_step("odor hours")
        odor_rows += (r for r in _odor(reader, start, end, period) if data.wanted(r.site_id))
    data.odor = odor_hours(odor_rows, levels)
    on_step("transfer stations")
    data.stations = _stations(reader, period, data)
    on_step("sprayers")
    data.sprayers = _sprayers(reader, period, data)
    on_step("toilet terminals")
    data.toilets = [row for row in _toilets(reader, period) if data.wanted(row.site_id)]
    data.availability = _availability(reader, data, on_step)
    on_step("alerts")
    data.incidents = [i for i in incidents(_alert_rows(reader, period)) if data.wanted(i.site_id)]
    return data


def _between(start_ms: int, end_ms: int) -> str:
    return f"time >= {start_ms}ms AND time < {end_ms}ms"


def _people(reader: InfluxReader, period: Period) -> Iterator[PeopleRow]:
    query = (f'SELECT sum("entries") AS entries FROM "people_flow" WHERE '
             f'{_between(period.start_ms, period.end_ms)} GROUP BY time(1d), "site_id" '
             f"fill(none) tz('{period.tz.key}')")
    for row in reader.rows(query):
        if row["entries"] is not None:
            yield PeopleRow(row["site_id"], period.local_day(row["time"]).isoformat(),
                            int(row["entries"]))


def _odor(reader: InfluxReader, start: int, end: int, period: Period) -> Iterator[OdorHourRow]:
    offset = period.hour_offset_ms // 60_000
    bucket = f"time(1h, {offset}m)" if offset else "time(1h)"
    query = (f'SELECT mean("nh3_ppm") AS nh3, mean("h2s_ppm") AS h2s FROM "odor" WHERE '
             f'{_between(start, end)} GROUP BY {bucket}, "device_id", "site_id" fill(none)')
    for row in reader.rows(query):
        yield OdorHourRow(row["device_id"], row["site_id"], row["time"], row["nh3"], row["h2s"])


def _stations(reader: InfluxReader, period: Period, data: ReportData) -> list[StationTally]:
    where = _between(period.start_ms, period.end_ms)
    tallies: dict[str, StationTally] = {}
    for row in reader.rows(f'SELECT max("fill_pct") AS peak FROM "station" WHERE {where} '
                           'GROUP BY "device_id", "site_id"'):
        tally = tallies[row["device_id"]] = StationTally(row["device_id"], row["site_id"])
        tally.peak_fill_pct = row["peak"]
    drops = steps_query("station", "weight_kg", where, f'"d" <= -{COLLECTION_MIN_DROP_KG}')
    for row in reader.rows(drops):
        tally = tallies.setdefault(row["device_id"],
                                   StationTally(row["device_id"], row["site_id"]))
        tally.collections, tally.hauled_kg = int(row["n"]), -float(row["total"])
    return [t for t in tallies.values() if data.wanted(t.site_id)]


def _sprayers(reader: InfluxReader, period: Period, data: ReportData) -> list[SprayerTally]:
    where = _between(period.start_ms, period.end_ms)
    tallies: dict[str, SprayerTally] = {}
    for row in reader.rows(f'SELECT sum("sprays") AS sprays, min("liquid_pct") AS low FROM '
                           f'"sprayer" WHERE {where} GROUP BY "device_id", "site_id"'):
        tally = tallies[row["device_id"]] = SprayerTally(row["device_id"], row["site_id"])
        tally.sprays, tally.min_liquid_pct = _int(row["sprays"]), row["low"]
    rises = steps_query("sprayer", "liquid_pct", where, f'"d" >= {REFILL_MIN_RISE_PCT}')
    for row in reader.rows(rises):
        tally = tallies.setdefault(row["device_id"],
                                   SprayerTally(row["device_id"], row["site_id"]))
        tally.refills = int(row["n"])
    return [t for t in tallies.values() if data.wanted(t.site_id)]


def _toilets(reader: InfluxReader, period: Period) -> Iterator[ToiletRow]:
    """Empty when no toilet terminal has reported (or the measurement does not exist yet)."""
    start, end = period.start_ms, period.end_ms
    before = {row["site_id"]: row for row in reader.rows(
        'SELECT last("water_m3") AS water, last("power_kwh") AS power FROM "toilet" WHERE '
        f'{_between(start - METER_LOOKBACK_MS, start)} GROUP BY "site_id"')}
    query = ('SELECT first("water_m3") AS water_first, last("water_m3") AS water, '
             'first("power_kwh") AS power_first, last("power_kwh") AS power, '
             'count("cleaned_by") AS cleanings, sum("rating_good") AS good, '
             'sum("rating_ok") AS ok, sum("rating_bad") AS bad FROM "toilet" WHERE '
             f'{_between(start, end)} GROUP BY "site_id"')
    for row in reader.rows(query):
        prior = before.get(row["site_id"], {})
        yield ToiletRow(
            row["site_id"],
            meter_increase(row.get("water"), prior.get("water"), row.get("water_first")),
            meter_increase(row.get("power"), prior.get("power"), row.get("power_first")),
            _int(row.get("cleanings")), _int(row.get("good")), _int(row.get("ok")),
            _int(row.get("bad")))


def _availability(reader: InfluxReader, data: ReportData, on_step: StepCallback
                  ) -> list[Availability]:
    period, received = data.period, {}
    for device_type, model in DEVICE_TYPES.items():
        on_step(f"availability ({model.measurement})")
        counted = _required_field(device_type)
        query = (f'SELECT count("{counted}") AS n FROM "{model.measurement}" WHERE '
                 f'{_between(period.start_ms, period.end_ms)} GROUP BY "device_id"')
        received.update({row["device_id"]: int(row["n"]) for row in reader.rows(query)})
    intervals = {d.id: d.interval_s for d in data.registry.devices.values()
                 if data.wanted(d.site.id)}
    # A period that ends in the future expects readings only up to now.
    elapsed_s = (min(period.end_ms, data.now_ms) - period.start_ms) / 1000
    return availability(received, intervals, max(0.0, elapsed_s))


def _required_field(device_type: str) -> str:
    """The field every reading of the type has (its first required key)."""
    model = DEVICE_TYPES[device_type]
    return next(name for name, info in model.model_fields.items() if info.is_required())


def _alert_rows(reader: InfluxReader, period: Period) -> Iterator[AlertRow]:
    query = (f'SELECT "state", "alert_id" FROM "alerts" WHERE '
             f'{_between(period.start_ms, period.end_ms)} GROUP BY "rule", "site_id"')
    for row in reader.rows(query):
        if row["alert_id"] and row["state"]:
            yield AlertRow(row["alert_id"], row["time"], row["state"], row["rule"],
                           row["site_id"])


def _int(value: Row | float | int | None) -> int:
    return int(value) if isinstance(value, (int, float)) else 0
