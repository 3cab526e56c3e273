"""Fault rules shared by the fault-injecting proxy (helpers/faults.py) and the in-memory registry
(helpers/memregistry.py): which requests a rule applies to, which of the matching actions fire, the
injected error status, and a header looked up whatever the case of its name.

Each module keeps its own ``Action`` vocabulary (the proxy cuts TCP connections, the fake raises the
transport's errors); a rule only needs ``action.kind`` ("delay" combines with one other action).
"""

import json
import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

INJECTED_ERROR = json.dumps({"errors": [{"code": "INJECTED", "message": "fault injected by the test"}]},
                            sort_keys=True, separators=(",", ":")).encode()


class Rule:
    """Applies ``action`` to requests matching method and path regex (``re.search`` on path+query).

    nth: 1-based index (or collection of indexes) among the requests this rule matched;
    times: apply to at most this many requests. Neither: every matching request.
    """

    def __init__(self, action, method: Optional[str] = None, path: Optional[str] = None,
                 nth: Union[int, Iterable[int], None] = None, times: Optional[int] = None) -> None:
        self.action = action
        self.method = method.upper() if method else None
        self.path_re = re.compile(path) if path else None
        self.nth = {nth} if isinstance(nth, int) else (set(nth) if nth is not None else None)
        self.times = times
        self.seen = 0      # matching requests so far
        self.fired = 0     # times the action was applied

    def applies(self, method: str, target: str) -> bool:
        """Counts a matching request in ``seen``; True when it is one the rule is for (``nth``, ``times``)."""
        if self.method and method != self.method:
            return False
        if self.path_re and not self.path_re.search(target):
            return False
        self.seen += 1
        if self.nth is not None and self.seen not in self.nth:
            return False
        return self.times is None or self.fired < self.times

    def __repr__(self) -> str:
        return "Rule(%s, method=%s, path=%s, nth=%s, times=%s, seen=%d, fired=%d)" % (
            self.action, self.method, self.path_re.pattern if self.path_re else None, self.nth, self.times,
            self.seen, self.fired)


def pick(rules: Sequence[Rule], method: str, target: str) -> Tuple[List, Optional[object]]:
    """Delays (all that apply) and the first other action that applies; only those count as fired.

    The caller holds whatever lock guards ``rules``."""
    delays: List = []
    action = None
    for rule in rules:
        if not rule.applies(method, target):
            continue
        if rule.action.kind == "delay":
            rule.fired += 1
            delays.append(rule.action)
        elif action is None:
            rule.fired += 1
            action = rule.action
    return delays, action


def status_parts(code: int, retry_after: Optional[Union[int, str]], headers: Optional[Dict[str, str]],
                 body: bytes) -> Tuple[Tuple[Tuple[str, str], ...], bytes]:
    """The headers and body of an injected ``status(code, ...)``: Retry-After when given, and a registry-style
    JSON error body for an error status that has none."""
    hdrs = dict(headers or {})
    if retry_after is not None:
        hdrs["Retry-After"] = str(retry_after)
    if not body and code >= 400:
        body = INJECTED_ERROR
        hdrs.setdefault("Content-Type", "application/json")
    return tuple(hdrs.items()), body


def header_value(headers: Dict[str, str], name: str) -> Optional[str]:
    """The value of header ``name`` in ``headers``, whatever the case of either."""
    for k, v in headers.items():
        if k.lower() == name.lower():
            return v
    return None
