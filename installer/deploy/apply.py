"""`install --apply` (phase 6): run the deploy commands when the tools and a cluster are there.

Kubernetes: with kubectl and helm on PATH and a kubeconfig (KUBECONFIG, else ~/.kube/config), run
`kubectl apply` for the namespace, ConfigMaps and Secrets, then `helm upgrade --install` per chart from
the site registry. Without a kubeconfig there is no cluster to talk to: the exact commands are printed
instead. A missing or failing tool is exit 10 with one sentence.
Docker: with --docker and a compose tool (`docker compose` or `docker-compose`), bring the compose
files up with the environment COMMANDS.txt gives them (the variables the bundle's `deploy` section
names, pointing at the kit's TLS and token folders).
"""

import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import Dict, List, Optional

from installer.errors import DeployError
from installer.deploy.render import DeployCommand, Rendered, shell_line


@dataclass(frozen=True)
class KubernetesApplied:
    """What --apply did for Kubernetes: applied, nothing to apply, or no kubeconfig (then ``commands`` are the
    ones to run where the cluster is)."""

    status: str
    commands: Optional[List[str]] = None  # the commands run, or to run; None when there was nothing
    folder: Optional[str] = None          # the outputs folder, when applied


@dataclass(frozen=True)
class ComposeApplied:
    """What --apply did with --docker: the compose files brought up, or nothing to bring up."""

    status: str
    commands: Optional[List[str]] = None  # the commands run; None when there was nothing


@dataclass(frozen=True)
class ApplyReport:
    """Phase 6's --apply: Kubernetes with a site registry, compose with --docker (None: not asked for)."""

    kubernetes: Optional[KubernetesApplied] = None
    compose: Optional[ComposeApplied] = None


def kubeconfig() -> Optional[str]:
    paths = [p for p in (os.environ.get("KUBECONFIG") or "").split(os.pathsep) if p]
    paths = paths or [os.path.join(os.path.expanduser("~"), ".kube", "config")]
    found = [p for p in paths if os.path.isfile(p)]
    return os.pathsep.join(found) if found else None


def _run(argv: List[str], env: Optional[Dict[str, str]] = None, what: str = "") -> None:
    """One deploy tool, as an argument list (never a shell, never a split string)."""
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900)
    except FileNotFoundError as exc:
        raise DeployError("%s is not installed, so %s cannot run" % (argv[0], what or "the deploy")) from exc
    except subprocess.TimeoutExpired as exc:
        raise DeployError("%s did not finish within 15 minutes" % " ".join(argv[:3])) from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise DeployError("%s failed: %s" % (" ".join(argv[:3]), last[-1] if last else "exit %d" % proc.returncode))


def apply_kubernetes(outputs: Rendered, kit_root: str, site_insecure: bool,
                     registry_ca: Optional[str]) -> KubernetesApplied:
    config = kubeconfig()
    folder = os.path.join(kit_root, outputs.folder)
    commands = [c for c in outputs.argv if c.argv[0] in ("kubectl", "helm")]
    if not commands:
        return KubernetesApplied("nothing to apply")
    if config is None:
        return KubernetesApplied("no kubeconfig: run these commands where the cluster is reachable",
                                 [shell_line(c) for c in commands])
    for tool in ("kubectl", "helm"):
        if shutil.which(tool) is None:
            raise DeployError("--apply needs %s on PATH (a kubeconfig was found at %s)" % (tool, config))
    env = dict(os.environ, KUBECONFIG=config)
    ran = []
    for command in commands:
        argv = list(command.argv)
        if argv[0] == "helm":
            if site_insecure:
                argv.append("--plain-http")
            if registry_ca:
                argv += ["--ca-file", registry_ca]
        _run(argv, env, "the Kubernetes deploy")
        ran.append(shell_line(DeployCommand(argv)))
    return KubernetesApplied("applied", ran, folder)


def compose_tool() -> Optional[List[str]]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def apply_compose(outputs: Rendered, kit_root: str) -> ComposeApplied:
    folder = os.path.join(kit_root, outputs.folder)
    files = [os.path.join(folder, *f.split("/")) for f in outputs.files if f.startswith("compose/")]
    if not files:
        return ComposeApplied("nothing to bring up")
    tool = compose_tool()
    if tool is None:
        raise DeployError("--apply with --docker needs docker compose or docker-compose on PATH")
    rendered = [c.env for c in outputs.argv if c.argv[:2] == ["docker", "compose"]]
    env = dict(os.environ, **(rendered[0] if rendered else {}))
    ran = []
    for path in files:
        argv = tool + ["-f", path, "up", "-d"]
        _run(argv, env, "the compose deploy")
        ran.append(shell_line(DeployCommand(argv)))
    return ComposeApplied("up", ran)
