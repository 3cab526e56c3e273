"""SBOM documents checked against their specifications by independent implementations (tests only).

- SPDX 2.3 JSON: spdx-tools (the SPDX project's own Python library) parses the document into its model and
  validates it in full: mandatory fields, SPDXIDs, checksums (a file's SHA1 is mandatory in 2.3), license
  expressions against its bundled license list, relationships (the document must DESCRIBE something);
- CycloneDX 1.6 JSON: cyclonedx-python-lib's strict validator checks the document against the official 1.6 JSON
  schema it ships (with the SPDX license and JSF schemas that one references), no network.

Both run offline (tests/integration/test_sbom.py runs them in a network namespace of their own too).
"""

import json
from typing import List


def spdx_problems(data: bytes) -> List[str]:
    """Every problem spdx-tools finds in an SPDX 2.3 JSON document ([] when it is valid)."""
    from spdx_tools.spdx.parser.error import SPDXParsingError
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    doc = json.loads(data)
    if doc.get("spdxVersion") != "SPDX-2.3":
        return ["spdxVersion is %r, not SPDX-2.3" % doc.get("spdxVersion")]
    try:
        parsed = JsonLikeDictParser().parse(doc)
    except SPDXParsingError as exc:
        return ["not parsed: %s" % m for m in exc.get_messages()]
    return [m.validation_message for m in validate_full_spdx_document(parsed)]


def cyclonedx_problems(data: bytes) -> List[str]:
    """What the CycloneDX 1.6 JSON schema refuses in a document ([] when it is valid)."""
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    if json.loads(data).get("specVersion") != "1.6":
        return ["specVersion is not 1.6"]
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode("utf-8"))
    return [] if error is None else [str(error)[:2000]]


def main(paths: List[str]) -> int:
    """python -m tests.helpers.sbomcheck FILE...: {file: [problems]} as JSON (tests run it without a network)."""
    out = {}
    for path in paths:
        with open(path, "rb") as fh:
            data = fh.read()
        out[path] = spdx_problems(data) if path.endswith(".spdx.json") else cyclonedx_problems(data)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
