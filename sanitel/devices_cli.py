"""`sanitel devices`: the device contract, machine-readable, for vendors' firmware."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from devices.registry import DEVICE_TYPES
from devices.schema import UnknownDeviceType, all_schemas, status_schema, telemetry_schema
from sanitel.cli_support import fail

app = typer.Typer(
    help="The device contract: payload JSON Schemas and the AsyncAPI document of the MQTT API.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Every payload schema as `DIR/<device_type>.telemetry.json` and `DIR/status.json`."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, schema in all_schemas().items():
        path = directory / f"{stem}.json"
        path.write_text(_dumps(schema), encoding="utf-8")
        written.append(path)
    return written


@app.command()
def schema(
    device_type: Annotated[str | None, typer.Argument(
        help=f"A device type ({', '.join(DEVICE_TYPES)}) or `status`; all when omitted.",
        show_default=False,
    )] = None,
    out: Annotated[Path | None, typer.Option(
        help="Write one file per payload into this directory instead of printing.",
    )] = None,
) -> None:
    """Print the JSON Schema (2020-12) of a device type's telemetry payload."""
    if out is not None:
        for path in write_schemas(out):
            typer.echo(f"wrote {path}")
        return
    if device_type is None:
        typer.echo(_dumps(all_schemas()), nl=False)
        return
    try:
        document = status_schema() if device_type == "status" else telemetry_schema(device_type)
    except UnknownDeviceType as exc:
        fail(str(exc), 2, "sanitel devices schema")
    typer.echo(_dumps(document), nl=False)


@app.command()
def asyncapi(
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of printing.")]
    = None,
) -> None:
    """Print the AsyncAPI 3.0 document of the MQTT API (what `docs/asyncapi.yaml` holds)."""
    from sanitel.asyncapi import render

    text = render()
    if out is None:
        typer.echo(text, nl=False)
        return
    out.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {out}")
