"""Shared helpers of the operations checks in tests/ops: error collection, durations, self-tests."""
import copy
import re
import sys

DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def seconds(text):
    """'10s', '250ms', '1min 30s', '20' (systemd: bare seconds) -> float seconds."""
    text = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    total = 0.0
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s+", "", text):
        raise ValueError("not a duration: " + text)
    for number, unit in parts:
        if unit not in DURATION_UNITS:
            raise ValueError("unknown duration unit in " + text)
        total += float(number) * DURATION_UNITS[unit]
    return total


class Errors:
    """Collects failed expectations so one run reports all of them."""

    def __init__(self):
        self.items = []

    def expect(self, condition, message):
        if not condition:
            self.items.append(message)
        return bool(condition)

    def __bool__(self):
        return bool(self.items)


def run_self_test(name, check, subject, mutations):
    """Proves that `check` can fail: each mutation (label, fn editing a deep copy of subject in place)
    must make check() report at least one error. Returns the labels that went unnoticed."""
    unnoticed = []
    for label, mutate in mutations:
        broken = copy.deepcopy(subject)
        mutate(broken)
        if not check(broken):
            unnoticed.append(label)
    for label in unnoticed:
        print(f"{name}: self-test: the check did not notice: {label}", file=sys.stderr)
    return unnoticed


def report(name, errors, unnoticed, summary):
    for e in errors:
        print(f"{name}: FAIL: {e}", file=sys.stderr)
    if errors or unnoticed:
        print(f"{name}: {len(errors)} problem(s), {len(unnoticed)} self-test gap(s)", file=sys.stderr)
        return 1
    print(f"{name}: OK ({summary})")
    return 0
