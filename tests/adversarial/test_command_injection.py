"""Issue 10 point 15: COMMANDS.txt and --apply quote every argument.

The operator's kit lives at a path with spaces, or a local user chose its name: `$(touch PWNED)`. Before the
fix COMMANDS.txt held `kubectl apply -f /srv/my kit $(touch PWNED)/deploy/...` unquoted (a shell run the
substitution and split the path), and --apply split command strings on spaces.
"""

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from conftest import write_manifest
from tests.helpers.deploysection import TENANT_OBJECTS

STUB = """#!/bin/sh
# a stand-in for kubectl, helm or docker: records its arguments, one per line, then a separator
for a in "$@"; do printf '%s\\n' "$a" >> "$STUB_LOG"; done
echo ---- >> "$STUB_LOG"
"""


@pytest.fixture
def odd_kit(ob, key, pub, tmp_path):
    m = write_manifest(tmp_path / "src", extra=TENANT_OBJECTS)  # ConfigMaps and the kubectl commands that apply them
    r = ob("build", m, "--key", key, "--out", tmp_path / "out", "--json")
    assert r.rc == 0, r
    kit = tmp_path / "my kit $(touch PWNED) `touch PWNED2`"
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    for tool in ("kubectl", "helm", "docker"):
        (stubs / tool).write_text(STUB)
        os.chmod(stubs / tool, 0o755)
    return kit, r.json["result"]["archive"], stubs


def calls(log: Path):
    return [c.strip("\n").split("\n") for c in log.read_text().split("----\n") if c.strip()]


def test_commands_txt_keeps_every_path_one_inert_argument(ob, pub, tmp_path, odd_kit):
    kit, archive, stubs = odd_kit
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", "127.0.0.1:9", "--json")
    assert r.rc == 0, r
    commands = (kit / r.json["result"]["outputs"]["folder"] / "COMMANDS.txt").read_text()
    log = tmp_path / "log"
    env = dict(os.environ, PATH="%s:%s" % (stubs, os.environ["PATH"]), STUB_LOG=str(log))
    for line in commands.splitlines():
        assert subprocess.run(["sh", "-c", line], cwd=tmp_path, env=env).returncode == 0, line
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    folder = str(kit / r.json["result"]["outputs"]["folder"] / "kubernetes")
    assert calls(log)[0] == ["apply", "-f", folder]
    assert [shlex.split(line) for line in commands.splitlines()][0] == ["kubectl", "apply", "-f", folder]


def test_apply_runs_argument_lists_not_split_strings(ob, pub, tmp_path, odd_kit):
    kit, archive, stubs = odd_kit
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    log = tmp_path / "log"
    env = {"PATH": "%s:%s" % (stubs, os.environ["PATH"]), "STUB_LOG": str(log), "KUBECONFIG": str(kubeconfig)}
    r = ob("install", archive, "--kit", kit, "--trust", pub, "--registry", "127.0.0.1:9", "--apply", "--json", env=env)
    assert r.rc == 0, r
    assert not (Path.cwd() / "PWNED").exists()
    folder = str(kit / r.json["result"]["outputs"]["folder"] / "kubernetes")
    assert ["apply", "-f", folder] in calls(log)
