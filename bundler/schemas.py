"""JSON Schema validation at the edges (manifests, tenant files), with located messages."""

import json
from functools import lru_cache
from typing import List, Tuple

import jsonschema

from .resources import schema_path
from .yamlsrc import Located


@lru_cache(maxsize=None)
def validator(*parts: str) -> jsonschema.Draft202012Validator:
    with open(schema_path(*parts), encoding="utf-8") as fh:
        schema = json.load(fh)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)
        return "unknown key%s %s" % ("s" if len(extra) > 1 else "", ", ".join(repr(k) for k in extra))
    if error.validator == "required":
        return error.message.replace(" is a required property", " is required")
    if error.validator == "propertyNames":
        return "%r is not allowed here" % (error.instance,)
    if error.validator == "pattern":
        desc = error.schema.get("description")
        return "%r does not match the required form%s" % (error.instance, " (%s)" % desc if desc else "")
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return "needs exactly one of: name+repo+version, ref (oci://)+version, or path"
    return error.message


def located_errors(doc: Located, *schema: str) -> List[Tuple[int, tuple, str]]:
    """Every schema violation in ``doc`` as (line, key path, message), in document order."""
    found = []
    for error in validator(*schema).iter_errors(doc.data):
        path = tuple(error.absolute_path)
        if error.validator == "propertyNames":
            # jsonschema reports the parent; name the offending key itself.
            path = path + (error.instance,)
        found.append((doc.line(path), path, _message(error)))
    found.sort(key=lambda item: item[0])
    return found


def problems(doc: Located, *schema: str) -> List[str]:
    """Every schema violation as 'file:line: key.path: message'."""
    return ["%s: %s" % (doc.where(path), message) for _, path, message in located_errors(doc, *schema)]
