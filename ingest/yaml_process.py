"""Parsing a large YAML file in a child process, for a reload in a running pipeline.

libyaml composes a whole document in one C call that holds the GIL: a registry of a few
thousand devices would stop the event loop (and every reading) for a few hundred
milliseconds, even from a thread. A child Python parses it instead and hands back JSON,
which the parent reads in a few milliseconds. Values JSON cannot carry (a date written
without quotes) are refused, naming the key, rather than turned into text.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson

_CHILD = r"""
import json, sys, yaml
def refuse(value):
    raise TypeError(f"value {value!r} ({type(value).__name__}) is not text, a number, a "
                    "boolean, a list or a mapping; quote it")
try:
    with open(sys.argv[1], encoding="utf-8") as handle:
        text = handle.read()
except OSError as exc:
    print(f"cannot be read ({exc.strerror})", file=sys.stderr, end="")
    sys.exit(3)
try:
    data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    sys.stdout.write(json.dumps(data, default=refuse))
except yaml.YAMLError as exc:
    print(f"not valid YAML ({exc})", file=sys.stderr, end="")
    sys.exit(4)
except (TypeError, ValueError) as exc:
    print(str(exc), file=sys.stderr, end="")
    sys.exit(5)
"""


class YamlFileError(ValueError):
    """The file cannot be read or parsed; the message says why (without the file name)."""


async def load_yaml_in_child(path: Path) -> Any:
    """The file's data, parsed by a child Python; raises `YamlFileError`."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL)
    out, err = await child.communicate()
    if child.returncode != 0:
        raise YamlFileError(err.decode(errors="replace").strip() or
                            f"the parser exited with {child.returncode}")
    return orjson.loads(out)
