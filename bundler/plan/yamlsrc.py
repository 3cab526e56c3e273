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
    except FileNotFoundError as exc:
        raise InvalidInput("%s does not exist" % label) from exc
    except OSError as exc:
        raise InvalidInput("cannot read %s: %s" % (label, exc.strerror)) from exc
    if len(raw) > MAX_YAML_BYTES:
        raise InvalidInput("%s is larger than 16 MiB" % label)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("%s is not UTF-8 text" % label) from exc
    return parse_yaml(text, label)


MAX_NODES = 100000  # aliases can make a small file expand into millions of values


def parse_yaml(text: str, label: str) -> Located:
    lines: Dict[Path, int] = {}
    loader = None
    try:
        loader = yaml.SafeLoader(text)  # refuses control characters: inside the try
        node = loader.get_single_node()
        if node is None:
            raise InvalidInput("%s is empty" % label)
        data = _build(loader, node, (), lines, label, [0])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = ":%d" % (mark.line + 1) if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInput("%s%s: not valid YAML: %s" % (label, where, problem)) from exc
    except RecursionError as exc:
        raise InvalidInput("%s: not valid YAML here: it is nested too deeply" % label) from exc
    finally:
        if loader is not None:
            loader.dispose()
    return Located(data, lines, label)


def _build(loader: yaml.SafeLoader, node: yaml.Node, path: Path, lines: Dict[Path, int], label: str,
           count: List[int]) -> Any:
    count[0] += 1
    if count[0] > MAX_NODES:
        raise InvalidInput("%s: more than %d values (aliases expanding?); refused" % (label, MAX_NODES))
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        out: Dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(loader, key_node, label)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise InvalidInput("%s:%d: a mapping key is not a scalar" % (label, key_node.start_mark.line + 1))
            if key in out:
                raise InvalidInput("%s:%d: %s: duplicate key %r" % (
                    label, key_node.start_mark.line + 1, format_path(path) or "top level", key))
            out[key] = _build(loader, value_node, path + (key,), lines, label, count)
            lines[path + (key,)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        items: List[Any] = []
        for i, child in enumerate(node.value):
            items.append(_build(loader, child, path + (i,), lines, label, count))
        return items
    return _scalar(loader, node, label)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, label: str) -> Any:
    """PyYAML's constructors raise plain Python errors for values like `2026-13-01` or `!!int ''`."""
    try:
        value = loader.construct_object(node, deep=True)
        if isinstance(value, int) and value.bit_length() > 1024:  # no limit of ours is that large
            raise ValueError("a number of %d bits" % value.bit_length())
        return value
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        raise InvalidInput("%s:%d: the value %r cannot be read (%s)" % (
            label, node.start_mark.line + 1, str(getattr(node, "value", ""))[:60], type(exc).__name__)) from exc
