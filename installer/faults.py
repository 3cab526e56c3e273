"""Fault injection for the crash-safety tests: `OFFLINE_BUNDLE_FAULT=<point>` makes the installer SIGKILL
itself when it reaches that point. It only ever kills this process; without the variable it does nothing.

Points: after-head, mid-payload, before-promote, after-promote, before-switch, after-switch, mid-push.
"""

import os
import signal

POINTS = ("after-head", "mid-payload", "before-promote", "after-promote", "before-switch", "after-switch",
          "mid-push")


def point(name: str) -> None:
    if os.environ.get("OFFLINE_BUNDLE_FAULT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
