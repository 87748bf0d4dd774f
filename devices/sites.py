"""The site registry (SPEC section 4): every site and device the city has fitted.

Only registered devices are accepted. A bad file raises `RegistryError` naming the
file, the site, the device and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from devices.open_hours import DEFAULT_OPEN_HOURS, OpenHours, OpenHoursError
from devices.registry import DEVICE_TYPES

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)

#: Threshold overrides: rule name -> {key: value}; checked against the rules by the alerts.
AlertOverrides = dict[str, dict[str, Any]]


class RegistryError(ValueError):
    """The registry file cannot be used; the message says where and what would be accepted."""


class DeviceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    type: str
    interval_s: Annotated[float, Field(gt=0, le=86_400)] = 60
    alerts: AlertOverrides = Field(default_factory=dict)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in DEVICE_TYPES:
            raise ValueError(f"unknown device type {value!r}; one of {', '.join(DEVICE_TYPES)}")
        return value


class SiteEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    kind: Literal["toilet", "transfer_station"]
    name: Annotated[str, Field(min_length=1)]
    # A tag value: InfluxDB line protocol cannot carry a trailing backslash or a newline.
    district: Annotated[str, Field(min_length=1, pattern=r"^[^\n\r\t]*[^\\\n\r\t]$")]
    lat: Annotated[float, Field(ge=-90, le=90)]
    lon: Annotated[float, Field(ge=-180, le=180)]
    devices: list[DeviceEntry] = Field(default_factory=list)
    alerts: AlertOverrides = Field(default_factory=dict)
    #: v1.1: "HH:MM-HH:MM" in the city's time zone (setting `timezone`), for
    #: `toilet_cleaning_overdue`; "22:00-06:00" runs past midnight.
    open_hours: str = DEFAULT_OPEN_HOURS

    @field_validator("open_hours")
    @classmethod
    def _readable_hours(cls, value: str) -> str:
        try:
            OpenHours.parse(value)
        except OpenHoursError as exc:
            raise ValueError(str(exc)) from None
        return value

    @property
    def hours(self) -> OpenHours:
        return OpenHours.parse(self.open_hours)


class RegistryFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    sites: list[SiteEntry]


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device with its site, as the pipeline looks it up by id."""

    id: str
    type: str
    interval_s: float
    site: SiteEntry
    alerts: AlertOverrides
    #: Line-protocol tag set `site_id=..,device_id=..,district=..,site_kind=..`, escaped once.
    tags: str


def escape_tag(value: str) -> str:
    """Escape a tag key or value for InfluxDB line protocol.

    InfluxDB unescapes only `\\,`, `\\=` and `\\ ` in tags; a backslash is kept as it is
    (so a value must not end in one: the registry refuses such a district).
    """
    escaped = value.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")
    # A newline would end the point; written as the two characters `\n`, it cannot.
    return escaped.replace("\n", "\\n")


class Registry:
    """Sites and devices, indexed by device id."""

    def __init__(self, sites: list[SiteEntry], source: str = "<registry>") -> None:
        self.sites: dict[str, SiteEntry] = {}
        self.devices: dict[str, Device] = {}
        for site in sites:
            if site.id in self.sites:
                raise RegistryError(
                    f"{source}: site {site.id!r} is listed twice; site ids must be unique"
                )
            self.sites[site.id] = site
            for entry in site.devices:
                if entry.id in self.devices:
                    other = self.devices[entry.id].site.id
                    raise RegistryError(
                        f"{source}: device {entry.id!r} of site {site.id!r} is already registered "
                        f"at site {other!r}; device ids must be unique"
                    )
                tags = ",".join(
                    f"{key}={escape_tag(value)}"
                    for key, value in (
                        ("district", site.district),
                        ("device_id", entry.id),
                        ("site_id", site.id),
                        ("site_kind", site.kind),
                    )
                )
                self.devices[entry.id] = Device(
                    entry.id, entry.type, entry.interval_s, site, entry.alerts, tags
                )

    def __len__(self) -> int:
        return len(self.devices)

    @classmethod
    def from_dict(cls, data: Any, source: str = "<registry>") -> Registry:
        if not isinstance(data, dict):
            raise RegistryError(f"{source}: expected a mapping with a 'sites' list at the top")
        try:
            parsed = RegistryFile.model_validate(data)
        except ValidationError as exc:
            raise RegistryError(f"{source}: {_describe(exc, data)}") from None
        return cls(parsed.sites, source)

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"registry file {path}: cannot be read ({exc.strerror})") from None
        try:
            # libyaml's loader when present: a city of thousands of devices loads 10x faster.
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as exc:
            raise RegistryError(f"registry file {path}: not valid YAML ({exc})") from None
        return cls.from_dict(data, f"registry file {path}")

    def to_dict(self) -> dict[str, Any]:
        return {"sites": [site.model_dump(mode="json") for site in self.sites.values()]}


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """Name the site, device and key of each error, e.g. `site 'WC-0001' device 'X': key 'type'`."""
    parts = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = []
        node: Any = data
        while loc:
            key = loc.pop(0)
            node = node[key] if _indexable(node, key) else None
            if key in ("sites", "devices") and loc and isinstance(loc[0], int):
                index = int(loc.pop(0))
                node = node[index] if _indexable(node, index) else None
                label = "site" if key == "sites" else "device"
                ident = node.get("id") if isinstance(node, dict) else None
                where.append(f"{label} {ident!r}" if ident else f"{label} #{index + 1}")
            else:
                where.append(f"key {key!r}")
        parts.append(f"{' '.join(where) or 'top level'}: {error['msg']}")
    return "; ".join(parts)


def _indexable(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def valid_id(value: str) -> bool:
    return _ID_RE.fullmatch(value) is not None
