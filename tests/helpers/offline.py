"""Offline signing as an operator does it: openssl on the signing host, `seal` on the build host, twice."""

import subprocess
from pathlib import Path
from typing import Any, Callable


def openssl_sign(key: Path, data: Path, out: Path, kind: str = "ed") -> Path:
    """Ed25519 raw over the bytes (pkeyutl -rawin), or ECDSA P-256 DER over their SHA-256 (dgst)."""
    if kind == "ec":
        cmd = ["openssl", "dgst", "-sha256", "-sign", key, "-out", out, data]
    else:
        cmd = ["openssl", "pkeyutl", "-sign", "-inkey", key, "-rawin", "-in", data, "-out", out]
    subprocess.run([str(c) for c in cmd], check=True)
    return out


def seal_provenance(ob: Callable[..., Any], folder: Path, key: Path, kind: str = "ed", *trust: Any) -> Any:
    """Step 1: sign provenance.pae and seal; the folder then holds SHA256SUMS to sign."""
    sig = openssl_sign(key, folder / "provenance.pae", folder.parent / (folder.name + ".pae.sig"), kind)
    r = ob("seal", folder, "--sig", sig, *trust)
    assert r.rc == 0, r
    assert (folder / "SHA256SUMS").is_file() and not (folder / "provenance.pae").exists()
    return r
