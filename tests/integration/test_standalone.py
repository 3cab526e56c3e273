"""The standalone installer (docs/FORMAT.md "Standalone installer", issue 5 item 1, issue 10 item 9).

`installer.pyz` runs on an interpreter with NO cryptography, zstandard or pip (a `--without-pip`
venv of /usr/bin/python3), falling back to the openssl and zstd programs; it is byte-identical for
the same inputs; its INSTALLER.SHA256SUMS verifies with the commands of docs/VERIFY.md; speed-up
wheels are hash-checked, unpacked into a fresh private folder for each run (removed at exit), put on
sys.path after the standard library, and a wheel whose bytes differ is not used. The attacks on that
mechanism are in tests/adversarial/test_standalone_runtime.py.
"""

import io
import json
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Optional

import pytest
from conftest import REPO

import installer
from tests.helpers.craft import get, read_entries, write_archive
from tests.helpers.standalone import (SYSTEM_PYTHON, make_bare_python, make_wheel, minimal_env, older_cpythons,
                                probe_run, pyz, run, sha256, tool, wheel_of_installed)

from bundler.emit.standalone import export_installer, folder_name
from installer import runtime
from installer.errors import InvalidInput, UsageError
from installer.runtime import (RUNTIME_PREFIX, Interpreter, insert_after_stdlib, parse_wheel_name, plan_members,
                               protected_names)

DOC = REPO / "docs" / "VERIFY.md"
DOC_SECTION = "## Verifying the standalone installer"


@pytest.fixture(scope="session")
def bare_python(tmp_path_factory) -> Path:
    """A CPython with nothing but the standard library: no cryptography, no zstandard, no pip."""
    assert SYSTEM_PYTHON.exists(), "/usr/bin/python3 is required (not skipped)"
    return make_bare_python(SYSTEM_PYTHON, tmp_path_factory.mktemp("bare") / "venv")


@pytest.fixture(scope="session", autouse=True)
def _tools_present():
    for name in ("openssl", "zstd", "sha256sum"):
        tool(name)


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


def _export(keydir: Path, tmp_path: Path, wheels: Optional[Path] = None, sub: str = "ed") -> Path:
    """The standalone installer folder exported to ``tmp_path/inst``, signed by ``keydir/sub``, with ``wheels``."""
    return Path(export_installer(str(keydir / sub / "bundle.key"), str(tmp_path / "inst"),
                                 str(wheels) if wheels else None)["folder"])


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
    assert sums == "".join("%s  %s\n" % (sha256(fa / rel), rel) for rel in sorted(files[2:], key=str.encode))
    assert a["installer_sha256"] == sha256(fa / "installer.pyz") and a["signer"].startswith("SHA256:")
    assert a["algorithm"] == ("ed25519" if sub == "ed" else "ecdsa-p256")
    assert [w["path"] for w in a["wheels"]] == files[3:]

    with zipfile.ZipFile(fa / "installer.pyz") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names, key=str.encode)
    assert names[0] == "__main__.py" and "installer/runtime.py" in names and "installer/cli/main.py" in names
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
    folder = _export(keydir, tmp_path)
    kit = tmp_path / "kit"
    env = minimal_env(tmp_path / "home")

    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert "installed demo 1.0.0" in r.stdout and "Traceback" not in r.stderr
    current = kit / "current" / "demo"
    assert current.is_symlink() and os.readlink(current) == "../bundles/demo/1.0.0"
    check = run(["sha256sum", "-c", "--strict", "SHA256SUMS"], env=env, cwd=current)
    assert check.returncode == 0 and "config/app.yaml: OK" in check.stdout, check
    assert not (kit / ".state" / "runtime").exists() or os.listdir(kit / ".state" / "runtime") == []

    # verify --json succeeds on an interpreter that cannot import cryptography or zstandard:
    # the signature went through openssl and the zstd stream through the zstd program
    r = pyz(bare_python, folder, "verify", archive, "--trust", pub, "--json", env=env)
    assert r.returncode == 0, r
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["result"]["bundle_id"] == res["bundle_id"]
    assert out["result"]["signer"] == res["signer"]
    for module in ("cryptography", "zstandard"):
        assert run([bare_python, "-I", "-c", "import %s" % module], env=env).returncode != 0

    r = pyz(bare_python, folder, "status", "--kit", kit, "--json", env=env)
    assert r.returncode == 0, r
    bundles = json.loads(r.stdout)["result"]["bundles"]
    assert [(b["name"], b["current"]) for b in bundles] == [("demo", "1.0.0")]

    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0 and "already installed" in r.stdout, r

    r = pyz(bare_python, folder, "--version", env=env)
    assert r.returncode == 0 and r.stdout.strip() == "offline-bundle %s" % installer.__version__, r


def test_pyz_refuses_tampering_and_untrusted_keys_with_the_documented_codes(built, pub, keydir, bare_python, tmp_path):
    archive, _ = built
    folder = _export(keydir, tmp_path)
    env = minimal_env(tmp_path / "home")
    entries = read_entries(archive)
    e = get(entries, "config/app.yaml")
    e.data = e.data[:-2] + b"X\n"
    bad = write_archive(entries, tmp_path / archive.name)

    kit = tmp_path / "kit"
    r = pyz(bare_python, folder, "install", bad, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 5, r
    assert "config/app.yaml" in r.stderr and "Traceback" not in r.stderr
    assert not (kit / "current" / "demo").exists()
    r = pyz(bare_python, folder, "verify", bad, "--trust", pub, "--json", env=env)
    assert r.returncode == 5 and json.loads(r.stdout)["error"]["class"] == "content-mismatch", r

    # another key: openssl says no, the installer says exit 4
    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", keydir / "other" / "bundle.pub", env=env)
    assert r.returncode == 4, r
    # a usage error is one sentence, exit 2
    r = pyz(bare_python, folder, "install", tmp_path / "missing.bundle.tar.zst", "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r


def test_pyz_wins_over_another_installer_package_on_the_host(built, pub, keydir, tmp_path):
    """pypa/installer is also imported as `installer`: in the host's site-packages it cannot shadow the pyz."""
    archive, _ = built
    python = make_bare_python(SYSTEM_PYTHON, tmp_path / "venv")
    site = next((tmp_path / "venv" / "lib").glob("python3.*/site-packages"))
    (site / "installer").mkdir()
    (site / "installer" / "__init__.py").write_text("__version__ = '0.7.0'  # pypa/installer\n")
    folder = _export(keydir, tmp_path)
    r = pyz(python, folder, "verify", archive, "--trust", pub, env=minimal_env(tmp_path / "home"))
    assert r.returncode == 0 and "OK demo 1.0.0" in r.stdout, r


def test_pyz_without_the_zstd_program_says_what_is_missing(built, pub, keydir, bare_python, tmp_path):
    archive, _ = built
    folder = _export(keydir, tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(tool("openssl"), bindir / "openssl")
    r = run([bare_python, "-I", folder / "installer.pyz", "verify", archive, "--trust", pub],
            env={"PATH": str(bindir), "HOME": str(tmp_path)})
    assert r.returncode == 9 and "zstd" in r.stderr and "Traceback" not in r.stderr, r


@pytest.mark.parametrize("python", older_cpythons() or [None], ids=lambda p: p.name if p else "none")
def test_pyz_runs_on_the_oldest_supported_cpython(python, built, pub, keydir, tmp_path):
    if python is None:
        pytest.skip("no CPython 3.9 or 3.10 on this machine (vermin checks installer/ statically)")
    archive, _ = built
    bare = make_bare_python(python, tmp_path / "venv")
    folder = _export(keydir, tmp_path)
    env = minimal_env(tmp_path / "home")
    r = pyz(bare, folder, "install", archive, "--kit", tmp_path / "kit", "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert (tmp_path / "kit" / "current" / "demo").is_symlink()


# --- speed-up wheels ------------------------------------------------------------------------
def _private(path: str, tmp: Path) -> str:
    """The run's private folder holding ``path`` (a module file or a sys.path entry)."""
    rel = Path(path).relative_to(tmp)
    assert rel.parts[0].startswith(RUNTIME_PREFIX), path
    return str(tmp / rel.parts[0])


def test_wheels_are_hash_checked_and_unpacked_for_this_run_only(built, pub, keydir, bare_python, tmp_path,
                                                                wheels_dir):
    archive, _ = built
    folder = _export(keydir, tmp_path, wheels_dir)
    kit = tmp_path / "kit"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = minimal_env(tmp_path / "home", TMPDIR=tmp)

    # the fake zstandard wheel fits and is put on sys.path, but does not import: the zstd program takes over
    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    assert r.stderr == "", r.stderr
    assert os.listdir(tmp) == []  # the run's folder is gone
    assert not (kit / ".state" / "runtime").exists() or os.listdir(kit / ".state" / "runtime") == []
    assert not (tmp_path / "home" / ".cache").exists()

    seen = probe_run(bare_python, folder, ["status", "--kit", kit], env)
    assert seen["exit"] == 0 and seen["stderr"] == "", seen
    module = Path(seen["modules"]["obspeedup_probe"])
    private = Path(_private(str(module), tmp))
    probe_dir = module.parent.parent
    assert probe_dir.parent == private and probe_dir.name.endswith("-obspeedup-probe")
    # (probe_run's interpreter has exited: the folder is gone; what it held was checked through the module)
    assert not private.exists() and os.listdir(tmp) == []
    entries = [p for p in seen["path"] if p.startswith(str(private) + "/")]
    assert len(entries) == 2 and str(probe_dir) in entries  # obspeedup_probe and zstandard, not otherplatform
    dynload = next(i for i, p in enumerate(seen["path"]) if p.endswith("/lib-dynload"))
    assert [seen["path"].index(e) for e in entries] == [dynload + 1, dynload + 2]

    # each run unpacks again, somewhere new
    again = probe_run(bare_python, folder, ["verify", archive, "--trust", pub], env)
    assert again["exit"] == 0 and again["stderr"] == "", again
    assert _private(again["modules"]["obspeedup_probe"], tmp) != str(private)
    assert not (tmp_path / "home" / ".cache").exists() and os.listdir(tmp) == []


def test_unpacked_files_are_the_verified_bytes_in_a_private_folder(keydir, bare_python, tmp_path, wheels_dir):
    folder = _export(keydir, tmp_path, wheels_dir)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    code = ("import json, os, runpy, stat, sys\nsys.argv = [%r, '--version']\n"
            "try:\n    runpy.run_path(sys.argv[0], run_name='__main__')\nexcept SystemExit:\n    pass\n"
            "import obspeedup_probe\n"
            "pkg = os.path.dirname(obspeedup_probe.__file__)\n"
            "out = {}\n"
            "for p in (obspeedup_probe.__file__, pkg, os.path.dirname(pkg), os.path.dirname(os.path.dirname(pkg))):\n"
            "    st = os.lstat(p)\n"
            "    out[p] = [stat.S_IMODE(st.st_mode), st.st_uid]\n"
            "out['bytes'] = open(obspeedup_probe.__file__).read()\n"
            "out['record'] = os.path.isfile(os.path.join(os.path.dirname(pkg), 'obspeedup_probe-1.0.dist-info',\n"
            "                                            'RECORD'))\n"
            "print(json.dumps(out))\n" % str(folder / "installer.pyz"))
    r = run([bare_python, "-I", "-c", code], env=minimal_env(tmp_path / "home", TMPDIR=tmp))
    assert r.returncode == 0 and r.stderr == "", r
    out = json.loads(r.stdout.splitlines()[-1])
    assert out.pop("bytes") == PROBE.decode() and out.pop("record") is True
    modes = [mode for mode, uid in out.values()]
    assert modes == [0o644, 0o755, 0o755, 0o700], out  # module, package, wheel folder, the run's private folder
    assert {uid for mode, uid in out.values()} == {os.getuid()}
    assert os.listdir(tmp) == []


@pytest.fixture(scope="module")
def real_wheels(tmp_path_factory) -> Path:
    """cryptography (with cffi, which it needs) and zstandard, as installed in the test environment."""
    d = tmp_path_factory.mktemp("real-wheels")
    for dist in ("cryptography", "cffi", "zstandard"):
        wheel_of_installed(d, dist)
    return d


def test_real_cryptography_and_zstandard_wheels_are_used(built, pub, keydir, bare_python, tmp_path, real_wheels):
    archive, res = built
    folder = _export(keydir, tmp_path, real_wheels)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = minimal_env(tmp_path / "home", TMPDIR=tmp)
    seen = probe_run(bare_python, folder, ["install", archive, "--kit", tmp_path / "kit", "--trust", pub], env,
                     modules=("cryptography", "zstandard", "_cffi_backend"))
    assert seen["exit"] == 0 and seen["stderr"] == "", seen
    private = {_private(f, tmp) for f in seen["modules"].values()}
    assert len(private) == 1, seen["modules"]
    assert (tmp_path / "kit" / "current" / "demo").is_symlink()
    r = pyz(bare_python, folder, "verify", archive, "--trust", keydir / "other" / "bundle.pub", env=env)
    assert r.returncode == 4 and "Traceback" not in r.stderr, r
    assert os.listdir(tmp) == []


def test_a_wheel_whose_bytes_differ_is_not_used(built, pub, keydir, bare_python, tmp_path, wheels_dir):
    archive, _ = built
    folder = _export(keydir, tmp_path, wheels_dir)
    wheel = folder / "wheels" / "obspeedup_probe-1.0-py3-none-any.whl"
    # same module, other bytes: still a valid wheel, but not the one that was signed
    make_wheel(tmp_path / "evil", "obspeedup_probe", "1.0", {"obspeedup_probe/__init__.py": PROBE + b"EVIL = 1\n"})
    shutil.copy(tmp_path / "evil" / wheel.name, wheel)
    # and one that was never listed
    make_wheel(folder / "wheels", "unlisted", "1.0", {"unlisted/__init__.py": b""})
    kit = tmp_path / "kit"
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = minimal_env(tmp_path / "home", TMPDIR=tmp)

    r = pyz(bare_python, folder, "install", archive, "--kit", kit, "--trust", pub, env=env)
    assert r.returncode == 0, r
    notes = r.stderr.strip().splitlines()
    assert len(notes) == 2, r.stderr
    assert "obspeedup_probe-1.0-py3-none-any.whl" in notes[0] and "does not match INSTALLER.SHA256SUMS" in notes[0]
    assert "unlisted-1.0-py3-none-any.whl" in notes[1] and "not listed" in notes[1]

    seen = probe_run(bare_python, folder, ["status", "--kit", kit], env, modules=("obspeedup_probe", "unlisted"))
    assert seen["exit"] == 0 and seen["modules"] == {"obspeedup_probe": None, "unlisted": None}, seen
    assert "does not match" in seen["stderr"]
    entries = [p for p in seen["path"] if p.startswith(str(tmp) + "/")]
    assert [Path(e).name for e in entries] == ["0-zstandard"]  # the zstandard wheel only

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
    folder = _export(keydir, tmp_path, wheels_dir, sub=sub)
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
    folder = _export(keydir, tmp_path)
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
    ("installer/cli/main.py", stat.S_IFREG, "shadow the installer"),
    ("pkg-1.0.data/purelib/installer/__init__.py", stat.S_IFREG, "shadow the installer"),
    ("__main__.py", stat.S_IFREG, "shadow the installer"),
    ("json/__init__.py", stat.S_IFREG, "shadow the standard-library module json"),
    ("hashlib.py", stat.S_IFREG, "standard-library module hashlib"),
    ("_ssl.cpython-39-x86_64-linux-gnu.so", stat.S_IFREG, "standard-library module _ssl"),
    ("Base64.py", stat.S_IFREG, "standard-library module Base64"),
    ("sitecustomize.py", stat.S_IFREG, "standard-library module sitecustomize"),
    ("pkg-1.0.data/platlib/evil.pth", stat.S_IFREG, "path configuration file"),
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


def test_protected_names_cover_the_standard_library_and_nothing_a_speed_up_wheel_needs():
    names = protected_names()
    for name in ("json", "hashlib", "base64", "os", "_json", "_ssl", "distutils", "sys", "site", "sitecustomize",
                 "usercustomize", "installer", "__main__", "encodings",
                 "lib-dynload"):  # not a module, but proof the stdlib folder's own listing is used (all 3.9 has)
        assert name in names, name
    for name in ("cryptography", "zstandard", "cffi", "_cffi_backend", "obspeedup_probe", "cryptography-50"):
        assert name not in names, name


def test_wheel_folders_go_right_after_the_standard_library():
    std = [p for p in sys.path if p.endswith("/lib-dynload")]
    assert std, "this Python has no lib-dynload on sys.path"
    stdlib = os.path.dirname(std[0])
    path = ["/opt/x/installer.pyz", "/usr/lib/python311.zip", stdlib, std[0], "/venv/site-packages", "/usr/lib/x"]
    assert insert_after_stdlib(["/tmp/a", "/tmp/b"], path) == 4
    assert path == ["/opt/x/installer.pyz", "/usr/lib/python311.zip", stdlib, std[0], "/tmp/a", "/tmp/b",
                    "/venv/site-packages", "/usr/lib/x"]
    nothing_known = ["/opt/x/installer.pyz", "/somewhere/else"]
    assert insert_after_stdlib(["/tmp/a"], nothing_known) == 2 and nothing_known[-1] == "/tmp/a"


def test_compiled_wheels_are_skipped_where_the_private_folder_cannot_execute(keydir, tmp_path, monkeypatch):
    """On a noexec TMPDIR a compiled module cannot load: say so and leave that wheel out (pure ones stay)."""
    wheels = tmp_path / "w"
    make_wheel(wheels, "fastmod", "1.0", {"fastmod.cpython-311-x86_64-linux-gnu.so": b"\x7fELF not really"})
    make_wheel(wheels, "puremod", "1.0", {"puremod.py": b"X = 1\n"})
    folder = export_installer(str(keydir / "ed" / "bundle.key"), str(tmp_path / "inst"), str(wheels))["folder"]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    monkeypatch.setattr(runtime, "_noexec", lambda where: True)  # as os.statvfs says of a noexec mount
    err = io.StringIO()
    path = [p for p in sys.path if p.endswith("/lib-dynload")] + ["/venv/site-packages"]
    added = runtime.activate(home=folder, stderr=err, path=path)
    assert [Path(a).name for a in added] == ["1-puremod"] and path[1:] == added + ["/venv/site-packages"]
    assert "fastmod-1.0-py3-none-any.whl" in err.getvalue() and "noexec" in err.getvalue(), err.getvalue()
    assert len(err.getvalue().splitlines()) == 1
