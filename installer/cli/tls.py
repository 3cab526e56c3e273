"""Development TLS material."""

from typing import Any, Dict, List, Optional, Sequence

from installer.cli.options import Command, Opt


def run_tls(out: str, force: bool = False, service: Sequence[str] = (), namespace: Optional[str] = None,
            **_: Any) -> Dict[str, Any]:
    from installer.deploy.devtls import NAMESPACE, generate
    from installer.format.deployspec import TlsSpec

    return generate(out, tls=TlsSpec(tuple(service or ())), namespace=namespace or NAMESPACE, force=force)


def text_tls(r: Dict[str, Any]) -> List[str]:
    lines = ["wrote development TLS material into %s (%s; keys 0600):" % (r["out_dir"], r["backend"])]
    for name, cert in r["certificates"].items():
        lines.append("  %-15s %s  until %s" % (name, cert["fingerprint"][:23], cert["not_after"]))
    lines.append("for development and staging only; see docs/TLS.md to use your own PKI")
    return lines


COMMANDS = [Command("tls",
            "write development TLS material (a CA, a certificate per service, one all services share, a client one)",
            [Opt("--out", metavar="DIR", required=True, help="folder for ca.crt, tls.crt, tls.key, client.crt, ..."),
             Opt("--service", metavar="NAME", multiple=True,
                 help="a service the shared certificate serves (and gets its own certificate); repeatable"),
             Opt("--namespace", metavar="NS", help="the services' Kubernetes namespace, for their "
                                                   "NAME.NS.svc names (default: default)"),
             Opt("--force", help="replace files that already exist")],
            run_tls, text_tls)]
