"""The report's by-hand commands are docs/VERIFY.md's, byte for byte, and run as the document's do."""

import subprocess

from conftest import REPO

from installer.report.byhand import STEPS, commands


def _doc_steps():
    lines = (REPO / "docs" / "VERIFY.md").read_text().split("\n")
    out, heading, i = [], "", 0
    while i < len(lines):
        line = lines[i]
        if line.startswith(("## ", "### ")):
            heading = line.lstrip("#").strip()
        if line.startswith("```sh"):
            kind, body = line[5:].strip(), []
            i += 1
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            if kind in ("", "ed25519", "ecdsa-p256"):
                out.append((heading, kind, "\n".join(body) + "\n"))
        i += 1
    return tuple(out)


def test_steps_are_the_documents_blocks():
    expected = _doc_steps()
    assert STEPS == expected, "installer/report/byhand.py STEPS should be:\n" + "\n".join(
        "    (%r, %r,\n     %r)," % step for step in expected)


def test_commands_for_one_key_type_are_verify_md_procedure():
    import importlib.util

    spec = importlib.util.spec_from_file_location("verify_md", REPO / "scripts" / "verify_md.py")
    verify_md = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(verify_md)
    for alg in ("ed25519", "ecdsa-p256"):
        runs = [c["run"] for c in commands("/m/x.bundle.tar.zst", "/k/bundle.pub", alg)]
        assert "\n".join(runs[1:]) == verify_md.procedure(alg)
        assert ("pkeyutl" in runs[3]) == (alg == "ed25519")


def test_the_variables_are_one_shell_word_each(tmp_path):
    hostile = "/media/a b'$(touch pwned)`x`.bundle.tar.zst"
    first = commands(hostile, "/k/it's.pub", "ed25519")[0]["run"]
    out = subprocess.run(["bash", "-c", first + 'printf "%s\\n%s\\n" "$B" "$PUB"'], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout
    assert out == hostile + "\n/k/it's.pub\n" and not (tmp_path / "pwned").exists()
