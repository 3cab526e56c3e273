"""Issue 10 item 9: the standalone installer runs no code it did not verify.

The attacker's view. Someone who can write into a kit (or into the operator's cache) plants a fake
`cryptography` where the installer used to unpack its speed-up wheels (KIT/.state/runtime/<sha256>/,
~/.cache/offline-bundle/runtime/<sha256>/), hoping the next run imports it and accepts a bundle signed by
a key nobody trusts; or hands the operator a foreign kit for `verify --kit`. A signer (or a build host
mistake) ships a wheel, correctly listed in INSTALLER.SHA256SUMS, whose top level replaces a
standard-library module. Or TMPDIR points at a folder others can write to. None of it may change what runs.
"""

import os
import stat
import subprocess
from pathlib import Path
from typing import Dict

import pytest

from tests.helpers.standalone import (SYSTEM_PYTHON, make_bare_python, make_wheel, minimal_env, older_cpythons,
                                probe_run, pyz, run, sha256, wheel_of_installed)

from bundler.emit.standalone import export_installer
from installer.runtime import RUNTIME_PREFIX
from installer.format.sums import format_sums

# Installed in the test environment; rebuilt as wheels they are the real code the site would get.
REAL = ("cryptography", "cffi", "zstandard")


@pytest.fixture(scope="module")
def real_wheels(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("real-wheels")
    for dist in REAL:
        wheel_of_installed(d, dist)
    return d


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    return make_bare_python(SYSTEM_PYTHON, tmp_path_factory.mktemp("bare") / "venv")


def _fake_cryptography(marker: Path, stdlib: bool) -> Dict[str, str]:
    """A `cryptography` whose keys accept every signature, and that leaves a mark when imported."""
    mark = "open(%r, 'a').write(__name__ + ' from ' + __file__ + '\\n')\n" % str(marker)
    fake = {
        "cryptography/__init__.py": mark,
        "cryptography/exceptions.py": mark + "class InvalidSignature(Exception):\n    pass\n",
        "cryptography/hazmat/__init__.py": "",
        "cryptography/hazmat/primitives/__init__.py": "",
        "cryptography/hazmat/primitives/hashes.py": "class SHA256:\n    pass\n",
        "cryptography/hazmat/primitives/asymmetric/__init__.py": "",
        "cryptography/hazmat/primitives/asymmetric/ec.py": "class ECDSA:\n    def __init__(self, h):\n        pass\n",
        "cryptography/hazmat/primitives/serialization.py": (
            mark + "class _Yes:\n    def verify(self, *args):\n        return None\n\n"
            "def load_der_public_key(der):\n    return _Yes()\n"),
        "zstandard/__init__.py": mark + "raise ImportError('planted')\n",
        "_cffi_backend.py": mark,
    }
    if stdlib:  # a foreign kit may also try to replace the standard library the CLI imports after start-up
        fake.update({"json/__init__.py": mark, "argparse.py": mark})
    return fake


def _plant(root: Path, digests, marker: Path, stdlib: bool = False) -> None:
    for digest in digests:
        for rel, text in _fake_cryptography(marker, stdlib).items():
            path = root / digest / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def _export(keydir, tmp_path, wheels_dir=None) -> dict:
    return export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"),
                            str(wheels_dir) if wheels_dir else None)


def test_a_fake_cryptography_planted_where_wheels_were_unpacked_never_runs(built, keydir, bare_python, tmp_path,
                                                                         real_wheels):
    archive, _ = built
    exported = _export(keydir, tmp_path, real_wheels)
    folder = Path(exported["folder"])
    digests = [w["sha256"] for w in exported["wheels"]]
    assert len(digests) == 3
    marker = tmp_path / "planted-code-ran"
    kit = tmp_path / "kit"
    home = tmp_path / "home"
    # every place the installer ever unpacked into, for the sha256 of the very wheels it ships
    _plant(kit / ".state" / "runtime", digests, marker)
    _plant(home / ".cache" / "offline-bundle" / "runtime", digests, marker)
    env = minimal_env(home, TMPDIR=tmp_path)

    # the bundle is signed by keydir/ed; the operator trusts only keydir/other
    untrusted = keydir / "other" / "bundle.pub"
    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", untrusted, env=env)
    assert r.returncode == 4, r
    assert "Traceback" not in r.stderr
    assert not marker.exists(), marker.read_text()
    assert not (kit / "current" / "demo").exists() and not (kit / "bundles" / "demo").exists()

    r = pyz(bare_python, folder, "verify", archive, "--trust", untrusted, env=env)
    assert r.returncode == 4 and not marker.exists(), r
    xdg = tmp_path / "xdg"
    _plant(xdg / "offline-bundle" / "runtime", digests, marker)
    r = pyz(bare_python, folder, "verify", archive, "--trust", untrusted, env=dict(env, XDG_CACHE_HOME=str(xdg)))
    assert r.returncode == 4 and not marker.exists(), r


def test_verify_with_a_foreign_kit_imports_nothing_from_it(built, pub, keydir, bare_python, tmp_path, real_wheels):
    archive, _ = built
    exported = _export(keydir, tmp_path, real_wheels)
    folder = Path(exported["folder"])
    marker = tmp_path / "foreign-code-ran"
    foreign = tmp_path / "foreign-kit"
    _plant(foreign / ".state" / "runtime", [w["sha256"] for w in exported["wheels"]], marker, stdlib=True)
    env = minimal_env(tmp_path / "home", TMPDIR=tmp_path)

    r = pyz(bare_python, folder, "verify", archive, "--kit", foreign, "--trust", pub, env=env)
    assert r.returncode == 0 and "OK demo 1.0.0" in r.stdout, r
    assert not marker.exists(), marker.read_text()
    seen = probe_run(bare_python, folder, ["status", "--kit", foreign], env, modules=("cryptography", "zstandard"))
    assert seen["exit"] == 0 and not marker.exists(), seen
    assert not any(str(foreign) in p for p in seen["path"]), seen["path"]
    for name in ("cryptography", "zstandard"):  # the real ones, from the verified wheels, unpacked for that run
        assert seen["modules"][name].startswith(str(tmp_path / RUNTIME_PREFIX)), seen


def _add_listed_wheel(folder: Path, wheel: Path) -> None:
    """Put a wheel beside the installer and list it, correctly hashed, in INSTALLER.SHA256SUMS: what a
    careless or hostile signer ships (the installer trusts that list; people check its signature)."""
    (folder / "wheels").mkdir(exist_ok=True)
    target = folder / "wheels" / wheel.name
    target.write_bytes(wheel.read_bytes())
    entries = {}
    for line in (folder / "INSTALLER.SHA256SUMS").read_text().splitlines():
        digest, rel = line.split("  ", 1)
        entries[rel] = digest
    entries["wheels/" + wheel.name] = sha256(target)
    (folder / "INSTALLER.SHA256SUMS").write_bytes(format_sums(entries))


def _real_modules(python: Path, env, names) -> Dict[str, str]:
    code = "import importlib, json\nprint(json.dumps({n: importlib.import_module(n).__file__ for n in %r}))" % (
        list(names),)
    r = run([python, "-I", "-c", code], env=env)
    assert r.returncode == 0, r
    import json
    return json.loads(r.stdout)


PROBE_INIT = b'MARK = "obspeedup"\n'
STD = ("json", "hashlib", "base64", "argparse")


@pytest.mark.parametrize("member", [
    "json/__init__.py",
    "hashlib.py",
    "base64.py",
    "_json.cpython-311-x86_64-linux-gnu.so",      # an extension module named like a standard one
    "distutils/__init__.py",                       # a standard package Debian ships separately
    "argparse.pyc",
    "obspeedup_probe.pth",                         # path configuration: never ours to add
    "sitecustomize.py",
    "usercustomize.py",
    "obspeedup_probe-1.0.data/purelib/base64.py",  # the same, through the wheel's .data folder
    "installer.py",                                # the installer's own name
])
def test_a_listed_wheel_that_shadows_the_standard_library_is_not_used(built, pub, keydir, bare_python, tmp_path,
                                                                     member):
    archive, _ = built
    folder = Path(_export(keydir, tmp_path)["folder"])
    marker = tmp_path / "shadow-code-ran"
    mark = ("open(%r, 'a').write(__name__ + '\\n')\n" % str(marker)).encode()
    wheel = make_wheel(tmp_path / "w", "obspeedup_probe", "1.0",
                       {"obspeedup_probe/__init__.py": PROBE_INIT, member: mark})
    _add_listed_wheel(folder, wheel)
    env = minimal_env(tmp_path / "home", TMPDIR=tmp_path)
    check = run(["sha256sum", "-c", "--strict", "INSTALLER.SHA256SUMS"], env=env, cwd=folder)
    assert check.returncode == 0, check  # the reviewer's check passes: the list itself is not the problem

    seen = probe_run(bare_python, folder, ["verify", archive, "--trust", pub], env,
                     modules=("obspeedup_probe",) + STD)
    assert seen["exit"] == 0, seen
    notes = [line for line in seen["stderr"].splitlines() if wheel.name in line]
    assert len(notes) == 1 and "not using" in notes[0], seen["stderr"]
    top = member.split("/")[2] if ".data/" in member else member.split("/")[0]
    assert top in notes[0], notes
    assert seen["modules"]["obspeedup_probe"] is None, seen  # the whole wheel is left out
    assert {n: seen["modules"][n] for n in STD} == _real_modules(bare_python, env, STD)
    assert not marker.exists(), marker.read_text()
    assert not (tmp_path / "home" / ".cache").exists()  # nothing unpacked where a later run could find it


@pytest.mark.parametrize("python", older_cpythons(), ids=lambda p: p.name)
def test_a_shadowing_wheel_is_refused_on_older_pythons_too(built, pub, keydir, tmp_path, python):
    """3.9 has no sys.stdlib_module_names: the names come from the standard library's folders."""
    archive, _ = built
    bare = make_bare_python(python, tmp_path / "venv")
    folder = Path(_export(keydir, tmp_path)["folder"])
    wheel = make_wheel(tmp_path / "w", "obspeedup_probe", "1.0",
                       {"obspeedup_probe/__init__.py": PROBE_INIT, "json/__init__.py": b"raise SystemExit(99)\n",
                        "_csv.py": b"raise SystemExit(98)\n"})
    _add_listed_wheel(folder, wheel)
    env = minimal_env(tmp_path / "home", TMPDIR=tmp_path)
    seen = probe_run(bare, folder, ["verify", archive, "--trust", pub], env, modules=("obspeedup_probe", "json"))
    assert seen["exit"] == 0 and seen["modules"]["obspeedup_probe"] is None, seen
    assert "not using wheels/%s" % wheel.name in seen["stderr"], seen["stderr"]
    assert seen["modules"]["json"] == _real_modules(bare, env, ["json"])["json"]


def _stdlib_entries(python: Path, env) -> list:
    code = ("import json, sys, sysconfig\n"
            "p = sysconfig.get_paths()\n"
            "print(json.dumps([e for e in sys.path if e.endswith('.zip') or e.endswith('lib-dynload')"
            " or e in (p['stdlib'], p['platstdlib'])]))")
    r = run([python, "-I", "-c", code], env=env)
    assert r.returncode == 0, r
    import json
    entries = json.loads(r.stdout)
    assert len(entries) == 3, entries  # pythonXY.zip, the folder, lib-dynload
    return entries


RECORDING_ZSTANDARD = (
    "import json, sys\n"
    "with open(%r, 'a') as fh:\n"
    "    fh.write(json.dumps({'who': %r, 'file': __file__, 'path': sys.path}) + '\\n')\n"
    "raise ImportError('records sys.path, then lets the zstd program do the work')\n")


@pytest.mark.parametrize("python", [SYSTEM_PYTHON] + older_cpythons(), ids=lambda p: str(p))
def test_wheel_folders_come_after_the_standard_library_and_before_site_packages(built, pub, keydir, tmp_path,
                                                                               python):
    archive, _ = built
    record = tmp_path / "imports.jsonl"
    bare = make_bare_python(python, tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python3.*/site-packages"))
    (site / "zstandard").mkdir()
    (site / "zstandard" / "__init__.py").write_text(RECORDING_ZSTANDARD % (str(record), "host"))
    wheels = tmp_path / "wheels-src"
    make_wheel(wheels, "zstandard", "0.0.1",
               {"zstandard/__init__.py": (RECORDING_ZSTANDARD % (str(record), "wheel")).encode()})
    folder = Path(_export(keydir, tmp_path, wheels)["folder"])
    (tmp_path / "tmp").mkdir()
    env = minimal_env(tmp_path / "home", TMPDIR=tmp_path / "tmp")

    # a real run: the installer imports zstandard to decompress, and the wheel's copy says where it is
    r = pyz(bare, folder, "verify", archive, "--trust", pub, env=env)
    assert r.returncode == 0 and r.stderr == "", r
    import json
    seen = [json.loads(line) for line in record.read_text().splitlines()]
    assert {s["who"] for s in seen} == {"wheel"}, seen  # the verified wheel wins over the host's copy
    path = seen[0]["path"]
    wheel_dir = os.path.dirname(os.path.dirname(seen[0]["file"]))
    assert wheel_dir.startswith(str(tmp_path / "tmp") + "/"), seen
    assert path[0] == str(folder / "installer.pyz"), path  # the installer's own code first
    std = [path.index(e) for e in _stdlib_entries(bare, env)]
    assert max(std) < path.index(wheel_dir) < path.index(str(site)), path
    assert path.index(wheel_dir) == max(std) + 1, path


@pytest.mark.parametrize("how", ["others may write, no sticky bit", "owned by someone else"])
def test_a_tmpdir_others_control_is_not_used(keydir, bare_python, tmp_path, how):
    wheels = tmp_path / "wheels-src"
    make_wheel(wheels, "obspeedup_probe", "1.0", {"obspeedup_probe/__init__.py": PROBE_INIT})
    folder = Path(_export(keydir, tmp_path, wheels)["folder"])
    shared = tmp_path / "shared"
    shared.mkdir()
    if how == "owned by someone else":
        os.chown(shared, 65534, 65534)
        shared.chmod(0o755)
    else:
        shared.chmod(0o777)
    seen = probe_run(bare_python, folder, ["--version"], minimal_env(tmp_path / "home", TMPDIR=shared))
    assert seen["exit"] == 0 and seen["modules"]["obspeedup_probe"] is None, seen
    assert "not using the speed-up wheels" in seen["stderr"] and str(shared) in seen["stderr"], seen["stderr"]
    assert os.listdir(shared) == []  # and what it made there is gone
    assert not stat.S_IMODE(shared.stat().st_mode) & stat.S_ISVTX


def test_each_run_gets_a_fresh_private_folder_removed_at_exit(keydir, bare_python, tmp_path):
    wheels = tmp_path / "wheels-src"
    make_wheel(wheels, "obspeedup_probe", "1.0", {"obspeedup_probe/__init__.py": PROBE_INIT})
    folder = Path(_export(keydir, tmp_path, wheels)["folder"])
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = minimal_env(tmp_path / "home", TMPDIR=tmp)
    code = ("import os, runpy, sys\nsys.argv = [%r, '--version']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "import obspeedup_probe\n"
            "d = os.path.dirname(os.path.dirname(os.path.dirname(obspeedup_probe.__file__)))\n"
            "st = os.lstat(d)\nprint(d, oct(st.st_mode), st.st_uid)\n" % str(folder / "installer.pyz"))
    seen = []
    for _ in range(2):
        r = run([bare_python, "-I", "-c", code], env=env)
        assert r.returncode == 0, r
        private, mode, uid = r.stdout.split("\n")[-2].split()
        assert os.path.dirname(private) == str(tmp) and mode == oct(stat.S_IFDIR | 0o700) and int(uid) == os.getuid()
        seen.append(private)
        assert os.listdir(tmp) == []  # removed when the run ended
    assert seen[0] != seen[1]
    # killed before it could clean up: the next run does not look at what was left
    left = tmp / os.path.basename(seen[0])
    left.mkdir()
    r = subprocess.run([str(bare_python), "-I", str(folder / "installer.pyz"), "--version"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r
    assert os.listdir(tmp) == [left.name]
