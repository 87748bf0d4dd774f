"""The crews file (SPEC section 8): who acknowledges the alerts of which districts.

```yaml
crews:
  - {name: crew-central, districts: [Jinjiang, Qingyang]}
```

A crew's name is its broker username and the last segment of `sanitation/v1/_ack/{name}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from devices.sites import ID_PATTERN


class CrewsError(ValueError):
    """The crews file cannot be used; the message names the file, the crew and the key."""


class _CrewEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Annotated[str, Field(pattern=ID_PATTERN)]
    districts: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


class _CrewsFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    crews: list[_CrewEntry]


@dataclass(frozen=True, slots=True)
class Crew:
    name: str
    districts: frozenset[str]


class Crews:
    """The crews by name; `covers(crew, district)` says whether a crew may act there."""

    def __init__(self, crews: Iterable[Crew], source: str = "<crews>") -> None:
        self.source = source
        self.by_name: dict[str, Crew] = {}
        for crew in crews:
            if crew.name in self.by_name:
                raise CrewsError(f"{source}: crew {crew.name!r} is listed twice")
            self.by_name[crew.name] = crew

    def __len__(self) -> int:
        return len(self.by_name)

    def __iter__(self) -> Any:
        return iter(self.by_name.values())

    def get(self, name: str) -> Crew | None:
        return self.by_name.get(name)

    def covers(self, name: str, district: str) -> bool:
        crew = self.by_name.get(name)
        return crew is not None and district in crew.districts

    @classmethod
    def from_dict(cls, data: Any, source: str = "<crews>") -> Crews:
        try:
            parsed = _CrewsFile.model_validate(data)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            raise CrewsError(
                f"{source}: {where}: {error['msg']}; expected `crews:` with a list of "
                f"{{name, districts}}, name matching {ID_PATTERN}"
            ) from None
        return cls((Crew(e.name, frozenset(e.districts)) for e in parsed.crews), source)

    @classmethod
    def load(cls, path: str | Path) -> Crews:
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise CrewsError(f"crews file {path}: cannot be read ({exc.strerror})") from None
        except yaml.YAMLError as exc:
            raise CrewsError(f"crews file {path}: not valid YAML ({exc})") from None
        return cls.from_dict(data, f"crews file {path}")

    def check_districts(self, known: Iterable[str]) -> None:
        """Raise `CrewsError` for a district no site of the registry is in (a typo would
        leave that crew without alerts)."""
        districts = set(known)
        for crew in self.by_name.values():
            unknown = sorted(crew.districts - districts)
            if unknown:
                raise CrewsError(
                    f"{self.source}: crew {crew.name!r}: district {unknown[0]!r} has no site "
                    f"in the registry; known districts: {', '.join(sorted(districts))}"
                )
