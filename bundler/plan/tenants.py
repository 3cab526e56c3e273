"""Per-tenant override files, checked against the component's schema before they are bundled."""

from typing import Iterable, List

from installer.errors import InvalidInput

from bundler.plan.manifest import TenantEntry
from bundler.plan.schemas import located_errors
from bundler.plan.yamlsrc import format_path, load_yaml


def tenant_problems(component: str, path: str, label: str) -> List[str]:
    """Every problem in one tenant file, each naming file, line, tenant and key."""
    doc = load_yaml(path, label)
    found = []
    for line, key_path, message in located_errors(doc, "tenants", "%s.schema.json" % component):
        if len(key_path) >= 2 and key_path[0] == "overrides":
            where = "tenant %r" % (key_path[1],)
            if len(key_path) > 2:
                where += ", key %s" % format_path(key_path[2:])
        else:
            where = format_path(key_path) or "top level"
        found.append("%s:%d: %s: %s" % (label, line, where, message))
    return found


def check_tenant_files(entries: Iterable[TenantEntry]) -> None:
    problems: List[str] = []
    for entry in entries:
        problems += tenant_problems(entry.component, entry.source_path, entry.source)
    if problems:
        raise InvalidInput("tenant override files are not valid", problems)
