"""Upload the datasource and the dashboards to a running Grafana, idempotently.

Each object is read first and written only when it differs, so a second push
changes nothing: no new dashboard version, no datasource update. Objects Grafana
provisioned from files are read-only there and are left as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from dashboards.document import FOLDER_TITLE, FOLDER_UID
from dashboards.influxql import DATASOURCE_UID

Action = Literal["created", "updated", "unchanged", "kept (provisioned)"]
#: Keys Grafana adds to a stored dashboard; not part of what we compare.
_STORED_ONLY = ("id", "version")


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message names the object and the URL."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # folder | datasource | dashboard
    name: str
    action: Action

    def __str__(self) -> str:
        return f"{self.kind} {self.name}: {self.action}"


def credential_from_env(environ: Mapping[str, str] = os.environ) -> str | tuple[str, str] | None:
    """`GRAFANA_TOKEN`, else `GRAFANA_USER` + `GRAFANA_PASSWORD`, else none (URL userinfo)."""
    token = environ.get("GRAFANA_TOKEN")
    if token:
        return token
    user, password = environ.get("GRAFANA_USER"), environ.get("GRAFANA_PASSWORD")
    if user and password is not None:
        return (user, password)
    return None


def connect(url: str, credential: str | tuple[str, str] | None) -> GrafanaApi:
    api: GrafanaApi = GrafanaApi.from_url(url, credential=credential, timeout=10.0)
    return api


def _call(method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call an (untyped) grafana-client method."""
    return method(*args, **kwargs)


def _get(method: Callable[..., Any], *args: Any) -> dict[str, Any] | None:
    """The object, or None when Grafana answers 404."""
    try:
        found: dict[str, Any] = _call(method, *args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise
    return found


def ensure_folder(api: GrafanaApi) -> Change:
    if _get(api.folder.get_folder, FOLDER_UID) is not None:
        return Change("folder", FOLDER_TITLE, "unchanged")
    _call(api.folder.create_folder, FOLDER_TITLE, uid=FOLDER_UID)
    return Change("folder", FOLDER_TITLE, "created")


def datasource_differs(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Plain fields by value; secrets (never readable back) by whether they are set."""
    for key, value in wanted.items():
        if key == "secureJsonData":
            set_fields = {k for k, on in stored.get("secureJsonFields", {}).items() if on}
            if set(value) - set_fields:
                return True
        elif key == "jsonData":
            stored_json = stored.get("jsonData") or {}
            if any(stored_json.get(k) != v for k, v in value.items()):
                return True
        elif stored.get(key) != value:
            return True
    return False


def ensure_datasource(api: GrafanaApi, wanted: dict[str, Any]) -> Change:
    name = str(wanted["name"])
    stored = _get(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if stored is None:
        _call(api.datasource.create_datasource, wanted)
        return Change("datasource", name, "created")
    if not datasource_differs(stored, wanted):
        return Change("datasource", name, "unchanged")
    if stored.get("readOnly"):
        return Change("datasource", name, "kept (provisioned)")
    _call(api.datasource.update_datasource_by_uid, DATASOURCE_UID, wanted)
    return Change("datasource", name, "updated")


def _comparable(board: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in board.items() if k not in _STORED_ONLY}


def ensure_dashboard(api: GrafanaApi, board: dict[str, Any]) -> Change:
    title, uid = str(board["title"]), str(board["uid"])
    stored = _get(api.dashboard.get_dashboard, uid)
    if stored is not None:
        meta = stored.get("meta", {})
        same_place = meta.get("folderUid") == FOLDER_UID
        if same_place and _comparable(stored.get("dashboard", {})) == _comparable(board):
            return Change("dashboard", title, "unchanged")
        if meta.get("provisioned"):
            return Change("dashboard", title, "kept (provisioned)")
    _call(api.dashboard.update_dashboard, {
        "dashboard": _comparable(board),
        "folderUid": FOLDER_UID,
        "overwrite": True,
        "message": "sanitel dashboards push",
    })
    return Change("dashboard", title, "created" if stored is None else "updated")


def _dashboard_step(api: GrafanaApi, board: dict[str, Any]) -> Callable[[], Change]:
    return lambda: ensure_dashboard(api, board)


def push(
    api: GrafanaApi, datasource: dict[str, Any], boards: Mapping[str, dict[str, Any]]
) -> list[Change]:
    """Folder, datasource, then every dashboard; what happened to each.

    Raises `PushError` naming the object Grafana refused (or the unreachable URL).
    """
    steps: list[tuple[str, Callable[[], Change]]] = [
        (f"folder {FOLDER_TITLE!r}", lambda: ensure_folder(api)),
        (f"datasource {datasource['name']!r}", lambda: ensure_datasource(api, datasource)),
    ]
    steps += [(f"dashboard {board['title']!r}", _dashboard_step(api, board))
              for board in boards.values()]
    changes = []
    for what, step in steps:
        try:
            changes.append(step())
        except GrafanaException as exc:
            raise PushError(f"{what}: Grafana at {api.client.url} refused it: {exc}") from None
        except OSError as exc:
            raise PushError(f"{what}: cannot reach Grafana at {api.client.url} ({exc})") from None
    return changes
