"""The standalone installer (PRODUCT.md "Standalone installer", issue 5 item 1).

`installer.pyz` runs on an interpreter with NO cryptography, zstandard or pip (a `--without-pip`
venv of /usr/bin/python3), falling back to the openssl and zstd programs; it is byte-identical for
the same inputs; its INSTALLER.SHA256SUMS verifies with the commands of docs/VERIFY.md; speed-up
wheels are hash-checked, unpacked into KIT/.state/runtime/<sha256>/, put on sys.path and reused,
and a wheel whose bytes differ is not used.
"""

import base64
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import zipfile
from pathlib import Path
from typing import Dict

import pytest
from conftest import REPO

import installer
from helpers.craft import get, read_entries, write_archive

from bundler.standalone import export_installer, folder_name
from installer.errors import InvalidInput, UsageError
from installer.runtime import Interpreter, parse_wheel_name, plan_members

SYSTEM_PYTHON = Path("/usr/bin/python3")
DOC = REPO / "docs" / "VERIFY.md"
DOC_SECTION = "## Verifying the standalone installer"


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, "%s is required by the standalone installer tests (not skipped: install it)" % name
    return path


def _tool_path() -> str:
    dirs = []
    for name in ("openssl", "zstd", "sha256sum", "find", "sed", "sort", "cut", "bash"):
        d = os.path.dirname(_tool(name))
        if d not in dirs:
            dirs.append(d)
    return ":".join(dirs + [d for d in ("/usr/bin", "/bin") if d not in dirs])


def minimal_env(home: Path, extra_path: str = "", **more) -> Dict[str, str]:
    env = {"PATH": (extra_path + ":" if extra_path else "") + _tool_path(), "HOME": str(home), "LANG": "C.UTF-8"}
    env.update({k: str(v) for k, v in more.items()})
    return env


def run(argv, env, cwd=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def _make_bare_python(python: Path, where: Path) -> Path:
    r = subprocess.run([str(python), "-m", "venv", "--without-pip", str(where)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    exe = where / "bin" / "python"
    for module in ("cryptography", "zstandard", "pip"):
        probe = run([exe, "-I", "-c", "import %s" % module], env={"PATH": "/usr/bin:/bin"})
        assert probe.returncode != 0 and "No module named" in probe.stderr, (module, probe)
    return exe


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """A CPython with nothing but the standard library: no cryptography, no zstandard, no pip."""
    assert SYSTEM_PYTHON.exists(), "/usr/bin/python3 is required (not skipped)"
    return _make_bare_python(SYSTEM_PYTHON, tmp_path_factory.mktemp("bare") / "venv")


@pytest.fixture(scope="session", autouse=True)
def _tools_present():
    for name in ("openssl", "zstd", "sha256sum"):
        _tool(name)


def make_wheel(folder: Path, dist: str, version: str, files: Dict[str, bytes], tag: str = "py3-none-any") -> Path:
    """A valid (if tiny) wheel: the files, METADATA, WHEEL and RECORD."""
    folder.mkdir(parents=True, exist_ok=True)
    info = "%s-%s.dist-info" % (dist, version)
    files = dict(files)
    files[info + "/METADATA"] = ("Metadata-Version: 2.1\nName: %s\nVersion: %s\n" % (dist, version)).encode()
    files[info + "/WHEEL"] = ("Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: %s\n" % tag).encode()
    record = []
    for name, data in sorted(files.items()):
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append("%s,sha256=%s,%d" % (name, digest, len(data)))
    record.append(info + "/RECORD,,")
    files[info + "/RECORD"] = ("\n".join(record) + "\n").encode()
    path = folder / ("%s-%s-%s.whl" % (dist, version, tag))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in sorted(files.items()):
            zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            zi.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(zi, data)
    return path


PROBE = b'"""Proves the speed-up wheel mechanism: harmless, never used by the installer."""\nMARK = "obspeedup"\n'
FAKE_ZSTANDARD = b'raise ImportError("a zstandard wheel that does not import (test)")\n'


@pytest.fixture
def wheels_dir(tmp_path) -> Path:
    d = tmp_path / "wheels-src"
    make_wheel(d, "obspeedup_probe", "1.0", {"obspeedup_probe/__init__.py": PROBE})
    make_wheel(d, "zstandard", "0.0.1", {"zstandard/__init__.py": FAKE_ZSTANDARD})
    make_wheel(d, "otherplatform", "1.0", {"otherplatform/__init__.py": b""}, tag="cp39-abi3-win_amd64")
    (d / "README.txt").write_text("not a wheel: not copied\n")
    return d


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _pyz(python: Path, folder: Path, *args, env) -> subprocess.CompletedProcess:
    return run([python, "-I", folder / "installer.pyz"] + list(args), env=env)


# --- export ---------------------------------------------------------------------------------
@pytest.mark.parametrize("sub", ["ed", "ec"])
def test_export_is_deterministic_and_complete(keydir, tmp_path, wheels_dir, sub):
    key = keydir / sub / "bundle.key"
    a = export_installer(str(key), str(tmp_path / "a"), str(wheels_dir))
    b = export_installer(str(key), str(tmp_path / "b"), str(wheels_dir))
    fa, fb = Path(a["folder"]), Path(b["folder"])
    assert fa.name == fb.name == folder_name() == "offline-bundle-installer-%s" % a["version"]
    files = sorted(str(p.relative_to(fa)) for p in fa.rglob("*") if p.is_file())
    assert files == ["INSTALLER.SHA256SUMS", "INSTALLER.SHA256SUMS.sig", "installer.pyz",
                     "wheels/obspeedup_probe-1.0-py3-none-any.whl", "wheels/otherplatform-1.0-cp39-abi3-win_amd64.whl",
                     "wheels/zstandard-0.0.1-py3-none-any.whl"]
    for rel in files:  # byte-identical, pyz and signature included (Ed25519, and RFC 6979 ECDSA)
        assert (fa / rel).read_bytes() == (fb / rel).read_bytes(), rel
        assert stat.S_IMODE((fa / rel).stat().st_mode) == 0o644, rel
    sums = (fa / "INSTALLER.SHA256SUMS").read_text()
    assert sums == "".join("%s  %s\n" % (_sha(fa / rel), rel) for rel in sorted(files[2:], key=str.encode))
    assert a["installer_sha256"] == _sha(fa / "installer.pyz") and a["signer"].startswith("SHA256:")
    assert a["algorithm"] == ("ed25519" if sub == "ed" else "ecdsa-p256")
    assert [w["path"] for w in a["wheels"]] == files[3:]

    with zipfile.ZipFile(fa / "installer.pyz") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names, key=str.encode)
    assert names[0] == "__main__.py" and "installer/runtime.py" in names and "installer/cli.py" in names
    expected = sorted("installer/" + p.relative_to(REPO / "installer").as_posix()
                      for p in (REPO / "installer").rglob("*.py") if "__pycache__" not in p.parts)
    assert sorted(n for n in names if n.startswith("installer/")) == expected
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    for i in infos:
        assert i.date_time == (1980, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_DEFLATED
        assert (i.external_attr >> 16) == stat.S_IFREG | 0o644

    # exporting again replaces the folder whole and leaves nothing behind
    again = export_installer(str(key), str(tmp_path / "a"))
    assert sorted(os.listdir(tmp_path / "a")) == [folder_name()]
    assert not (Path(again["folder"]) / "wheels").exists() and again["wheels"] == []
    assert again["installer_sha256"] == a["installer_sha256"]


def test_export_refuses_what_the_installer_would_not_use(keydir, tmp_path):
    key = str(keydir / "ed" / "bundle.key")
    with pytest.raises(UsageError):
        export_installer(key, str(tmp_path / "out"), str(tmp_path / "no-such-folder"))
    bad = tmp_path / "bad"
    bad.mkdir()
    with zipfile.ZipFile(bad / "evil-1.0-py3-none-any.whl", "w") as zf:
        link = zipfile.ZipInfo("evil/link")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/shadow")
    (bad / "not a wheel.whl").write_bytes(b"PK")
    with pytest.raises(InvalidInput) as err:
        export_installer(key, str(tmp_path / "out"), str(bad))
    text = " ".join(err.value.problems)
    assert "evil-1.0-py3-none-any.whl" in text and "link" in text and "not a wheel.whl" in text
    assert not (tmp_path / "out" / folder_name()).exists()


# --- running without any third-party package --------------------------------------------------
def test_pyz_installs_verifies_and_reports_with_the_fallbacks(built, pub, keydir, bare_python, tmp_path):
    archive, res = built
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    kit = tmp_path / "kit"
    env = minimal_env(tmp_path / "home")

    r = _pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert "installed demo 1.0.0" in r.stdout and "Traceback" not in r.stderr
    current = kit / "current" / "demo"
    assert current.is_symlink() and os.readlink(current) == "../bundles/demo/1.0.0"
    check = run(["sha256sum", "-c", "--strict", "SHA256SUMS"], env=env, cwd=current)
    assert check.returncode == 0 and "config/app.yaml: OK" in check.stdout, check
    assert not (kit / ".state" / "runtime").exists() or os.listdir(kit / ".state" / "runtime") == []

    # verify --json succeeds on an interpreter that cannot import cryptography or zstandard:
    # the signature went through openssl and the zstd stream through the zstd program
    r = _pyz(bare_python, folder, "verify", archive, "--trust", pub, "--json", env=env)
    assert r.returncode == 0, r
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["result"]["bundle_id"] == res["bundle_id"]
    assert out["result"]["signer"] == res["signer"]
    for module in ("cryptography", "zstandard"):
        assert run([bare_python, "-I", "-c", "import %s" % module], env=env).returncode != 0

    r = _pyz(bare_python, folder, "status", "--kit", kit, "--json", env=env)
    assert r.returncode == 0, r
    bundles = json.loads(r.stdout)["result"]["bundles"]
    assert [(b["name"], b["current"]) for b in bundles] == [("demo", "1.0.0")]

    r = _pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0 and "already installed" in r.stdout, r

    r = _pyz(bare_python, folder, "--version", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "offline-bundle %s" % installer.__version__, r


def test_pyz_refuses_tampering_and_untrusted_keys_with_the_documented_codes(built, pub, keydir, bare_python, tmp_path):
    archive, _ = built
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    env = minimal_env(tmp_path / "home")
    entries = read_entries(archive)
    e = get(entries, "config/app.yaml")
    e.data = e.data[:-2] + b"X\n"
    bad = write_archive(entries, tmp_path / archive.name)

    kit = tmp_path / "kit"
    r = _pyz(bare_python, folder, "install", bad, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 5, r
    assert "config/app.yaml" in r.stderr and "Traceback" not in r.stderr
    assert not (kit / "current" / "demo").exists()
    r = _pyz(bare_python, folder, "verify", bad, "--trust", pub, "--json", env=env)
    assert r.returncode == 5 and json.loads(r.stdout)["error"]["class"] == "content-mismatch", r

    # another key: openssl says no, the installer says exit 4
    r = _pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", keydir / "other" / "bundle.pub", env=env)
    assert r.returncode == 4, r
    # a usage error is one sentence, exit 2
    r = _pyz(bare_python, folder, "install", tmp_path / "missing.bundle.tar.zst", "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r


def test_pyz_wins_over_another_installer_package_on_the_host(built, pub, keydir, tmp_path):
    """pypa/installer is also imported as `installer`: in the host's site-packages it cannot shadow the pyz."""
    archive, _ = built
    python = _make_bare_python(SYSTEM_PYTHON, tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python3.*/site-packages"))
    (site / "installer").mkdir()
    (site / "installer" / "__init__.py").write_text("__version__ = '0.7.0'  # pypa/installer\n")
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    r = _pyz(python, folder, "verify", archive, "--trust", pub, env=minimal_env(tmp_path / "home"))
    assert r.returncode == 0 and "OK demo 1.0.0" in r.stdout, r


def test_pyz_without_the_zstd_program_says_what_is_missing(built, pub, keydir, bare_python, tmp_path):
    archive, _ = built
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(_tool("openssl"), bindir / "openssl")
    r = run([bare_python, "-I", folder / "installer.pyz", "verify", archive, "--trust", pub],
            env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert r.returncode == 9 and "zstd" in r.stderr and "Traceback" not in r.stderr, r


def _older_cpython():
    """A CPython 3.9 or 3.10 on this machine (pyenv), to run the pyz on the oldest supported versions."""
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


@pytest.mark.parametrize("python", _older_cpython() or [None], ids=lambda p: p.name if p else "none")
def test_pyz_runs_on_the_oldest_supported_cpython(python, built, pub, keydir, tmp_path):
    if python is None:
        pytest.skip("no CPython 3.9 or 3.10 on this machine (vermin checks installer/ statically)")
    archive, _ = built
    bare = _make_bare_python(python, tmp_path / "venv")
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    env = minimal_env(tmp_path / "home")
    r = _pyz(bare, folder, "install", archive, "--kit", tmp_path / "kit", "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert (tmp_path / "kit" / "current" / "demo").is_symlink()


# --- speed-up wheels ------------------------------------------------------------------------
def _probe_sys_path(python: Path, folder: Path, argv, env) -> dict:
    """Run the pyz's own __main__ (status), then report where obspeedup_probe comes from and sys.path."""
    code = ("import json, runpy, sys\n"
            "sys.argv = %r\n"
            "try:\n"
            "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
            "except SystemExit as exc:\n"
            "    code = exc.code\n"
            "try:\n"
            "    import obspeedup_probe\n"
            "    probe = obspeedup_probe.__file__\n"
            "except ImportError:\n"
            "    probe = None\n"
            "print(json.dumps({'exit': code, 'probe': probe, 'path': sys.path}))\n"
            % ([str(folder / "installer.pyz")] + [str(a) for a in argv]))
    r = run([python, "-I", "-c", code], env=env)
    assert r.returncode == 0, r
    return dict(json.loads(r.stdout.strip().splitlines()[-1]), stderr=r.stderr)


def test_wheels_are_hash_checked_unpacked_reused_and_put_on_sys_path(built, pub, keydir, bare_python, tmp_path,
                                                                    wheels_dir):
    archive, _ = built
    exported = export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"), str(wheels_dir))
    folder = Path(exported["folder"])
    digests = {Path(w["path"]).name.split("-")[0]: w["sha256"] for w in exported["wheels"]}
    kit = tmp_path / "kit"
    env = minimal_env(tmp_path / "home")

    # the fake zstandard wheel fits and is put on sys.path, but does not import: the zstd program takes over
    r = _pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr
    runtime = kit / ".state" / "runtime"
    assert sorted(os.listdir(runtime)) == sorted([digests["obspeedup_probe"], digests["zstandard"]])
    probe_dir = runtime / digests["obspeedup_probe"]
    module = probe_dir / "obspeedup_probe" / "__init__.py"
    assert module.read_bytes() == PROBE
    assert stat.S_IMODE(module.stat().st_mode) == 0o644
    assert stat.S_IMODE((probe_dir / "obspeedup_probe").stat().st_mode) == 0o755
    assert stat.S_IMODE(probe_dir.stat().st_mode) == 0o755
    assert (probe_dir / "obspeedup_probe-1.0.dist-info" / "RECORD").is_file()

    # the pyz's own __main__ puts the unpacked folders on sys.path, ahead of the standard library
    marker = probe_dir / "reused-marker"
    marker.write_text("left by the test\n")
    inode = probe_dir.stat().st_ino
    seen = _probe_sys_path(bare_python, folder, ["status", "--kit", kit], env)
    assert seen["exit"] == 0 and seen["stderr"] == "", seen
    assert seen["probe"] == str(module)
    assert str(probe_dir) in seen["path"] and str(runtime / digests["zstandard"]) in seen["path"]
    stdlib = next(p for p in seen["path"] if re.search(r"/lib/python3\.\d+$", p))
    assert seen["path"].index(str(probe_dir)) < seen["path"].index(stdlib)
    # ... reusing what is already unpacked (same folder, the marker is still there, no temp folder left)
    assert marker.exists() and probe_dir.stat().st_ino == inode
    assert sorted(os.listdir(runtime)) == sorted([digests["obspeedup_probe"], digests["zstandard"]])

    # without a kit the user's cache is used
    seen = _probe_sys_path(bare_python, folder, ["verify", archive, "--trust", pub], env)
    cache = tmp_path / "home" / ".cache" / "offline-bundle" / "runtime" / digests["obspeedup_probe"]
    assert seen["exit"] == 0 and seen["probe"] == str(cache / "obspeedup_probe" / "__init__.py"), seen


def test_a_wheel_whose_bytes_differ_is_not_used(built, pub, keydir, bare_python, tmp_path, wheels_dir):
    archive, _ = built
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"), str(wheels_dir))["folder"])
    wheel = folder / "wheels" / "obspeedup_probe-1.0-py3-none-any.whl"
    good = _sha(wheel)
    # same module, other bytes: still a valid wheel, but not the one that was signed
    make_wheel(tmp_path / "evil", "obspeedup_probe", "1.0", {"obspeedup_probe/__init__.py": PROBE + b"EVIL = 1\n"})
    shutil.copy(tmp_path / "evil" / wheel.name, wheel)
    # and one that was never listed
    make_wheel(folder / "wheels", "unlisted", "1.0", {"unlisted/__init__.py": b""})
    kit = tmp_path / "kit"
    env = minimal_env(tmp_path / "home")

    r = _pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    notes = r.stderr.strip().splitlines()
    assert len(notes) == 2, r.stderr
    assert "obspeedup_probe-1.0-py3-none-any.whl" in notes[0] and "does not match INSTALLER.SHA256SUMS" in notes[0]
    assert "unlisted-1.0-py3-none-any.whl" in notes[1] and "not listed" in notes[1]
    runtime = kit / ".state" / "runtime"
    assert good not in os.listdir(runtime) and _sha(wheel) not in os.listdir(runtime)
    assert len(os.listdir(runtime)) == 1  # the zstandard wheel only

    seen = _probe_sys_path(bare_python, folder, ["status", "--kit", kit], env)
    assert seen["exit"] == 0 and seen["probe"] is None, seen
    assert "does not match" in seen["stderr"]

    # the reviewer's check catches the same change
    check = run(["sha256sum", "-c", "--strict", "INSTALLER.SHA256SUMS"], env=env, cwd=folder)
    assert check.returncode != 0 and "obspeedup_probe-1.0-py3-none-any.whl: FAILED" in check.stdout


# --- docs/VERIFY.md, run as written -----------------------------------------------------------
def _doc_blocks(kind: str, algorithm: str = "") -> str:
    text = DOC.read_text()
    assert DOC_SECTION in text, "docs/VERIFY.md lost its section %r" % DOC_SECTION
    section = text.split(DOC_SECTION, 1)[1]
    nxt = re.search(r"^## ", section, re.M)
    section = section[:nxt.start()] if nxt else section
    blocks = [body for info, body in re.findall(r"```text (%s[^\n]*)\n(.*?)```" % kind, section, re.S)
              if info[len(kind):].strip() in ("", algorithm)]
    assert blocks, "no ```text %s blocks in %s" % (kind, DOC_SECTION)
    return "\n".join(blocks)


@pytest.mark.parametrize("sub,algorithm", [("ed", "ed25519"), ("ec", "ecdsa-p256")])
def test_the_documented_check_passes_and_catches_changes(keydir, tmp_path, wheels_dir, sub, algorithm):
    folder = Path(export_installer(str(keydir / sub / "bundle.key"), str(tmp_path / "inst"), str(wheels_dir))["folder"])
    script = _doc_blocks("installer-check", algorithm)
    assert "openssl" in script and "sha256sum -c --strict INSTALLER.SHA256SUMS" in script
    env = minimal_env(tmp_path, I=folder, PUB=keydir / sub / "bundle.pub")

    def check(pub=None):
        e = dict(env, PUB=str(pub)) if pub else env
        return run(["bash", "-euo", "pipefail", "-c", script], env=e, cwd=tmp_path)

    r = check()
    assert r.returncode == 0, r
    assert ("Signature Verified Successfully" if algorithm == "ed25519" else "Verified OK") in r.stdout
    assert "installer.pyz: OK" in r.stdout

    assert check(keydir / ("other" if sub == "ed" else "ed") / "bundle.pub").returncode != 0  # another key
    (folder / "stray.txt").write_text("unsigned\n")
    assert check().returncode != 0  # a file nobody signed
    (folder / "stray.txt").unlink()
    assert check().returncode == 0
    pyz = folder / "installer.pyz"
    data = bytearray(pyz.read_bytes())
    data[100] ^= 1
    pyz.chmod(0o644)
    pyz.write_bytes(bytes(data))
    r = check()
    assert r.returncode != 0 and "installer.pyz: FAILED" in r.stdout, r


def test_the_documented_run_commands_work_on_a_bare_python(built, pub, keydir, bare_python, tmp_path):
    archive, _ = built
    folder = Path(export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"))["folder"])
    script = _doc_blocks("installer-run")
    assert "python3 -I" in script
    kit = tmp_path / "kit"
    # `python3` on PATH is the bare interpreter: no cryptography, zstandard or pip
    env = minimal_env(tmp_path, extra_path=str(bare_python.parent), I=folder, PUB=pub, B=archive, KIT=kit)
    r = run(["bash", "-euo", "pipefail", "-c", script], env=env, cwd=tmp_path)
    assert r.returncode == 0, r
    assert "OK demo 1.0.0" in r.stdout and "installed demo 1.0.0" in r.stdout and "demo: current 1.0.0" in r.stdout


# --- the pieces of installer.runtime, in process ------------------------------------------------
def test_wheel_tags_fit_the_interpreter():
    glibc = Interpreter(implementation="cpython", version=(3, 11), abiflags="", arch="x86_64", glibc=(2, 36),
                        musl=None, linux=True)

    def fits(name, interp=glibc):
        return interp.rank(parse_wheel_name(name)) is not None

    assert fits("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl")
    assert fits("cryptography-44.0.0-cp37-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert fits("zstandard-0.25.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl")
    assert fits("zstandard-0.25.0-cp311-cp311-linux_x86_64.whl")
    assert fits("six-1.16.0-py2.py3-none-any.whl") and fits("pkg-1.0-py311-none-any.whl")
    assert not fits("zstandard-0.25.0-cp312-cp312-manylinux_2_17_x86_64.whl")     # another Python
    assert not fits("cryptography-44.0.0-cp312-abi3-manylinux_2_28_x86_64.whl")   # abi3 from a newer Python
    assert not fits("cryptography-44.0.0-cp39-abi3-manylinux_2_39_x86_64.whl")    # a newer glibc
    assert not fits("cryptography-44.0.0-cp39-abi3-manylinux_2_28_aarch64.whl")   # another architecture
    assert not fits("cryptography-44.0.0-cp39-abi3-musllinux_1_2_x86_64.whl")     # musl on glibc
    assert not fits("cryptography-44.0.0-cp39-abi3-win_amd64.whl")
    assert not fits("pkg-1.0-py312-none-any.whl") and not fits("pkg-1.0-pp310-pypy310_pp73-any.whl")
    free_threaded = Interpreter(implementation="cpython", version=(3, 13), abiflags="t", arch="x86_64",
                                glibc=(2, 36), musl=None, linux=True)
    assert not fits("cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl", free_threaded)
    assert fits("zstandard-0.25.0-cp313-cp313t-manylinux_2_17_x86_64.whl", free_threaded)
    musl = Interpreter(implementation="cpython", version=(3, 12), abiflags="", arch="aarch64", glibc=None,
                       musl=(1, 2), linux=True)
    assert fits("cryptography-44.0.0-cp39-abi3-musllinux_1_2_aarch64.whl", musl)
    assert not fits("cryptography-44.0.0-cp39-abi3-manylinux_2_28_aarch64.whl", musl)
    assert parse_wheel_name("not-a-wheel.whl") is None
    # the most specific wheel wins
    specific = glibc.rank(parse_wheel_name("zstandard-0.25.0-cp311-cp311-manylinux_2_17_x86_64.whl"))
    stable = glibc.rank(parse_wheel_name("zstandard-0.25.0-cp39-abi3-manylinux_2_17_x86_64.whl"))
    pure = glibc.rank(parse_wheel_name("zstandard-0.25.0-py3-none-any.whl"))
    assert specific > stable > pure


@pytest.mark.parametrize("name,kind,why", [
    ("../escape.py", stat.S_IFREG, "safe relative path"),
    ("/etc/passwd", stat.S_IFREG, "relative path"),
    ("pkg/../../x.py", stat.S_IFREG, "safe relative path"),
    ("pkg\\x.py", stat.S_IFREG, "relative path"),
    ("pkg/link", stat.S_IFLNK, "link"),
    ("pkg/fifo", stat.S_IFIFO, "link or special"),
    ("installer/cli.py", stat.S_IFREG, "shadow the installer"),
    ("pkg-1.0.data/purelib/installer/__init__.py", stat.S_IFREG, "shadow the installer"),
])
def test_unsafe_wheel_members_are_refused(tmp_path, name, kind, why):
    path = tmp_path / "w.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zi = zipfile.ZipInfo(name)
        zi.create_system = 3
        zi.external_attr = (kind | 0o644) << 16
        zf.writestr(zi, b"x")
    with zipfile.ZipFile(path) as zf, pytest.raises(ValueError, match=re.escape(why)):
        plan_members(zf)


def test_data_folders_map_to_the_top_and_case_duplicates_are_refused(tmp_path):
    path = tmp_path / "w.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg-1.0.data/platlib/fast.py", b"")
        zf.writestr("pkg-1.0.data/scripts/tool", b"")
        zf.writestr("pkg/__init__.py", b"")
    with zipfile.ZipFile(path) as zf:
        assert [rel for _, rel in plan_members(zf)] == ["fast.py", "pkg/__init__.py"]
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("PKG/__init__.py", b"")
    with zipfile.ZipFile(path) as zf, pytest.raises(ValueError, match="twice"):
        plan_members(zf)
