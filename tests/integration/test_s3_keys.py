"""Tempo's object store keys come from the site's files, KIT/secrets/s3, under compose as under Kubernetes
(issue 13 point 2).

- Compose: the Tempo service's entrypoint (run by the image's busybox shell) reads access_key_id and
  secret_access_key from the mounted folder into Tempo's environment, and falls back to the caller's
  AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY without them. The script is taken from what Debian's docker-compose
  renders (`config`, whose `$$` compose turns into `$` for the container) and run by Debian's busybox as Tempo's
  user: only its two paths (the mount point and /tempo) point at test stand-ins. As 10001 it reads the keys
  through the --secrets-group grant; without the group it stops before Tempo starts.
- Kubernetes: the Secret's values are the keys themselves: the one trailing line break `echo KEY > file` writes
  is dropped (an environment variable with a newline is a wrong key), and a file of several lines is one
  sentence naming the file, never its content (exit 9).
A missing docker-compose, busybox or setpriv is a FAILURE, not a skip.
"""

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "manifests" / "telemetry-storage" / "compose" / "docker-compose.telemetry-storage.yaml"
KEY, SECRET = "TEMPOKEY0123", "tempo/secret+key=="


def need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, "%s is not installed (scripts/setup.sh installs it)" % tool
    return path


def _entrypoint(tmp_path: Path, s3: Path) -> list:
    """Tempo's entrypoint as docker-compose renders it, with the mount point and /tempo pointed at stand-ins."""
    env = dict(os.environ, TELEMETRY_TLS_DIR=str(tmp_path), TELEMETRY_TOKEN_DIR=str(tmp_path),
               TELEMETRY_S3_DIR=str(s3), TELEMETRY_SECRETS_GID="4246")
    out = subprocess.run([need("docker-compose"), "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                         env=env, check=True).stdout
    service = yaml.safe_load(out)["services"]["tempo"]
    assert "%s:/etc/telemetry/s3:ro" % s3 in service["volumes"]
    shell, flag, script, name = [part.replace("$$", "$") for part in service["entrypoint"]]
    assert (shell, flag, name) == ("/busybox/sh", "-c", "tempo")
    fake = tmp_path / "tempo"
    fake.write_text('#!/bin/sh\necho "args: $*"\necho "key=[$AWS_ACCESS_KEY_ID] secret=[$AWS_SECRET_ACCESS_KEY]"\n')
    fake.chmod(0o755)
    assert script.count("dir=/etc/telemetry/s3;") == 1 and script.count("exec /tempo ") == 1
    script = script.replace("dir=/etc/telemetry/s3;", "dir=%s;" % s3).replace("exec /tempo ", "exec %s " % fake)
    return [need("busybox"), "sh", "-c", script, name] + service["command"]


def _keys(folder: Path, key=KEY + "\n", secret=SECRET + "\n", mode=0o600) -> Path:
    folder.mkdir(mode=0o755)
    for name, value in (("access_key_id", key), ("secret_access_key", secret)):
        (folder / name).write_text(value)
        (folder / name).chmod(mode)
    return folder


def test_compose_gives_tempo_the_keys_from_the_site_folder(tmp_path):
    tmp_path.chmod(0o755)
    argv = _entrypoint(tmp_path, _keys(tmp_path / "s3"))
    r = subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin",
                                                                   "AWS_ACCESS_KEY_ID": "from-the-caller"})
    assert r.returncode == 0, r.stderr
    assert "args: -config.file=/etc/tempo/config.yaml -config.expand-env=true" in r.stdout
    assert "key=[%s] secret=[%s]" % (KEY, SECRET) in r.stdout  # the files win, their line break dropped


def test_without_the_files_the_callers_environment_is_used(tmp_path):
    tmp_path.chmod(0o755)
    (tmp_path / "s3").mkdir()
    (tmp_path / "s3" / "secret_access_key").write_text("")   # an empty file is no key either
    r = subprocess.run(_entrypoint(tmp_path, tmp_path / "s3"), capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert r.returncode == 0 and "key=[k] secret=[s]" in r.stdout, r


def test_as_tempos_user_the_keys_are_read_through_the_group_grant_only(world_tmp):
    tmp_path = world_tmp  # a folder Tempo's user can enter
    s3 = _keys(tmp_path / "s3", mode=0o640)
    for f in [s3] + list(s3.iterdir()):  # as --secrets-group 4246 leaves them: folder 0750, files 0640
        os.chown(f, 0, 4246)
    s3.chmod(0o750)
    argv = _entrypoint(tmp_path, s3)
    as_tempo = [need("setpriv"), "--reuid=10001", "--regid=10001"]
    r = subprocess.run(as_tempo + ["--groups=4246", "--"] + argv, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 0 and "key=[%s]" % KEY in r.stdout, r
    r = subprocess.run(as_tempo + ["--clear-groups", "--"] + argv, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "args:" not in r.stdout, r          # Tempo never starts without its keys
    assert "tempo: cannot enter %s: install --secrets-group" % s3 in r.stderr and KEY not in r.stderr + r.stdout
    # a key file it can reach but not read stops it too, by the file's name
    s3.chmod(0o755)
    r = subprocess.run(as_tempo + ["--clear-groups", "--"] + argv, capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 1 and "args:" not in r.stdout and "access_key_id" in r.stderr, r


def test_the_kubernetes_secret_holds_the_keys_without_their_line_break(ob, default_bundle, pub, tmp_path, site):
    kit = tmp_path / "kit"
    (kit / "secrets").mkdir(parents=True)
    _keys(kit / "secrets" / "s3", key=KEY + "\r\n")
    args = ["--kit", kit, "--trust", pub, "--registry", site.host, "--insecure-registry", site.host]
    r = ob("install", default_bundle, *args, "--json")
    assert r.rc == 0, r
    secrets = kit / "secrets" / "telemetry-storage" / "2026.11.0" / site.host.replace(":", "_")
    doc = next(json.loads(p.read_text()) for p in secrets.glob("*-secret-stellaops-tempo-s3.json"))
    assert base64.b64decode(doc["data"]["AWS_ACCESS_KEY_ID"]) == KEY.encode()
    assert base64.b64decode(doc["data"]["AWS_SECRET_ACCESS_KEY"]) == SECRET.encode()
    (kit / "secrets" / "s3" / "secret_access_key").write_text(SECRET + "\nsecond line\n")
    r = ob("install", default_bundle, *args)
    assert r.rc == 9 and "secret_access_key must hold one line" in r.err, r
    assert SECRET not in r.err + r.out and "second line" not in r.err + r.out
