"""The installer's commands, in the order ``--help`` lists them: one module per command (or group) in this
package, each holding its run function, its renderers and its ``COMMANDS`` entries."""

from typing import Any, List

from installer.cli import gc, inspect, install, inventory, report, rollback, status, tls, trust, verify
from installer.cli.options import COMMON, KIT_OPT, TRUST_OPT, Command, Opt

COMMANDS: List[Command[Any]] = [
    *verify.COMMANDS, *report.COMMANDS, *inspect.COMMANDS, *install.COMMANDS, *status.COMMANDS, *inventory.COMMANDS,
    *rollback.COMMANDS, *gc.COMMANDS, *tls.COMMANDS, *trust.COMMANDS,
]

__all__ = ["COMMANDS", "COMMON", "KIT_OPT", "TRUST_OPT", "Command", "Opt"]
