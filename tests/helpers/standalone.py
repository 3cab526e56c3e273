"""Running the standalone installer (installer.pyz) in tests: bare interpreters, minimal environments,
small hand-made wheels and wheels repackaged from what the test environment has installed."""

import base64
import hashlib
import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Dict, List, Optional

SYSTEM_PYTHON = Path("/usr/bin/python3")


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, "%s is required by the standalone installer tests (not skipped: install it)" % name
    return path


def tool_path() -> str:
    dirs: List[str] = []
    for name in ("openssl", "zstd", "sha256sum", "find", "sed", "sort", "cut", "bash"):
        d = os.path.dirname(tool(name))
        if d not in dirs:
            dirs.append(d)
    return ":".join(dirs + [d for d in ("/usr/bin", "/bin") if d not in dirs])


def minimal_env(home: Path, extra_path: str = "", **more) -> Dict[str, str]:
    env = {"PATH": (extra_path + ":" if extra_path else "") + tool_path(), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update({k: str(v) for k, v in more.items()})
    return env


def run(argv, env, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def make_bare_python(python: Path, where: Path) -> Path:
    """A venv of ``python`` without pip: the standard library and nothing else importable."""
    r = subprocess.run([str(python), "-m", "venv", "--without-pip", str(where)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exe = where / "bin" / "python"
    for module in ("cryptography", "zstandard", "pip"):
        probe = run([exe, "-I", "-c", "import %s" % module], env={"PATH": "/usr/bin:/bin"})
        assert probe.returncode != 0 and "No module named" in probe.stderr, (module, probe)
    return exe


def older_cpythons() -> List[Path]:
    """A CPython 3.9 and 3.10 on this machine (pyenv), to run the pyz on the oldest supported versions."""
    found = []
    for minor in (9, 10):
        exe = shutil.which("python3.%d" % minor)
        candidates = [Path(exe)] if exe else []
        candidates += sorted(Path("/root/.pyenv/versions").glob("3.%d.*/bin/python3.%d" % (minor, minor)))
        for c in candidates:
            if c.exists() and "/shims/" not in str(c):
                found.append(c)
                break
    return found


def _zip_wheel(path: Path, files: Dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(zi, data, compress_type=zipfile.ZIP_DEFLATED)
    return path


def _record(files: Dict[str, bytes], record_name: str) -> bytes:
    lines = []
    for name, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        lines.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    lines.append(record_name + ",,")
    return ("\n".join(lines) + "\n").encode()


def make_wheel(folder: Path, dist: str, version: str, files: Dict[str, bytes], tag: str = "py3-none-any") -> Path:
    """A valid (if tiny) wheel: the files, METADATA, WHEEL and RECORD."""
    folder.mkdir(parents=True, exist_ok=True)
    info = "%s-%s.dist-info" % (dist, version)
    files = dict(files)
    files[info + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (dist, version)).encode()
    files[info + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: %s\n" % tag).encode()
    files[info + "/RECORD"] = _record(files, info + "/RECORD")
    return _zip_wheel(folder / ("%s-%s-%s.whl" % (dist, version, tag)), files)


def wheel_of_installed(folder: Path, dist: str) -> Path:
    """The wheel of a distribution installed in the test environment, rebuilt from its RECORD (the real
    package, compiled parts included; its tags are those its WHEEL file declares)."""
    d = importlib.metadata.distribution(dist)
    files: Dict[str, bytes] = {}
    info_dir: Optional[str] = None
    for f in d.files or ():
        name = f.as_posix()
        if name.startswith("..") or "__pycache__" in name or name.endswith(".pyc"):
            continue  # scripts in bin/ and byte code are not part of the wheel's importable tree
        if name.endswith(".dist-info/RECORD"):
            info_dir = name.rsplit("/", 1)[0]
            continue
        if name.endswith(".dist-info/INSTALLER") or name.endswith(".dist-info/direct_url.json"):
            continue
        files[name] = Path(str(d.locate_file(f))).read_bytes()
    assert info_dir, dist
    tags = [line.split(":", 1)[1].strip() for line in files[info_dir + "/WHEEL"].decode().splitlines()
            if line.startswith("Tag:")]
    pys = ".".join(sorted({t.split("-")[0] for t in tags}))
    abis = ".".join(sorted({t.split("-")[1] for t in tags}))
    plats = ".".join(sorted({t.split("-")[2] for t in tags}))
    files[info_dir + "/RECORD"] = _record(files, info_dir + "/RECORD")
    folder.mkdir(parents=True, exist_ok=True)
    return _zip_wheel(folder / ("%s-%s-%s-%s-%s.whl" % (d.metadata["Name"].replace("-", "_"), d.version, pys, abis,
                                                        plats)), files)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pyz(python: Path, folder: Path, *args, env) -> subprocess.CompletedProcess:
    return run([python, "-I", folder / "installer.pyz"] + list(args), env=env)


def probe_run(python: Path, folder: Path, argv, env, modules=("obspeedup_probe",)) -> dict:
    """Run the pyz's own __main__ with ``argv``, then report where ``modules`` come from, sys.path and
    the private folders that existed while it ran."""
    code = ("import importlib, json, runpy, sys\n"
            "sys.argv = %r\n"
            "try:\n"
            "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    code = exc.code\n"
            "found = {}\n"
            "for name in %r:\n"
            "    try:\n"
            "        found[name] = importlib.import_module(name).__file__\n"
            "    except ImportError:\n"
            "        found[name] = None\n"
            "print(json.dumps({'exit': code, 'modules': found, 'path': sys.path}))\n"
            % ([str(folder / "installer.pyz")] + [str(a) for a in argv], list(modules)))
    r = run([python, "-I", "-c", code], env=env)
    assert r.returncode == 0, r
    return dict(json.loads(r.stdout.strip().splitlines()[-1]), stderr=r.stderr)

