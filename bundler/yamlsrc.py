"""YAML loading that remembers where every value came from, for messages that name a line.

PyYAML's safe constructor builds the scalars; we build mappings and sequences ourselves so
that duplicate keys are errors (YAML says keys are unique; PyYAML keeps the last silently).
"""

from typing import Any, Dict, List, Tuple

import yaml

from installer.errors import InvalidInput

Path = Tuple[Any, ...]
MAX_YAML_BYTES = 16 * 1024 * 1024


class Located:
    """A parsed document plus the line (1-based) of every value, keyed by its path."""

    def __init__(self, data: Any, lines: Dict[Path, int], source: str) -> None:
        self.data = data
        self.lines = lines
        self.source = source

    def line(self, path: Path) -> int:
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def where(self, path: Path) -> str:
        shown = format_path(path)
        return "%s:%d%s" % (self.source, self.line(path), ": " + shown if shown else "")


def format_path(path: Path) -> str:
    out = ""
    for part in path:
        out += "[%d]" % part if isinstance(part, int) else ("." if out else "") + str(part)
    return out


def load_yaml(path: str, label: str = "") -> Located:
    label = label or path
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput("%s does not exist" % label)
    except OSError as exc:
        raise InvalidInput("cannot read %s: %s" % (label, exc.strerror))
    if len(raw) > MAX_YAML_BYTES:
        raise InvalidInput("%s is larger than 16 MiB" % label)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("%s is not UTF-8 text" % label)
    return parse_yaml(text, label)


def parse_yaml(text: str, label: str) -> Located:
    loader = yaml.SafeLoader(text)
    lines: Dict[Path, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            raise InvalidInput("%s is empty" % label)
        data = _build(loader, node, (), lines, label)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ":%d" % (mark.line + 1) if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput("%s%s: not valid YAML: %s" % (label, where, problem))
    finally:
        loader.dispose()
    return Located(data, lines, label)


def _build(loader, node, path: Path, lines: Dict[Path, int], label: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise InvalidInput("%s:%d: a mapping key is not a scalar" % (label, key_node.start_mark.line + 1))
            if key in out:
                raise InvalidInput("%s:%d: %s: duplicate key %r" % (
                    label, key_node.start_mark.line + 1, format_path(path) or "top level", key))
            out[key] = _build(loader, value_node, path + (key,), lines, label)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        items: List[Any] = []
        for i, child in enumerate(node.value):
            items.append(_build(loader, child, path + (i,), lines, label))
        return items
    return loader.construct_object(node, deep=True)
