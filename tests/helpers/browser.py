"""The real headless Chromium (Debian's `chromium`, scripts/setup.sh) for the HTML report's browser tests: print a
page to PDF, take a screenshot, read the PDF's text back with poppler's `pdftotext`.

A missing browser or poppler fails the test (pytest.fail), never skips it: the report is for people who print
it, and only a real browser shows what they will get.

Every run gets its own HOME and --user-data-dir (removed afterwards), a time limit (TIMEOUT) after which its whole
process group is killed, and the flags that turn off everything Chromium would fetch on its own (component
updates, sync, metrics, background networking). As root it runs under `unshare -n`: in a network namespace with
nothing but a loopback that is down, so a page that needed the network could not render there, and a test that
passes proves the report needs none. As another user `unshare -r -n` is tried (an unprivileged user namespace);
where neither works it runs with the host's network (``network_denied()`` says which). --no-sandbox because
Chromium's own sandbox cannot start as root (and not in the namespace either); the page it loads is our own file.
"""

import functools
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import List

import pytest

TIMEOUT = 120  # seconds for one browser run

# --headless is the new headless mode in this Chromium (the old one is a separate chrome-headless-shell now).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--no-default-browser-check",
         "--disable-extensions", "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--metrics-recording-only", "--disable-dev-shm-usage", "--disable-default-apps", "--mute-audio",
         "--force-device-scale-factor=1", "--lang=en-US"]


def chromium() -> str:
    """The chromium binary on PATH; the test fails when there is none."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium on PATH: the report's browser tests need Debian's chromium "
                "(apt-get install --no-install-recommends chromium poppler-utils fonts-dejavu-core; scripts/setup.sh)")


def _poppler(name: str) -> str:
    path = shutil.which(name)
    if not path:
        pytest.fail("no %s on PATH: apt-get install poppler-utils (scripts/setup.sh)" % name)
    return path


@functools.lru_cache(maxsize=None)
def _offline_prefix() -> tuple:
    """The command that runs a program without network: `unshare -n` as root, `unshare -r -n` otherwise, if it works."""
    unshare = shutil.which("unshare")
    if not unshare:
        return ()
    candidates = [[unshare, "-n"], [unshare, "-r", "-n"]] if os.geteuid() == 0 else [[unshare, "-r", "-n"]]
    for prefix in candidates:
        try:
            # inside, the only interface is lo (and it is down). /proc/self/net is the reader's namespace;
            # /sys/class/net would show the namespace sysfs was mounted in.
            probe = subprocess.run(prefix + ["cat", "/proc/self/net/dev"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        interfaces = [line.split(":")[0].strip() for line in probe.stdout.splitlines()[2:]]
        if probe.returncode == 0 and interfaces == ["lo"]:
            return tuple(prefix)
    return ()


def network_denied() -> bool:
    """Whether the browser runs in a namespace without network."""
    return bool(_offline_prefix())


def _noise(line: str) -> bool:
    """Chromium's usual complaints in a container: no D-Bus, the launcher's memory test, GPU fallbacks."""
    return ("dbus" in line or "/usr/bin/chromium: " in line or "gpu" in line.lower()
            or "Fontconfig" in line or not line.strip())


def run_chromium(args: List[str], output: Path) -> str:
    """Run chromium headless with ``args`` and FLAGS, wait for it (at most TIMEOUT s) and require ``output`` to be
    written; returns its stderr without the usual noise."""
    output = Path(output)
    if output.exists():
        output.unlink()
    scratch = Path(tempfile.mkdtemp(prefix="report-browser-"))
    try:
        home = scratch / "home"
        home.mkdir()
        env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "TZ": "UTC",
               "XDG_CONFIG_HOME": str(home / ".config"), "XDG_CACHE_HOME": str(home / ".cache"),
               "TMPDIR": str(scratch)}
        argv = list(_offline_prefix()) + [chromium()] + FLAGS + ["--user-data-dir=%s" % (scratch / "profile")] + args
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, cwd=str(scratch), start_new_session=True)
        try:
            out, err = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail("chromium did not finish within %d s: %s" % (TIMEOUT, " ".join(argv)))
        finally:
            # whatever of its process group is left (zygote, utility processes): it was started by us, for this run
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        messages = "\n".join(line for line in err.decode(errors="replace").splitlines() if not _noise(line))
        if proc.returncode != 0 or not output.is_file() or output.stat().st_size == 0:
            pytest.fail("chromium exited %d without writing %s\n%s\n%s" % (proc.returncode, output, " ".join(argv),
                                                                          messages[-4000:]))
        return messages
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _url(html_path: Path) -> str:
    return Path(html_path).resolve().as_uri()


def print_pdf(html_path: Path, pdf_path: Path) -> None:
    """The page printed to PDF the way a reviewer's "Print" would (no header or footer added by the browser)."""
    run_chromium(["--no-pdf-header-footer", "--print-to-pdf=%s" % Path(pdf_path).resolve(), _url(html_path)],
                 Path(pdf_path))


def screenshot(html_path: Path, png_path: Path, width: int = 1280, height: int = 2000) -> None:
    """A PNG of the page's first ``width`` x ``height`` CSS pixels (device scale factor 1)."""
    run_chromium(["--hide-scrollbars", "--window-size=%d,%d" % (width, height),
                  "--screenshot=%s" % Path(png_path).resolve(), _url(html_path)], Path(png_path))


def pdf_text(pdf_path: Path) -> str:
    """The PDF's text as `pdftotext -layout` reads it (pages separated by form feeds)."""
    r = subprocess.run([_poppler("pdftotext"), "-layout", "-enc", "UTF-8", str(pdf_path), "-"], capture_output=True,
                       timeout=60)
    if r.returncode != 0:
        pytest.fail("pdftotext failed on %s: %s" % (pdf_path, r.stderr.decode(errors="replace")))
    return r.stdout.decode("utf-8")


def pdf_info(pdf_path: Path) -> dict:
    """`pdfinfo`'s fields (Pages, Page size, ...) as a dict of strings."""
    r = subprocess.run([_poppler("pdfinfo"), str(pdf_path)], capture_output=True, timeout=60)
    if r.returncode != 0:
        pytest.fail("pdfinfo failed on %s: %s" % (pdf_path, r.stderr.decode(errors="replace")))
    info = {}
    for line in r.stdout.decode("utf-8", errors="replace").splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info
