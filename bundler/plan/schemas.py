"""JSON Schema validation at the edges (manifests, tenant files), with located messages."""

import json
import re
from functools import lru_cache
from typing import Any, Iterator, List, Tuple

import jsonschema

from bundler.resources import schema_path
from bundler.plan.yamlsrc import Located, Path

# jsonschema ships no types (pyproject: ignore_missing_imports): its validators and errors are Any here.


def _strict_pattern(validator: Any, pattern: str, instance: object, schema: Any) -> Iterator[Any]:
    """`pattern` as JSON Schema means it: a final `$` is the end of the string.

    Python's `$` also matches before a trailing newline, so "demo\n" would pass "^[a-z]+$".
    """
    if not isinstance(instance, str):
        return
    compiled = pattern[:-1] + r"\Z" if pattern.endswith("$") and not pattern.endswith("\\$") else pattern
    if not re.search(compiled, instance):
        yield jsonschema.ValidationError("%r does not match %r" % (instance, pattern))


_Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _strict_pattern})


@lru_cache(maxsize=None)
def validator(*parts: str) -> Any:
    with open(schema_path(*parts), encoding="utf-8") as fh:
        schema = json.load(fh)
    return _Validator(schema, format_checker=jsonschema.FormatChecker())


def _message(error: jsonschema.ValidationError) -> str:
    message: str = error.message
    if error.validator == "required":
        return message.replace(" is a required property", " is required")
    if error.validator == "pattern":
        desc = error.schema.get("description")
        return "%r does not match the required form%s" % (error.instance, " (%s)" % desc if desc else "")
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        keys = [b.get("required", [None])[0] for b in error.validator_value if len(b.get("required", [])) == 1]
        if len(keys) == len(error.validator_value):  # each branch is one key: e.g. tenant, file or site
            return "needs exactly one of: %s" % ", ".join(keys)
        return "needs exactly one of: name+repo+version, ref (oci://)+version, or path"
    return message


def _expand(error: jsonschema.ValidationError) -> Iterator[Tuple[Path, str]]:
    """(path, message) pairs; unknown keys and bad key names point at the key's own line."""
    path: Path = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(error.schema.get("properties", {}))
        patterns = error.schema.get("patternProperties", {})
        for key in error.instance:
            if key not in known and not any(re.search(p, str(key)) for p in patterns):
                allowed = " (allowed: %s)" % ", ".join(sorted(known)) if known and len(known) <= 12 else ""
                yield path + (key,), "unknown key%s" % allowed
        return
    if "propertyNames" in error.schema_path:
        allowed = error.schema.get("enum")
        hint = " (allowed: %s)" % ", ".join(map(str, allowed)) if allowed else ""
        desc = error.schema.get("description")
        hint = hint or (" (%s)" % desc if desc else "")
        yield path + (error.instance,), "%r is not allowed here%s" % (error.instance, hint)
        return
    yield path, _message(error)


def located_errors(doc: Located, *schema: str) -> List[Tuple[int, Path, str]]:
    """Every schema violation in ``doc`` as (line, key path, message), in document order."""
    found: List[Tuple[int, Path, str]] = []
    for error in validator(*schema).iter_errors(doc.data):
        for path, message in _expand(error):
            found.append((doc.line(path), path, message))
    found.sort(key=lambda item: item[0])
    return found


def problems(doc: Located, *schema: str) -> List[str]:
    """Every schema violation as 'file:line: key.path: message'."""
    return ["%s: %s" % (doc.where(path), message) for _, path, message in located_errors(doc, *schema)]
