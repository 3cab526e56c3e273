"""offline-bundle against the pipelines users would otherwise write (issue 7).

    .venv/bin/python -m bench [--size-mb 1500] [--repeat 3] [--double] [--out bench/latest.json]

Seeds a local registry (the "source", reached through --mirror docker.io=HOST) with a realistic image set,
then runs each of our operations and its baseline alternately, timing wall clock and sampling the peak RSS of
the whole process tree. Writes --out (JSON, every sample) and bench/RESULTS.md (medians, ratios, targets).
Everything runs on loopback, under one work folder that is removed on exit, Ctrl-C or SIGTERM.
See bench/README.md for what each line compares.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.config import BenchError, MiB, OPS, ROOT, log
from bench.measure import Workspace
from bench.report import evaluate, machine_info, markdown
from bench.suite import Suite

# ------------------------------------------------------------------------------------------------

def check_tools(args) -> None:
    missing = [t for t in ("skopeo", "zstd", "tar", "sha256sum", "docker-registry", "unshare", "cp", "sync")
               if not shutil.which(t)]
    if missing:
        raise BenchError("missing programs: %s (apt-get install -y docker-registry skopeo zstd)" % ", ".join(missing))
    if not os.access(args.ob, os.X_OK):
        raise BenchError("%s is not an executable offline-bundle (pass --ob PATH)" % args.ob)


def check_space(parent: str, sizes: Sequence[int], data_dir: Optional[Path]) -> None:
    # live at once: source registry, cache, archive, warm/delta archive, baseline OCI + tar.zst or kit + site
    need = (6 * max(sizes) + 1024) * MiB
    if data_dir:
        need += sum(sizes) * MiB
    free = shutil.disk_usage(parent).free
    if free < need:
        raise BenchError("not enough free space in %s: about %d MiB needed, %d MiB free (use --workdir elsewhere or "
                         "a smaller --size-mb)" % (parent, need >> 20, free >> 20))


def main(argv=None) -> int:
    default_ob = Path(sys.executable).parent / "offline-bundle"
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--size-mb", type=int, default=1500, help="compressed size of the image set (MiB)")
    p.add_argument("--repeat", type=int, default=3, help="alternating repetitions of every pair")
    p.add_argument("--double", action="store_true",
                   help="also run at 2x --size-mb (build and install only) to show peak RSS stays flat")
    p.add_argument("--double-ops", default="build,install", help="operations run at 2x with --double")
    p.add_argument("--ops", default=",".join(OPS), help="operations to run (comma-separated: %s)" % ", ".join(OPS))
    p.add_argument("--out", default=str(ROOT / "bench" / "latest.json"), help="JSON output")
    p.add_argument("--markdown", default=str(ROOT / "bench" / "RESULTS.md"), help="Markdown table output ('' for none)")
    p.add_argument("--levels", default="1,3,6", help="zstd levels to measure on the set's tar ('' to skip)")
    p.add_argument("--profile", nargs="?", const=str(ROOT / "bench" / "results"), default=None, metavar="DIR",
                   help="also profile one build and one install (py-spy if installed, else cProfile) into DIR")
    p.add_argument("--workdir", default=os.environ.get("TMPDIR") or "/tmp", help="parent of the work folder")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="keep the seeded source registry here and reuse it on later runs of the same size")
    p.add_argument("--keep", action="store_true", help="keep the work folder (logs, scripts) for inspection")
    p.add_argument("--ob", default=str(default_ob), help="the offline-bundle executable")
    p.add_argument("--note", default="", help="a line to put at the top of RESULTS.md")
    args = p.parse_args(argv)
    if args.size_mb < 20:
        p.error("--size-mb must be at least 20")
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()]
    double_ops = [o.strip() for o in args.double_ops.split(",") if o.strip()]
    bad = [o for o in ops + double_ops if o not in OPS]
    if bad:
        p.error("unknown operation(s) %s; choose from %s" % (", ".join(bad), ", ".join(OPS)))
    args.levels = [int(x) for x in args.levels.split(",") if x.strip()]
    if args.data_dir:
        args.data_dir = args.data_dir.resolve()
        args.data_dir.mkdir(parents=True, exist_ok=True)
    sizes = [args.size_mb] + ([2 * args.size_mb] if args.double else [])

    def on_term(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)

    ws = None
    doc = {"params": {"size_mb": args.size_mb, "repeat": args.repeat, "double": args.double, "ops": ops,
                      "double_ops": double_ops if args.double else [], "levels": args.levels, "note": args.note},
           "started": datetime.datetime.now().isoformat(timespec="seconds"), "complete": False, "sizes": []}
    try:
        check_tools(args)
        os.makedirs(args.workdir, exist_ok=True)
        check_space(args.workdir, sizes, args.data_dir)
        ws = Workspace(args.workdir, args.keep)
        from tests.helpers.images import _unshare_ok
        args.private_cache = _unshare_ok()
        if not args.private_cache:
            log("warning: cannot unshare a mount namespace: skopeo will use the machine's blob cache")
        doc["machine"] = machine_info(args)
        log("work folder %s; sizes %s MB; %d repetitions" % (ws.root, sizes, args.repeat))
        for i, size in enumerate(sizes):
            # levels and profiles are measured once, at the first size
            suite = Suite(ws, args, size, ops if i == 0 else double_ops, levels=args.levels if i == 0 else [],
                          profile=args.profile if i == 0 else None)
            try:
                doc["sizes"].append(suite.run())
            except BaseException:
                if suite.samples:  # keep what was measured before the failure
                    doc["sizes"].append(dict(suite.result(), partial=True))
                raise
            finally:
                suite.teardown()
            write_json(args.out, doc)
        doc["complete"] = True
        doc["finished"] = datetime.datetime.now().isoformat(timespec="seconds")
        doc["machine"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
        doc["verdicts"] = evaluate(doc["sizes"])
        write_json(args.out, doc)
        if args.markdown:
            Path(args.markdown).write_text(markdown(doc))
        sys.stdout.write(markdown(doc))
        log("wrote %s%s" % (args.out, " and %s" % args.markdown if args.markdown else ""))
        return 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        return 130
    except BenchError as exc:
        log("error: %s" % exc)
        return 1
    except Exception as exc:  # a bug or an unexpected tool failure: say so, with the traceback
        import traceback
        traceback.print_exc()
        log("error: %s: %s" % (type(exc).__name__, str(exc)[-1500:]))
        return 1
    finally:
        if ws is not None:
            ws.close()
        if doc["sizes"] and not doc["complete"]:
            write_json(args.out, doc)
            log("partial results in %s" % args.out)


def write_json(path: str, doc: dict) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = "%s.tmp" % path
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
