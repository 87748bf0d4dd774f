"""Template variables: district and site (and the pipeline's instance), from `SHOW TAG VALUES`.

Both are multi-value with "All"; Grafana renders them in regex form, `(a|b)`, so
queries match them with `=~ /^$site$/`.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import QueryVariable
from grafana_foundation_sdk.models.dashboard import VariableOption, VariableRefresh, VariableSort

from dashboards.influxql import DATASOURCE

SiteKind = str  # "toilet" | "transfer_station", the `site_kind` tag


def _tag_values(name: str, label: str, query: str) -> QueryVariable:
    return (
        QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def district(kind: SiteKind | None = None) -> QueryVariable:
    """Districts that have sites (of `kind`, when given)."""
    where = f" WHERE \"site_kind\" = '{kind}'" if kind else ""
    query = f'SHOW TAG VALUES FROM "sites" WITH KEY = "district"{where}'
    return _tag_values("district", "District", query)


def site(kind: SiteKind | None = None) -> QueryVariable:
    """Sites of the chosen districts (and of `kind`, when given)."""
    where = ['"district" =~ /^$district$/']
    if kind:
        where.append(f"\"site_kind\" = '{kind}'")
    query = f'SHOW TAG VALUES FROM "sites" WITH KEY = "site_id" WHERE {" AND ".join(where)}'
    return _tag_values("site", "Site", query)


def instance() -> QueryVariable:
    """Pipeline instances (`sanitel ingest` processes) that reported health figures."""
    return _tag_values(
        "instance", "Instance", 'SHOW TAG VALUES FROM "pipeline" WITH KEY = "instance"'
    )
