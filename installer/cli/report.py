"""report: the verification report security staff file (issue 14 point 3): one self-contained HTML page (and, with
--json, the same facts as JSON), for an archive or for what a kit has installed."""

import json
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from installer.cli.options import TRUST_OPT, Command, Opt
from installer.cli.verify import _kit_target
from installer.errors import LocalEnvironmentError, UsageError
from installer.fsutil import write_atomic
from installer.kit.layout import Kit, resolve_keys
from installer.report.gather import archive_report, kit_report
from installer.report.html import render_html, verdict_line
from installer.textsafe import printable


@dataclass(frozen=True)
class Written:
    """A report written: where, its first line (the verdict), and the facts it shows."""

    out: str
    verdict: str
    report: Dict[str, Any]


def run_report(archive: Optional[str] = None, trust: Sequence[str] = (), kit: Optional[str] = None,
               out: Optional[str] = None, quiet: bool = False, **_: Any) -> Written:
    """Verify (as `verify`, or as `verify --kit` for an installed version), write the page, and end with
    verify's exit code: a failed check still writes its report, whose first line says it failed and why."""
    if not out:
        raise UsageError("name the page to write with --out FILE (for example --out report.html)")
    if os.path.isdir(out):
        raise UsageError("--out %s is a folder; name the file to write" % out)
    target = _kit_target(archive, kit)
    if kit is not None and target is not None:
        report, error = _kit(kit, trust, *target)
    elif archive is None:
        raise UsageError("name an ARCHIVE to report on, or give --kit DIR for what is installed there")
    else:
        k = Kit.existing(kit) if kit else None
        index = None
        if k is not None:
            from installer.kit.deltaindex import KitIndex

            index = KitIndex(k)
        report, error = archive_report(archive, resolve_keys(trust, k), index, show_progress=not quiet)
    page = render_html(report).encode("utf-8")
    try:
        write_atomic(out, page, 0o644)
    except OSError as exc:
        raise LocalEnvironmentError("cannot write the report %s: %s" % (out, exc.strerror or exc)) from exc
    if error is not None:  # verify's exit code, and the sentence; the page says the same first
        raise type(error)("%s (the report %s says so)" % (error.message, out), error.problems)
    return Written(out, verdict_line(report), report)


def _kit(kit: str, trust: Sequence[str], name: Optional[str], version: Optional[str]) -> Any:
    k = Kit.existing(kit)
    keys = resolve_keys(trust, k)
    names = [name] if name else k.names()
    if len(names) != 1:
        raise UsageError("the kit %s holds %s; name one: report NAME[@VERSION] --kit %s"
                         % (kit, ", ".join(names) or "no bundles", kit))
    chosen = version or k.current_version(names[0])
    if chosen is None or chosen not in k.versions(names[0]):
        raise UsageError("%s%s is not installed in %s" % (names[0], "@" + version if version else "", kit))
    return kit_report(kit, keys, names[0], chosen)


def text_report(r: Written) -> List[str]:
    return [printable(r.verdict), "wrote the report %s" % r.out]


def json_report(r: Written) -> Dict[str, Any]:
    return {"out": r.out, "verdict": r.verdict, "report": json.loads(json.dumps(r.report))}


COMMANDS = [Command("report", "verify an archive (or, with --kit, an installed version) and write the report staff "
                              "file: one self-contained HTML page",
                    [Opt("archive", metavar="[ARCHIVE|NAME[@VERSION]]"), TRUST_OPT,
                     Opt("--kit", metavar="DIR", help="use this kit's trust store (and its files for deltas); "
                                                       "without an archive, report on an installed version"),
                     Opt("--out", metavar="FILE", help="the HTML page to write (required)")],
                    run_report, text_report, json_report)]
