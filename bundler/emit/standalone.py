"""Export the standalone installer (docs/FORMAT.md "Standalone installer").

``export_installer`` writes ``OUT/offline-bundle-installer-<ver>/``:

- ``installer.pyz``: a zipapp of the ``installer`` package (standard library only) with a
  ``__main__.py`` that unpacks the hash-checked speed-up wheels into a fresh private folder for this
  run and puts it on ``sys.path`` after the standard library (installer.runtime), then runs the
  argparse CLI; built entry by entry so the same sources give the same bytes;
- ``wheels/*.whl`` (optional): copied as they are, never pip-installed; one the installer would refuse
  (unsafe members, a top-level name of the standard library or of the installer) is refused here first;
- ``INSTALLER.SHA256SUMS`` (coreutils, two spaces, C order) and ``INSTALLER.SHA256SUMS.sig``, signed
  with the bundle key exactly like a bundle's SHA256SUMS, so staff verify it the same way
  (docs/VERIFY.md, "Verifying the standalone installer").
"""

import hashlib
import io
import os
import shutil
import stat
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import installer
from installer.fsutil import copy_hashed
from installer.errors import InvalidInput, UsageError
from installer.format.paths import c_sorted, path_problem
from installer.runtime import PROG, PYZ_NAME, SIG_NAME, SUMS_NAME, WHEELS_DIR, parse_wheel_name, plan_members
from installer.trust.signing import openssl_verify_command
from installer.format.sums import format_sums

from bundler.seal import keys

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can say: no clock in the bytes
ZIP_LEVEL = 9
FILE_MODE = 0o644

MAIN_PY = '''\
"""offline-bundle standalone installer: python3 -I installer.pyz COMMAND ... (CPython >= 3.9)."""
import sys

if sys.version_info < (3, 9):
    sys.stderr.write("%(prog)s: needs CPython 3.9 or later, not %%d.%%d\\n" %% tuple(sys.version_info[:2]))
    sys.exit(9)

import installer

if getattr(installer, "OFFLINE_BUNDLE_FORMAT", None) != 1:
    sys.stderr.write("%(prog)s: the 'installer' package was not loaded from this zip\\n")
    sys.exit(1)

try:
    from installer import runtime

    runtime.activate()  # hash-checked wheels from ./wheels, unpacked for this run only, after the stdlib
except Exception as exc:  # never the reason an install fails: the fallbacks remain
    sys.stderr.write("%(prog)s: note: speed-up wheels not used: %%s\\n" %% exc)

from installer.cli.main import main

sys.exit(main(prog="%(prog)s"))
''' % {"prog": PROG}


def folder_name(version: str = installer.__version__) -> str:
    return "offline-bundle-installer-%s" % version


def installer_sources() -> Dict[str, bytes]:
    """{arcname: bytes} of the installer package's .py files (no __pycache__), plus __main__.py."""
    root = Path(installer.__file__).resolve().parent
    sources = {"__main__.py": MAIN_PY.encode("utf-8")}
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if any(part == "__pycache__" or part.startswith(".") for part in rel.parts):
            continue
        sources["installer/" + rel.as_posix()] = path.read_bytes()
    return sources


def build_pyz(sources: Dict[str, bytes]) -> bytes:
    """A zip of ``sources`` whose bytes depend on nothing else: C-sorted names, 1980-01-01, 0644, deflate 9."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in c_sorted(sources):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE_TIME)
            info.create_system = 3  # unix: the mode below is meaningful
            info.external_attr = (stat.S_IFREG | FILE_MODE) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, sources[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL)
    return buf.getvalue()


def _wheel_files(wheels_dir: str) -> List[str]:
    if not os.path.isdir(wheels_dir):
        raise UsageError("the wheels folder %s does not exist" % wheels_dir)
    names = c_sorted(e.name for e in os.scandir(wheels_dir) if e.name.endswith(".whl") and e.is_file())
    problems = []
    for name in names:
        why = path_problem("%s/%s" % (WHEELS_DIR, name))
        if why or parse_wheel_name(name) is None:
            problems.append("%s: not a wheel file name (name-version-python-abi-platform.whl, A-Z a-z 0-9 . _ -)"
                            % name)
            continue
        try:
            with zipfile.ZipFile(os.path.join(wheels_dir, name)) as zf:
                plan_members(zf)  # the installer would refuse it: refuse it here first
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            problems.append("%s: %s" % (name, exc))
    if problems:
        raise InvalidInput("the wheels folder %s holds files the installer would not use" % wheels_dir, problems)
    return names


def _write(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, FILE_MODE)  # whatever the umask said


def _copy_hashed(src: str, dst: str) -> Tuple[str, int]:
    """Copy ``src`` to a new file ``dst``, durably; (hex sha256, size)."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with open(src, "rb") as fin, os.fdopen(fd, "wb") as fout:
        hexdigest, size = copy_hashed(fin, fout)
        fout.flush()
        os.fsync(fout.fileno())
    os.chmod(dst, FILE_MODE)
    return hexdigest, size


def export_installer(key_path: str, out_dir: str, wheels_dir: Optional[str] = None,
                     signer: Optional[keys.Signer] = None) -> Dict[str, Any]:
    """Write ``out_dir/offline-bundle-installer-<ver>/`` (replacing an older copy whole); returns what was written."""
    signer = signer or keys.load_signer(key_path)
    wheels_from = wheels_dir or ""
    wheel_names = _wheel_files(wheels_from) if wheels_from else []
    pyz = build_pyz(installer_sources())
    os.makedirs(out_dir, exist_ok=True)
    final = os.path.join(os.path.abspath(out_dir), folder_name())
    tmp = tempfile.mkdtemp(prefix=".%s.tmp-" % folder_name(), dir=os.path.dirname(final))
    try:
        os.chmod(tmp, 0o755)
        _write(os.path.join(tmp, PYZ_NAME), pyz)
        entries = {PYZ_NAME: hashlib.sha256(pyz).hexdigest()}
        wheels: List[Dict[str, object]] = []
        if wheel_names:
            os.mkdir(os.path.join(tmp, WHEELS_DIR))
            os.chmod(os.path.join(tmp, WHEELS_DIR), 0o755)
        for name in wheel_names:
            rel = "%s/%s" % (WHEELS_DIR, name)
            sha256, size = _copy_hashed(os.path.join(wheels_from, name), os.path.join(tmp, WHEELS_DIR, name))
            entries[rel] = sha256
            wheels.append({"path": rel, "sha256": sha256, "size": size})
        sums = format_sums(entries)
        signature = signer.sign(sums)
        _write(os.path.join(tmp, SUMS_NAME), sums)
        _write(os.path.join(tmp, SIG_NAME), signature)
        aside = None
        if os.path.lexists(final):
            aside = tempfile.mkdtemp(prefix=".%s.old-" % folder_name(), dir=os.path.dirname(final))
            os.rename(final, os.path.join(aside, "old"))
        os.rename(tmp, final)
        if aside:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        if os.path.lexists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    pub = signer.public
    return {
        "folder": final,
        "version": installer.__version__,
        "installer": os.path.join(final, PYZ_NAME),
        "installer_sha256": entries[PYZ_NAME],
        "installer_size": len(pyz),
        "wheels": wheels,
        "sums": os.path.join(final, SUMS_NAME),
        "sums_sha256": hashlib.sha256(sums).hexdigest(),
        "signature": os.path.join(final, SIG_NAME),
        "signer": pub.fingerprint,
        "algorithm": pub.algorithm,
        "openssl_verify": " ".join(openssl_verify_command(pub.algorithm, "bundle.pub", SUMS_NAME, SIG_NAME)),
        "run": "python3 -I %s install ARCHIVE --kit DIR --trust bundle.pub" % PYZ_NAME,
    }


# --- the command (wired in bundler/commands.py) ---------------------------------------------
def run_export_installer(key: str = "", out: str = ".", wheels: Optional[str] = None, quiet: bool = False,
                         **_: Any) -> Dict[str, Any]:
    return export_installer(key, out or ".", wheels)


def text_export_installer(r: Dict[str, Any]) -> List[str]:
    lines = ["wrote %s: %s (%d bytes), %d speed-up wheel%s, %s signed by %s" % (
        r["folder"], PYZ_NAME, r["installer_size"], len(r["wheels"]), "" if len(r["wheels"]) == 1 else "s",
        SUMS_NAME, r["signer"])]
    lines += ["  %s  %s" % (w["sha256"], w["path"]) for w in r["wheels"]]
    lines += ["reviewers verify it with: %s; then sha256sum -c --strict %s" % (r["openssl_verify"], SUMS_NAME),
              "run it with: %s" % r["run"]]
    return lines


def with_installer(result: Dict[str, Any], key: str, out: str, wheels: Optional[str] = None) -> Dict[str, Any]:
    """`build --with-installer`: export the installer next to the archive; the build result gains ``installer``."""
    if not key:
        raise UsageError("--with-installer signs the installer with --key; after --unsigned and seal, "
                         "run export-installer where the key is")
    result["installer"] = export_installer(key, out or ".", wheels)
    return result


def installer_lines(result: Dict[str, Any]) -> List[str]:
    """The lines `build --with-installer` adds to the build's text output (none without it)."""
    r = result.get("installer")
    return text_export_installer(r)[:1] if r else []
