"""`sanitel reload`: a running `sanitel ingest` reloads its registry and alert rules.

Through its HTTP port (`POST /-/reload`, which answers with the outcome) when it serves one,
else by SIGHUP to the pid in `<data_dir>/ingest.pid` (the outcome is then in its log).
"""

from __future__ import annotations

import os
import signal
from typing import Annotated

import httpx
import typer

from ingest.service import pid_file
from ingest.settings import Settings
from sanitel.cli_support import ConfigOption, fail, load_settings

UrlOption = Annotated[str | None, typer.Option(
    "--url", help="The ingest's HTTP address (default: from http.host and http.port).")]
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def reload(config: ConfigOption = None, url: UrlOption = None) -> None:
    """Reload the registry and alert rules of a running `sanitel ingest` (like SIGHUP)."""
    settings = load_settings(config, "sanitel reload")
    target = url or _settings_url(settings)
    if target is not None:
        try:
            response = httpx.post(target.rstrip("/") + "/-/reload", timeout=60)
        except httpx.HTTPError as exc:
            if url is not None:
                fail(f"cannot reach {target} ({exc})", 1, "sanitel reload")
            typer.echo(f"sanitel reload: no answer at {target} ({exc}); using the pid file",
                       err=True)
        else:
            _report(target, response)
            return
    _signal(settings)


def _settings_url(settings: Settings) -> str | None:
    http = settings.http
    if not http.enabled or http.port == 0:
        return None
    host = _ANY_ADDRESS.get(http.host, http.host)
    return f"http://[{host}]:{http.port}" if ":" in host else f"http://{host}:{http.port}"


def _report(target: str, response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        fail(f"{target} answered HTTP {response.status_code}, not a reload outcome", 1,
             "sanitel reload")
    for error in body.get("errors", []):
        typer.echo(f"sanitel reload: {error}", err=True)
    typer.echo(f"sanitel reload: {body.get('summary', '')}")
    if not body.get("ok"):
        raise typer.Exit(1)


def _signal(settings: Settings) -> None:
    path = pid_file(settings)
    try:
        pid = int(path.read_text().strip())
    except (OSError, ValueError) as exc:
        fail(f"no running ingest found: pid file {path} cannot be read ({exc}); is data_dir "
             "(SANITEL_DATA_DIR) the one of the running ingest?", 1, "sanitel reload")
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        fail(f"pid file {path} names pid {pid}, which is not running", 1, "sanitel reload")
    except PermissionError:
        fail(f"not allowed to signal pid {pid} (from {path}); run as its user", 1,
             "sanitel reload")
    typer.echo(f"sanitel reload: sent SIGHUP to pid {pid}; its log says the outcome")
