"""Secrets never appear in a bundle, a receipt, a log, an error or --json output (issue 6 item 6).

Every secret of a realistic run is planted — a source registry password (Docker config), a site registry
password (environment), the signing key's passphrase and private key, the dev TLS keys, the Prometheus token —
then every archive byte, every kit file outside KIT/secrets, and every stdout/stderr of successful and failing
runs is searched for them.
"""

import base64
from pathlib import Path

from conftest import write_manifest
from tests.helpers.deploysection import TENANT_OBJECTS
from tests.helpers.images import make_image, push
from tests.helpers.registry import start_registry

PASSPHRASE = "pass-phrase-DO-NOT-LEAK-7781"
TOKEN = "bearer-token-DO-NOT-LEAK-5512"


def _pem_body(path: Path) -> str:
    lines = path.read_text().strip().splitlines()
    return "".join(lines[1:-1])[:40]


def test_no_secret_leaks_anywhere(ob, tmp_path):
    outputs = []

    def run(*args, env=None):
        r = ob(*args, env=env)
        outputs.append(r.out + r.err)
        return r

    source = start_registry(tmp_path / "source", kind="basic")
    site = start_registry(tmp_path / "site", kind="token")
    try:
        lay = tmp_path / "lay"
        make_image(lay, "a", [{"bin/app": b"app\n"}])
        push(lay, "a", source, "team/app:1.0")
        docker_config = source.docker_config(tmp_path / "docker").parent
        key_env = {"BUNDLE_KEY_PASSPHRASE": PASSPHRASE, "DOCKER_CONFIG": str(docker_config)}
        assert run("keygen", "--out", tmp_path / "keys", env=key_env).rc == 0
        key, pub = tmp_path / "keys" / "bundle.key", tmp_path / "keys" / "bundle.pub"
        m = write_manifest(tmp_path / "m", extra="  images:\n    - ref: docker.io/team/app:1.0\n" + TENANT_OBJECTS)
        build = ["build", m, "--key", key, "--out", tmp_path / "out", "--json", "--mirror",
                 "docker.io=%s" % source.host, "--registry-ca", source.ca_file]
        assert run(*build, env=key_env).rc == 0
        assert run(*build, env=dict(key_env, BUNDLE_KEY_PASSPHRASE="wrong-" + PASSPHRASE[:5])).rc == 4
        archive = next((tmp_path / "out").glob("*.bundle.tar.zst"))
        kit = tmp_path / "kit"
        (kit / "secrets" / "token").mkdir(parents=True)
        (kit / "secrets" / "token" / "token").write_text(TOKEN)
        site_env = {"BUNDLE_REGISTRY_USER": site.username, "BUNDLE_REGISTRY_PASSWORD": site.password,
                    "DOCKER_CONFIG": str(tmp_path / "none")}
        install = ["install", archive, "--kit", kit, "--trust", pub, "--registry", site.host, "--registry-ca",
                   site.ca_file, "--dev-tls", "--json"]
        assert run(*install, env=site_env).rc == 0
        # refused, and says so plainly
        assert run(*install, env=dict(site_env, BUNDLE_REGISTRY_PASSWORD="nope")).rc == 7
        run("install", archive, "--kit", tmp_path / "kit2", "--trust", pub, "--registry", site.host, "--registry-ca",
            site.ca_file, "--json", env=dict(site_env, BUNDLE_REGISTRY_PASSWORD="wrong-site-pw"))
        run("status", "--kit", kit, "--json")
        run("inventory", "--kit", kit)

        secrets = [source.password, site.password, PASSPHRASE, TOKEN, _pem_body(key),
                   _pem_body(kit / "secrets" / "tls" / "tls.key"), _pem_body(kit / "secrets" / "tls" / "ca.key")]
        encoded = [base64.b64encode(s.encode()).decode() for s in secrets[:4]]
        haystacks = {"output": "\n".join(outputs)}
        for path in [archive] + [p for p in Path(kit).rglob("*") if p.is_file()
                                 and not str(p).startswith(str(kit / "secrets"))]:
            haystacks[str(path)] = path.read_bytes().decode("latin-1")
        for where, text in haystacks.items():
            for secret in secrets + encoded:
                assert secret not in text, "a secret leaked into %s" % where
            assert "PRIVATE KEY" not in text, where
        # and the secrets are where they belong
        assert (kit / "secrets" / "tls" / "tls.key").exists()
        assert any(TOKEN.encode() in base64.b64decode(v) for p in (kit / "secrets").rglob("*-secret-*.json")
                   for v in __import__("json").loads(p.read_text()).get("data", {}).values())
    finally:
        site.stop()
        source.stop()
