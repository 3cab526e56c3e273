"""Each operation of ours and its Unix-pipeline baseline, run alternately."""

import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from bench.config import BenchError, MiB, SKOPEO_CACHE, log
from bench.data import seed_source, write_manifests
from bench.measure import Measured, Workspace, rmtree, run_measured, run_quiet
from bench.profiles import summarize_cprofile, summarize_pyspy
from bench.zstdlevels import zstd_levels

# ------------------------------------------------------------------------------------------------
# the operations and their baselines

class Suite:
    def __init__(self, ws: Workspace, args, size_mb: int, ops: Sequence[str], levels: Sequence[int] = (),
                 profile: Optional[str] = None) -> None:
        self.ws, self.args, self.size_mb, self.ops = ws, args, size_mb, list(ops)
        self.levels, self.profile_dir = list(levels), profile
        self.src = None
        self.ob = args.ob
        self.samples: Dict[str, Dict[str, list]] = {}
        self.checks: Dict[str, list] = {"warm_blob_fetches": [], "site_digests_agree": [], "cold_blob_fetches": [],
                                        "baseline_blob_fetches": []}
        self.extra: Dict[str, object] = {}

    # -- helpers
    def add(self, op: str, side: str, m: Measured, **extra) -> None:
        steps = script_steps(m.stderr)
        if steps:
            extra["steps"] = steps
        entry = m.to_json()
        entry.update(extra)
        self.samples.setdefault(op, {}).setdefault(side, []).append(entry)
        shown = dict(extra)
        if "steps" in shown:
            shown["steps"] = ",".join("%s:%.2f" % kv for kv in shown["steps"].items())
        log("  %-13s %-8s %7.2f s  peak RSS %6.1f MB%s" % (op, side, m.wall, m.peak_kb / 1024,
                                                         "".join("  %s=%s" % kv for kv in shown.items())))

    def skopeo_wrap(self, script: Path) -> List[str]:
        """bash SCRIPT in a private mount namespace with an empty tmpfs over skopeo's blob-info cache."""
        if self.args.private_cache:
            return ["unshare", "-m", "sh", "-c",
                    'mount -t tmpfs none %s && exec bash -euo pipefail "$0"' % SKOPEO_CACHE, str(script)]
        return ["bash", "-euo", "pipefail", str(script)]

    def script(self, name: str, steps: List[tuple]) -> Path:
        """A bash script of (label, command) steps; each step's wall time goes to stderr as '@@step LABEL T0 T1'."""
        path = self.ws.path("scripts", name + ".sh")
        path.parent.mkdir(exist_ok=True)
        body = []
        for label, cmd in steps:
            body += ["__t0=$EPOCHREALTIME", cmd, 'echo "@@step %s $__t0 $EPOCHREALTIME" >&2' % label]
        path.write_text("\n".join(body) + "\n")
        return path

    def ob_build(self, label: str, manifest: Path, out: Path, cache: Path, *extra) -> Measured:
        out.mkdir(parents=True, exist_ok=True)
        argv = [self.ob, "build", manifest, "--key", self.key, "--out", out, "--cache", cache,
                "--mirror", "docker.io=%s" % self.src.host, "--insecure-registry", self.src.host,
                "--quiet"] + list(extra)
        return run_measured(self.ws, label, argv)

    def archive_in(self, out: Path, delta: bool = False) -> Path:
        pattern = "*.delta.bundle.tar.zst" if delta else "*[0-9].bundle.tar.zst"
        found = sorted(out.glob(pattern))
        if len(found) != 1:
            raise BenchError("expected one archive in %s, found %s" % (out, [p.name for p in found]))
        return found[0]

    def extract_lines(self, archive: Path, dest: Path) -> List[str]:
        """The by-hand check: sidecar, then zstd -dc | tar -x, then sha256sum -c inside."""
        return [("sha256sum-sidecar", "cd %s && sha256sum -c --strict --quiet %s" % (q(archive.parent),
                                                                                    q(archive.name + ".sha256"))),
                ("zstd|tar", "mkdir -p %s && zstd -dcq %s | tar -x -C %s" % (q(dest), q(archive.name), q(dest))),
                ("sha256sum-SHA256SUMS", "cd %s && sha256sum -c --strict --quiet SHA256SUMS" % q(dest))]

    # -- setup
    def setup(self) -> None:
        ws = self.ws
        self.src, self.seed = seed_source(ws, self.size_mb, self.args.data_dir)
        self.manifests = write_manifests(ws, self.seed)
        keys = ws.path("keys")
        if not (keys / "bundle.key").exists():
            run_quiet(ws, [self.ob, "keygen", "--out", keys, "--quiet"])
        self.key, self.pub = keys / "bundle.key", keys / "bundle.pub"
        self.v1_refs = [r for r in self.seed["refs"] if r["v1"]]

    # -- one repetition of every operation, ours then the baseline
    def repetition(self, rep: int) -> None:
        ws, n = self.ws, self.size_mb
        d = ws.path("rep-%d-%d" % (n, rep))
        d.mkdir()
        cache, out = d / "cache", d / "out"
        need_archive = any(op in self.ops for op in ("verify", "install", "install_push", "warm_rebuild", "delta",
                                                     "sbom_cost"))

        # build, cold: a fresh --cache; the baseline: skopeo copy --all per image, tar | zstd -T0, sha256sum
        if "build" in self.ops or need_archive:
            mark = self.src.mark()
            m = self.ob_build("build-ours-%d-%d" % (n, rep), self.manifests["v1"], out, cache)
            fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
            self.checks["cold_blob_fetches"].append(fetched)
            archive = self.archive_in(out)
            self.add("build", "ours", m, archive_mb=round(archive.stat().st_size / MiB, 1), blob_fetches=fetched)
            cold = m
        if "build" in self.ops:
            self.baseline_build(d, rep)

        # what SBOMs cost (issue 14): the cold build above against the same cold build with --no-sbom
        if "sbom_cost" in self.ops:
            self.add("sbom_cost", "ours", cold)
            o, c = d / "out-no-sbom", d / "cache-no-sbom"
            m = self.ob_build("no-sbom-%d-%d" % (n, rep), self.manifests["v1"], o, c, "--no-sbom")
            self.add("sbom_cost", "baseline", m)
            rmtree(o)
            rmtree(c)

        # warm rebuild: the same command again (same --cache, same --out), nothing changed upstream;
        # the registry must serve no blob, and the archive must come out byte for byte the same
        if "warm_rebuild" in self.ops:
            before = sidecar(archive)
            mark = self.src.mark()
            m = self.ob_build("warm-ours-%d-%d" % (n, rep), self.manifests["v1"], out, cache)
            fetched = self.src.blob_fetches(self.src.requests_since(mark))
            self.checks["warm_blob_fetches"].append(len(fetched))
            same = sidecar(self.archive_in(out)) == before
            self.checks.setdefault("warm_same_bytes", []).append(same)
            self.add("warm_rebuild", "ours", m, blob_fetches=len(fetched), same_bytes=same)

        # delta after one layer changed vs the full build of that version, both from a copy of the warm cache
        if "delta" in self.ops:
            for side in ("ours", "full"):
                c = d / ("cache-" + side)
                subprocess.run(["cp", "-al", str(cache), str(c)], check=True)
                o = d / ("out-" + side)
                extra = ["--delta-from", str(archive)] if side == "ours" else []
                mark = self.src.mark()
                m = self.ob_build("delta-%s-%d-%d" % (side, n, rep), self.manifests["v2"], o, c, *extra)
                fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
                made = self.archive_in(o, delta=side == "ours")
                self.add("delta", "ours" if side == "ours" else "baseline", m,
                         archive_mb=round(made.stat().st_size / MiB, 2), blob_fetches=fetched)
                rmtree(c)
                rmtree(o)

        if "verify" in self.ops:
            m = run_measured(ws, "verify-ours-%d-%d" % (n, rep),
                             [self.ob, "verify", archive, "--trust", self.pub, "--quiet"])
            self.add("verify", "ours", m)
            x = d / "x-verify"
            m = run_measured(ws, "verify-base-%d-%d" % (n, rep),
                             ["bash", "-euo", "pipefail", self.script("verify", self.extract_lines(archive, x))])
            self.add("verify", "baseline", m)
            rmtree(x)

        if "install" in self.ops:
            kit = d / "kit"
            m = run_measured(ws, "install-ours-%d-%d" % (n, rep),
                             [self.ob, "install", archive, "--kit", kit, "--trust", self.pub, "--quiet"])
            self.add("install", "ours", m)
            rmtree(kit)
            x = d / "x-install"
            script = self.script("install", self.extract_lines(archive, x) + [("sync", "sync")])
            m = run_measured(ws, "install-base-%d-%d" % (n, rep), ["bash", "-euo", "pipefail", script])
            self.add("install", "baseline", m)
            rmtree(x)

        if "install_push" in self.ops:
            self.install_push(d, archive, rep)
        rmtree(d)

    def baseline_build(self, d: Path, rep: int) -> None:
        oci = d / "base" / "images"
        lines = [("mkdir", "mkdir -p %s" % q(d / "base"))]
        for r in self.v1_refs:
            lines.append(("skopeo", "skopeo copy --quiet --all --src-tls-verify=false --src-no-creds "
                          "docker://%s/%s:%s oci:%s:%s"
                          % (self.src.host, r["repository"], r["tag"], q(oci),
                             "docker.io/%s:%s" % (r["repository"], r["tag"]))))
        # the configs and tenant files travel too (a copy: they are a few KiB)
        lines.append(("cp", "cp -r %s %s"
                      % (q(self.ws.path("manifest", "telemetry-storage")), q(d / "base" / "config"))))
        lines.append(("tar|zstd", "tar -c -C %s images config | zstd -T0 -3 -q > %s"
                      % (q(d / "base"), q(d / "base.tar.zst"))))
        lines.append(("sha256sum", "sha256sum %s > %s" % (q(d / "base.tar.zst"), q(d / "base.tar.zst.sha256"))))
        mark = self.src.mark()
        m = run_measured(self.ws, "build-base-%d-%d" % (self.size_mb, rep),
                         self.skopeo_wrap(self.script("build", lines)))
        fetched = len(self.src.blob_fetches(self.src.requests_since(mark)))
        self.checks["baseline_blob_fetches"].append(fetched)
        self.add("build", "baseline", m, archive_mb=round((d / "base.tar.zst").stat().st_size / MiB, 1),
                 blob_fetches=fetched)
        if rep == 0 and self.levels and "zstd_levels" not in self.extra:
            self.extra["zstd_levels"] = zstd_levels(self.ws, d / "base", self.levels)
        rmtree(d / "base")
        for f in ("base.tar.zst", "base.tar.zst.sha256"):
            (d / f).unlink()

    def install_push(self, d: Path, archive: Path, rep: int) -> None:
        ws = self.ws
        meta_refs = ["docker.io/%s:%s" % (r["repository"], r["tag"]) for r in self.v1_refs]
        expect = {"docker.io/%s:%s" % (r["repository"], r["tag"]): r["digest"] for r in self.v1_refs}
        # ours: verify + unpack + push by digest to a fresh site registry
        site = ws.registry()
        kit = d / "kit-push"
        m = run_measured(ws, "push-ours-%d-%d" % (self.size_mb, rep),
                         [self.ob, "install", archive, "--kit", kit, "--trust", self.pub, "--quiet",
                          "--registry", site.host, "--insecure-registry", site.host])
        ok_ours = site_digests(site, expect)
        ws.drop_registry(site)
        rmtree(kit)
        self.add("install_push", "ours", m, site_ok=ok_ours)
        # baseline: the extract-and-check pipeline, sync, then skopeo copy --all per image (fresh registry, fresh cache)
        site = ws.registry()
        x = d / "x-push"
        lines = self.extract_lines(archive, x) + [("sync", "sync")]
        for ref in meta_refs:
            lines.append(("skopeo", "skopeo copy --quiet --all --preserve-digests --dest-tls-verify=false "
                          "--dest-no-creds oci:%s:%s docker://%s/%s" % (q(x / "images"), ref, site.host, ref)))
        m = run_measured(ws, "push-base-%d-%d" % (self.size_mb, rep), self.skopeo_wrap(self.script("push", lines)))
        ok_base = site_digests(site, expect)
        ws.drop_registry(site)
        rmtree(x)
        self.add("install_push", "baseline", m, site_ok=ok_base)
        self.checks["site_digests_agree"].append(ok_ours and ok_base)

    def run(self) -> dict:
        self.setup()
        for rep in range(self.args.repeat):
            log("size %d MB, repetition %d/%d" % (self.size_mb, rep + 1, self.args.repeat))
            self.repetition(rep)
        if self.profile_dir:
            self.extra["profile"] = self.profile()
        return self.result()

    def teardown(self) -> None:
        """The source registry goes (its storage stays when it lives in --data-dir); so does this size's data."""
        if self.src is not None:
            self.ws.drop_registry(self.src)
            self.src = None
        for leftover in self.ws.root.glob("rep-%d-*" % self.size_mb):
            rmtree(leftover)
        rmtree(self.ws.path("manifest"))

    # -- profiles of build and install (py-spy when installed, else cProfile of the main thread)
    def profile(self) -> dict:
        ws, out = self.ws, Path(self.profile_dir)
        out.mkdir(parents=True, exist_ok=True)
        d = ws.path("profile")
        d.mkdir()
        pyspy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        result = {}
        for name in ("build", "install"):
            if name == "build":
                argv = ["build", self.manifests["v1"], "--key", self.key, "--out", d / "out", "--cache", d / "cache",
                        "--mirror", "docker.io=%s" % self.src.host, "--insecure-registry", self.src.host, "--quiet"]
            else:
                argv = ["install", self.archive_in(d / "out"), "--kit", d / "kit", "--trust", self.pub, "--quiet"]
            argv = [str(a) for a in argv]
            if os.path.exists(pyspy):
                raw = out / ("%s-%d.pyspy.txt" % (name, self.size_mb))
                cmd = [pyspy, "record", "--format", "raw", "--rate", "200", "--threads", "--idle", "--nonblocking",
                       "-o", str(raw), "--", self.ob] + argv
                m = run_measured(ws, "profile-%s" % name, cmd)
                result[name] = summarize_pyspy(raw, m.wall)
                result[name]["tool"] = "py-spy --idle --threads (200 Hz)"
            else:
                stats = out / ("%s-%d.cprofile" % (name, self.size_mb))
                m = run_measured(ws, "profile-%s" % name, [sys.executable, "-m", "cProfile", "-o", stats,
                                                           "-m", "bundler"] + argv)
                result[name] = summarize_cprofile(stats, m.wall)
            log("profile of %s written under %s" % (name, out))
        rmtree(d)
        return result

    def result(self) -> dict:
        ops = {}
        for op, sides in self.samples.items():
            entry = {}
            for side, samples in sides.items():
                entry[side] = {"samples": samples,
                               "median_s": round(statistics.median(s["wall_s"] for s in samples), 3),
                               "peak_rss_mb": max(s["peak_rss_mb"] for s in samples),
                               "median_peak_rss_mb": round(statistics.median(s["peak_rss_mb"] for s in samples), 1)}
            ops[op] = entry
        # the warm rebuild is compared with the cold build of the same repetitions
        if "warm_rebuild" in ops and "build" in ops:
            ops["warm_rebuild"]["baseline"] = dict(ops["build"]["ours"], note="the cold build (ours) of the same run")
        for entry in ops.values():
            if "ours" in entry and "baseline" in entry and entry["baseline"]["median_s"] > 0:
                entry["ratio"] = round(entry["ours"]["median_s"] / entry["baseline"]["median_s"], 3)
        return {"size_mb": self.size_mb, "seed": {k: v for k, v in self.seed.items() if k != "stamp"},
                "ops": ops, "checks": self.checks, **self.extra}


def script_steps(stderr: str) -> Dict[str, float]:
    """Seconds per step label (summed) from the '@@step LABEL T0 T1' lines of a baseline script."""
    steps: Dict[str, float] = {}
    for line in stderr.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "@@step":
            try:
                steps[parts[1]] = round(steps.get(parts[1], 0.0) + float(parts[3]) - float(parts[2]), 3)
            except ValueError:
                continue
    return steps


def sidecar(archive: Path) -> str:
    return Path(str(archive) + ".sha256").read_text().split()[0]


def q(path) -> str:
    import shlex
    return shlex.quote(str(path))


def site_digests(site, expect: Dict[str, str]) -> bool:
    """Every reference landed at SITE/<ref> with the upstream digest."""
    import http.client
    accept = ", ".join(["application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.list.v2+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    for ref, digest in expect.items():
        repo, tag = ref.rsplit(":", 1)
        conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=30)
        try:
            conn.request("HEAD", "/v2/%s/manifests/%s" % (repo, tag), headers={"Accept": accept})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200 or resp.getheader("Docker-Content-Digest") != digest:
                return False
        finally:
            conn.close()
    return True
