"""The project's layout and names (docs/ARCHITECTURE.md), checked on the source and the wheel."""

import ast
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO, run_cmd

INSTALLER = REPO / "installer"
OPTIONAL = {"cryptography", "zstandard", "tqdm", "compression"}  # used when importable, never required


def _imports(path: Path):
    """(module, inside_try_importerror) for every import in a file."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
                for h in node.handlers):
            for inner in ast.walk(node):
                guarded.add(id(inner))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, id(node) in guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            out.append((node.module, id(node) in guarded))
    return out


def _installer_files():
    files = sorted(INSTALLER.rglob("*.py"))
    assert len(files) >= 10
    return files


def test_installer_never_imports_bundler():
    offenders = [(str(f), m) for f in _installer_files() for m, _ in _imports(f) if m.split(".")[0] == "bundler"]
    assert offenders == []


def test_installer_uses_the_standard_library_only_with_optional_speedups():
    stdlib = set(sys.stdlib_module_names)
    for f in _installer_files():
        for module, guarded in _imports(f):
            top = module.split(".")[0]
            if top in stdlib or top == "installer":
                continue
            assert top in OPTIONAL, "%s imports %s" % (f, module)
            if top == "cryptography":
                continue  # only imported inside functions reached after an importability check
            assert guarded, "%s imports %s outside try/except ImportError" % (f, module)


def test_cryptography_is_only_touched_after_checking_it_is_importable():
    src = (INSTALLER / "trust" / "signing.py").read_text()
    assert "import cryptography  # noqa: F401\n    except ImportError:" in src


def test_installer_code_runs_on_python_3_9_statically():
    vermin = Path(sys.executable).parent / "vermin"
    assert vermin.exists(), "vermin is a test dependency (pip install '.[test]')"
    r = subprocess.run([str(vermin), "-t=3.9-", "--no-tips", "--violations", "--eval-annotations", str(INSTALLER)],
                       capture_output=True, text=True)
    # only the guarded CPython 3.14 import is exempted, by its own `# novermin` comment
    assert sum(f.read_text().count("novermin") for f in _installer_files()) == 1
    assert r.returncode == 0, r.stdout + r.stderr


def test_vermin_would_catch_a_3_10_construct(tmp_path):
    """The check above can fail: a match statement is flagged."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x):\n    match x:\n        case 1:\n            return 1\n")
    vermin = Path(sys.executable).parent / "vermin"
    r = subprocess.run([str(vermin), "-t=3.9-", "--no-tips", "--violations", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0


# --- the layers (docs/ARCHITECTURE.md) -------------------------------------------------------------------
# Lowest first. A module may import from its own layer and the layers below it, never from a layer above.
INSTALLER_LAYERS = [
    ("base", ["installer", "installer.errors", "installer.textsafe", "installer.faults", "installer.fsutil",
              "installer.progress"]),
    ("format", ["installer.format"]),
    ("trust", ["installer.trust"]),
    ("kit", ["installer.kit"]),
    ("site", ["installer.site"]),
    ("deploy", ["installer.deploy"]),
    ("install", ["installer.install", "installer.rollback"]),
    ("report", ["installer.report"]),
    ("cli", ["installer.cli"]),
    ("bootstrap", ["installer.runtime", "installer.__main__"]),
]
BUNDLER_LAYERS = [
    ("base", ["bundler", "bundler.resources"]),
    ("plan", ["bundler.plan"]),
    ("pull", ["bundler.pull"]),
    ("stage", ["bundler.stage"]),
    ("delta", ["bundler.delta"]),
    ("seal", ["bundler.seal"]),
    ("emit", ["bundler.emit"]),
    ("build", ["bundler.build"]),
    ("commands", ["bundler.commands", "bundler.cli", "bundler.__main__"]),
]


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer_of(module: str, layers) -> int:
    """Index of the layer holding ``module``: the longest prefix that names a layer member."""
    best, best_len = -1, -1
    for i, (_name, members) in enumerate(layers):
        for m in members:
            if (module == m or module.startswith(m + ".")) and len(m) > best_len:
                best, best_len = i, len(m)
    return best


def _absolute_imports(path: Path):
    """Every module a file imports (relative imports resolved), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out.append((module, node.lineno))
            # `from installer.site import push` imports installer.site.push
            out += [(module + "." + alias.name, node.lineno) for alias in node.names]
    return out


def layer_violations(root: Path, layers, top: str):
    problems = []
    for path in sorted(root.rglob("*.py")):
        here = _module_name(path)
        mine = _layer_of(here, layers)
        if mine < 0:
            problems.append("%s is in no layer" % here)
            continue
        reported = set()
        for module, line in _absolute_imports(path):
            if module.split(".")[0] != top or line in reported:
                continue
            theirs = _layer_of(module, layers)
            if theirs > mine:
                reported.add(line)
                problems.append("%s:%d: %s (layer %s) imports %s (layer %s)"
                                % (path.relative_to(REPO), line, here, layers[mine][0], module, layers[theirs][0]))
    return problems


def test_installer_layers_import_only_downwards():
    assert layer_violations(INSTALLER, INSTALLER_LAYERS, "installer") == []


def test_bundler_layers_import_only_downwards():
    assert layer_violations(REPO / "bundler", BUNDLER_LAYERS, "bundler") == []


def test_every_installer_subpackage_is_a_layer():
    packages = {p.parent.name for p in INSTALLER.rglob("__init__.py") if p.parent != INSTALLER}
    assert packages == {"format", "trust", "kit", "site", "deploy", "report", "cli"}


def test_the_layer_check_catches_a_wrong_way_import(tmp_path, monkeypatch):
    """The check above can fail: a format module importing the kit is reported, with file and line."""
    fake = tmp_path / "installer"
    (fake / "format").mkdir(parents=True)
    (fake / "kit").mkdir()
    for d in (fake, fake / "format", fake / "kit"):
        (d / "__init__.py").write_text("")
    (fake / "kit" / "layout.py").write_text("X = 1\n")
    (fake / "format" / "meta.py").write_text("import json\n\n\n"
                                             "def f():\n    from ..kit.layout import X\n    return X\n")
    monkeypatch.setattr(__import__(__name__), "REPO", tmp_path)
    problems = layer_violations(fake, INSTALLER_LAYERS, "installer")
    assert problems == ["installer/format/meta.py:5: installer.format.meta (layer format) imports "
                        "installer.kit.layout (layer kit)"]


def test_format_marker():
    import installer

    assert installer.OFFLINE_BUNDLE_FORMAT == 1


def test_a_shadowing_installer_package_is_refused(tmp_path):
    fake = tmp_path / "installer"
    fake.mkdir()
    (fake / "__init__.py").write_text("__version__ = '0.7.0'  # pypa/installer\n")
    exe = Path(sys.executable).parent / "offline-bundle"
    r = run_cmd([exe, "--help"], env={"PYTHONPATH": str(tmp_path)})
    assert r.rc == 1
    assert "pypa/installer" in r.err and "pipx" in r.err and str(fake) in r.err
    assert "Traceback" not in r.err


def test_entry_points_and_module_execution():
    bindir = Path(sys.executable).parent
    for exe in ("offline-bundle", "bundle"):
        r = run_cmd([bindir / exe, "--version"])
        assert r.rc == 0 and "offline-bundle" in r.out
    assert run_cmd([sys.executable, "-m", "bundler", "--version"]).rc == 0
    assert run_cmd([sys.executable, "-m", "installer", "--version"]).rc == 0


def test_both_front_doors_expose_identical_options():
    import click

    from bundler.cli import cli
    from installer.cli.main import build_parser
    from installer.cli.commands import COMMANDS

    parser = build_parser("x", COMMANDS)
    ctx = click.Context(cli)
    for cmd in COMMANDS:
        words = cmd.name.split()
        # argparse side
        sub = parser
        for w in words:
            action = next(a for a in sub._actions if a.__class__.__name__ == "_SubParsersAction")
            sub = action.choices[w]
        arg_flags = {s for a in sub._actions for s in a.option_strings if s not in ("-h", "--help")}
        arg_pos = [a.dest for a in sub._actions if not a.option_strings]
        # click side
        c = cli
        for w in words:
            c = c.get_command(ctx, w)
        click_flags = {s for p in c.params if isinstance(p, click.Option) for s in p.opts}
        click_pos = [p.name for p in c.params if isinstance(p, click.Argument)]
        assert arg_flags == click_flags, cmd.name
        assert arg_pos == click_pos, cmd.name
        assert {"--json", "--quiet"} <= arg_flags


def _wheel(tmp_path_factory) -> Path:
    env_wheel = os.environ.get("OFFLINE_BUNDLE_WHEEL")
    if env_wheel:
        return Path(env_wheel)
    out = tmp_path_factory.mktemp("wheel")
    # hatchling is a test dependency, so this needs no network
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(REPO)], check=True, capture_output=True)
    return next(out.glob("offline_bundle-*.whl"))


def test_the_wheel_carries_schemas_and_manifests(tmp_path_factory):
    with zipfile.ZipFile(_wheel(tmp_path_factory)) as whl:
        names = set(whl.namelist())
        assert "installer/__init__.py" in names and "bundler/cli.py" in names
        for required in ("bundler/_data/schemas/manifest.schema.json", "bundler/_data/schemas/result.schema.json",
                         "bundler/_data/schemas/tenants/loki.schema.json",
                         "bundler/_data/schemas/tenants/tempo.schema.json",
                         "bundler/_data/manifests/telemetry-storage.yaml",
                         "bundler/_data/manifests/telemetry-storage/tenants/loki-overrides.yaml"):
            assert required in names, required
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        text = whl.read(entry_points).decode()
        assert "offline-bundle = bundler.cli:main" in text and "bundle = bundler.cli:main" in text
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        assert "Requires-Python: >=3.11" in metadata
        assert not any(n.startswith("tests/") for n in names)


# --- the stack as data (issue 11) --------------------------------------------------------------------------
def test_the_builder_never_imports_the_installers_deploy_layer():
    """What both sides need (chart image values, the deploy model) lives in installer/format/."""
    offenders = [(str(p.relative_to(REPO)), m) for p in sorted((REPO / "bundler").rglob("*.py"))
                 for m, _line in _absolute_imports(p) if m == "installer.deploy" or m.startswith("installer.deploy.")]
    assert offenders == []


def test_no_products_names_in_the_code():
    """The default stack's names are its manifest's data (spec.deploy): `grep -ri "stellaops|observability|telemetry"`
    finds nothing in the code but the build command's default manifest file name (MANIFEST defaults to
    manifests/telemetry-storage.yaml)."""
    import re

    found = []
    for root in (INSTALLER, REPO / "bundler"):
        for path in sorted(root.rglob("*.py")):
            text = path.read_text()
            if path == REPO / "bundler" / "resources.py":
                text = text.replace('"telemetry-storage.yaml"', "").replace("manifests/telemetry-storage.yaml", "")
            found += ["%s: %s" % (path.relative_to(REPO), m.group(0))
                      for m in re.finditer(r"(?i)stellaops|observability|telemetry", text)]
    assert found == []
