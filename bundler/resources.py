"""Where the schemas and the default manifest live: the source tree, else the installed wheel."""

import os

_HERE = os.path.dirname(os.path.abspath(__file__))


def data_dir(kind: str) -> str:
    """``kind`` is 'schemas' or 'manifests'."""
    for candidate in (os.path.join(_HERE, "_data", kind), os.path.join(os.path.dirname(_HERE), kind)):
        if os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError("the %s folder is missing from this installation" % kind)


def schema_path(*parts: str) -> str:
    return os.path.join(data_dir("schemas"), *parts)


def default_manifest() -> str:
    """./manifests/telemetry-storage.yaml when it exists, else the installed copy."""
    local = os.path.join("manifests", "telemetry-storage.yaml")
    if os.path.isfile(local):
        return local
    return os.path.join(data_dir("manifests"), "telemetry-storage.yaml")
