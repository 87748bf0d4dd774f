"""The tests' query helpers: a query error fails the test; it never reads as "no rows"
(which a test waiting for nothing, or counting what is missing, would take for a pass)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from sanitel.local_servers import Influxd, ServerError
from tests.conftest import wait_rows
from tests.streams import stored_seqs


def test_a_bad_query_fails_at_once(influxd: Influxd) -> None:
    db = f"t_{uuid.uuid4().hex[:8]}"
    influxd.query(f'CREATE DATABASE "{db}"', db="")
    with pytest.raises((ServerError, httpx.HTTPStatusError), match=r"400|InfluxQL error"):
        wait_rows(influxd, "SELEC seq FRM odor", db, timeout=5)


def test_a_missing_database_is_no_rows_yet(influxd: Influxd) -> None:
    from tests.conftest import rows_or_none_yet

    assert rows_or_none_yet(influxd, "SELECT * FROM odor", f"t_{uuid.uuid4().hex}") == []


class RefusingInflux:
    """An InfluxDB that answers every query with an error (say, auth on, no credentials)."""

    def rows(self, query: str, db: str) -> list[object]:
        raise ServerError(f"InfluxQL error for {query!r}: authorization failed")


def test_stored_seqs_fails_on_a_query_error() -> None:
    with pytest.raises(ServerError, match="authorization failed"):
        stored_seqs(RefusingInflux(), "sanitation", 0)
