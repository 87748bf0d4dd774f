"""The published contract (`docs/asyncapi.yaml`, `docs/schemas/`) stays what the models
generate, its examples validate, and its schemas encode SPEC section 3's ranges."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from devices.schema import all_schemas
from sanitel.asyncapi import render

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
REGENERATE = ("run `sanitel devices asyncapi --out docs/asyncapi.yaml` and "
              "`sanitel devices schema --out docs/schemas`")


def load_asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCS / "asyncapi.yaml").read_text("utf-8"))
    return document


def test_committed_asyncapi_equals_what_the_models_generate() -> None:
    assert (DOCS / "asyncapi.yaml").read_text("utf-8") == render(), REGENERATE


def test_committed_schemas_equal_what_the_models_generate() -> None:
    committed = {path.name.removesuffix(".json"): json.loads(path.read_text("utf-8"))
                 for path in (DOCS / "schemas").glob("*.json")}
    assert committed == all_schemas(), REGENERATE


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        assert part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def test_every_reference_resolves_and_every_channel_is_operated() -> None:
    document = load_asyncapi()
    assert document["asyncapi"].startswith("3.")
    for ref in refs(document):
        resolve(document, ref)
    operated = {op["channel"]["$ref"].rsplit("/", 1)[1] for op in document["operations"].values()}
    assert operated == set(document["channels"])
    for name, channel in document["channels"].items():
        placeholders = {part[1:-1] for part in channel["address"].split("/") if part[:1] == "{"}
        assert placeholders == set(channel.get("parameters", {})), name


def message_cases() -> list[tuple[str, dict[str, Any], Any]]:
    document = load_asyncapi()
    cases = []
    for name, message in document["components"]["messages"].items():
        schema = resolve(document, message["payload"]["$ref"])
        assert message["examples"], f"message {name} has no example"
        cases += [(name, schema, example["payload"]) for example in message["examples"]]
    return cases


@pytest.mark.parametrize(("name", "schema", "payload"), message_cases(),
                         ids=lambda value: value if isinstance(value, str) else "")
def test_every_example_payload_validates_against_its_schema(
    name: str, schema: dict[str, Any], payload: Any
) -> None:
    jsonschema.Draft202012Validator(schema).validate(payload)


#: Payloads SPEC section 3 refuses, each with the rule it breaks.
SPEC_REFUSED = [
    ("people_counter", {}, "entries is required"),
    ("people_counter", {"entries": 10_001}, "entries 0..10000"),
    ("people_counter", {"entries": 1.5}, "entries is an int"),
    ("people_counter", {"entries": 1, "occupancy": 1001}, "occupancy 0..1000"),
    ("odor", {"nh3_ppm": 100.5}, "nh3_ppm 0..100"),
    ("odor", {"nh3_ppm": "1"}, "a number, not a string"),
    ("odor", {"nh3_ppm": 1, "temp_c": -41}, "temp_c -40..85"),
    ("station_terminal", {"fill_pct": 50, "compactor": "broken"}, "compactor's states"),
    ("station_terminal", {"fill_pct": 50, "fault_code": "x" * 33}, "fault_code <= 32"),
    ("station_terminal", {"fill_pct": 50, "door_open": 1}, "door_open is a bool"),
    ("sprayer", {"liquid_pct": 50, "state": "gone"}, "sprayer's states"),
    ("sprayer", {"liquid_pct": 50, "sprays": 100_001}, "sprays 0..100000"),
    ("odor", {"nh3_ppm": 1, "battery_pct": 101}, "battery_pct 0..100"),
    ("odor", {"nh3_ppm": 1, "rssi_dbm": 1}, "rssi_dbm -150..0"),
    ("odor", {"nh3_ppm": 1, "seq": -1}, "seq >= 0"),
    ("toilet_terminal", {"stalls_total": 4}, "stalls_free is required"),
    ("toilet_terminal", {"stalls_free": 501}, "stalls_free 0..500"),
    ("toilet_terminal", {"stalls_free": 0, "stalls_total": 0}, "stalls_total 1..500"),
    ("toilet_terminal", {"stalls_free": 1, "paper_pct": 101}, "paper_pct 0..100"),
    ("toilet_terminal", {"stalls_free": 1, "cleaned_by": "x" * 33}, "cleaned_by <= 32"),
    ("toilet_terminal", {"stalls_free": 1, "rating_bad": 10_001}, "rating_bad 0..10000"),
]


@pytest.mark.parametrize(("device_type", "payload", "rule"), SPEC_REFUSED)
def test_the_schemas_refuse_what_spec_section_3_refuses(
    device_type: str, payload: dict[str, Any], rule: str
) -> None:
    schema = json.loads((DOCS / "schemas" / f"{device_type}.telemetry.json").read_text("utf-8"))
    assert not jsonschema.Draft202012Validator(schema).is_valid(payload), rule


def test_unknown_keys_are_allowed_as_spec_section_3_says() -> None:
    schema = json.loads((DOCS / "schemas" / "odor.telemetry.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(schema).validate({"nh3_ppm": 1, "firmware": "2.4.1"})


def test_cli_prints_the_committed_schema_and_names_a_bad_type() -> None:
    command = [sys.executable, "-m", "sanitel.cli", "devices", "schema"]
    done = subprocess.run([*command, "odor"], capture_output=True, text=True, check=True)
    committed = (DOCS / "schemas" / "odor.telemetry.json").read_text("utf-8")
    assert json.loads(done.stdout) == json.loads(committed)
    bad = subprocess.run([*command, "toaster"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "'toaster'" in bad.stderr and "odor" in bad.stderr
