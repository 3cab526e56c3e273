"""Small process helpers shared by the adversarial tests."""

import time


def wait_for(predicate, proc, timeout: float, step: float) -> bool:
    """Poll ``predicate`` until it holds (True), ``proc`` exits or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(step)
    return False
