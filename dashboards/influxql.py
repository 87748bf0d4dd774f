"""InfluxQL raw-query targets for Grafana panels, and the datasource they query.

`grafana-foundation-sdk` ships no InfluxDB query builder; `InfluxQL` fills the gap
with the target JSON Grafana's InfluxDB datasource stores for a raw InfluxQL
query: `{"refId", "query", "rawQuery": true, "resultFormat"}`.
"""

from __future__ import annotations

from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

#: The datasource every panel queries; provisioning and `push` create it under this uid.
DATASOURCE_UID = "sanitel-influxdb"
DATASOURCE_TYPE = "influxdb"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

ResultFormat = Literal["time_series", "table"]

#: Grafana's filters, spelled once: dashboard variables in regex form (multi-value safe).
DISTRICT_MATCH = '"district" =~ /^$district$/'
SITE_MATCH = '"site_id" =~ /^$site$/'
PLACE_MATCH = f"{DISTRICT_MATCH} AND {SITE_MATCH}"
#: Readings measurements, for queries about every device whatever its type.
READINGS = "/^(people_flow|odor|station|sprayer|toilet)$/"


class InfluxQLQuery(cogvariants.Dataquery):
    """One raw InfluxQL target of a panel."""

    def __init__(
        self, query: str, ref_id: str = "A", result_format: ResultFormat = "time_series"
    ) -> None:
        self.query = query
        self.ref_id = ref_id
        self.result_format: ResultFormat = result_format
        self.alias: str | None = None

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InfluxQLQuery:
        query = cls(str(data.get("query", "")), str(data.get("refId", "A")))
        if data.get("resultFormat") == "table":
            query.result_format = "table"
        if "alias" in data:
            query.alias = str(data["alias"])
        return query


class InfluxQL(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder: `InfluxQL('SELECT ...').ref_id('B').table()`."""

    def __init__(self, query: str) -> None:
        # source keeps queries on several indented lines; Grafana shows them as one line
        lines = (line.strip() for line in query.strip().splitlines())
        self._internal = InfluxQLQuery(" ".join(line for line in lines if line))

    def build(self) -> InfluxQLQuery:
        return self._internal

    def ref_id(self, ref_id: str) -> Self:
        self._internal.ref_id = ref_id
        return self

    def table(self) -> Self:
        self._internal.result_format = "table"
        return self

    def alias(self, alias: str) -> Self:
        """Series name pattern, e.g. `$tag_site_id`."""
        self._internal.alias = alias
        return self


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json)
)
