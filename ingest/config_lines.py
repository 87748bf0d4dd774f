"""The line of a YAML file that an error message about it points at.

The registry and rule loaders name what is wrong by site, device, rule and key (`site
'WC-0001' device 'WC-0001-OD-1' key 'type'`, `rule 'odor_nh3_high' key 'above'`); this
finds that place in the file's text so that a reload error can also say the line.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_STEP = re.compile(r"\b(site|device|rule|key) (?:'([^']*)'|\"([^\"]*)\"|#(\d+))")
_LIST_OF = {"site": "sites", "device": "devices"}


def with_line(message: str, path: Path) -> str:
    """`message` with ` (line N)` added when the place it names is found in `path`."""
    if re.search(r"\bline \d+", message):
        return message  # YAML syntax errors say it already
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
    except (OSError, yaml.YAMLError):
        return message
    line = find_line(root, message)
    return message if line is None else f"{message} (line {line})"


def find_line(root: Node | None, message: str) -> int | None:
    node, line = root, None
    for kind, quoted, double, index in _STEP.findall(message):
        name = quoted or double
        if kind in _LIST_OF:
            found = _item(_value(node, _LIST_OF[kind]), name, index)
        elif kind == "rule":
            found = _value(_value(node, "rules"), name)
        else:
            found = node
            for part in name.split("."):  # `key 'levels.warning'`
                key = _value(found, part, key_node=True)
                if key is None:
                    break
                line, found = key.start_mark.line + 1, _value(found, part)
        if found is None:
            break
        node = found
        line = line if kind == "key" else found.start_mark.line + 1
    return line


def _value(node: Node | None, key: str, key_node: bool = False) -> Node | None:
    if not isinstance(node, MappingNode):
        return None
    for k, v in node.value:
        if isinstance(k, ScalarNode) and k.value == key:
            return k if key_node else v
    return None


def _item(node: Node | None, ident: str, index: str) -> Node | None:
    if not isinstance(node, SequenceNode):
        return None
    if index:
        position = int(index) - 1
        item: Node | None = node.value[position] if 0 <= position < len(node.value) else None
        return item
    for item in node.value:
        found = _value(item, "id")
        if isinstance(found, ScalarNode) and found.value == ident:
            return item
    return None
