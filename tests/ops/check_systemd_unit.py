#!/usr/bin/python3
"""Checks systemd/aforo-sidecar.service, its sysusers file and config/sidecar.systemd.yaml.

usage: check_systemd_unit.py [REPO_DIR] --sidecar BIN
- `systemd-analyze verify` on a copy of the unit whose Exec lines run BIN (verify needs the binary to
  exist); any output counts as a failure, because verify exits 0 on "Unknown key ... ignoring".
- `systemd-analyze security --offline=yes` must stay under an exposure threshold.
- `systemd-sysusers --dry-run` on the sysusers file, in a scratch root.
- The unit's required settings, and its consistency with the config: spool in StateDirectory, socket in
  RuntimeDirectory, the credential path, TimeoutStopSec above server.shutdown_timeout, --check-config.
Works in a container without systemd as PID 1 (verify and --offline do not talk to a running manager).
Runs a self-test first: each required setting broken in a copy must be reported."""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from opscheck import Errors, report, run_self_test, seconds

NAME = "check_systemd_unit"
UNIT = "aforo-sidecar.service"
INSTALLED_BIN = "/usr/local/bin/aforo-sidecar"
EXPOSURE_THRESHOLD = 20  # systemd-analyze security, x10: 0 (locked down) .. 100; the unit scores 12

REQUIRED = {
    "Type": "notify", "NotifyAccess": "main", "Restart": "on-failure",
    "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
    "NoNewPrivileges": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes", "RestrictNamespaces": "yes",
    "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "RestrictSUIDSGID": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6", "CapabilityBoundingSet": "",
}


def parse_unit(text):
    """Unit text -> {section: {key: [values in order]}} (systemd keys may repeat)."""
    sections, current = {}, None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def last(svc, key, default=None):
    values = svc.get(key)
    return values[-1] if values else default


def config_arg(cmdline):
    words = cmdline.split()
    return words[words.index("--config") + 1] if "--config" in words else None


def check(subject):
    unit, cfg, sysusers = subject["unit"], subject["config"], subject["sysusers"]
    e = Errors()
    svc = unit.get("Service", {})
    for key, want in REQUIRED.items():
        e.expect(last(svc, key) == want, f"[Service] {key}={want} required (found {last(svc, key)!r})")
    syscalls = svc.get("SystemCallFilter", [])
    e.expect("@system-service" in syscalls, "[Service] SystemCallFilter=@system-service required")
    e.expect("WatchdogSec" not in svc or seconds(last(svc, "WatchdogSec")) >= 2,
             "WatchdogSec, when set, must leave the daemon time to ping (>= 2s)")
    e.expect(re.fullmatch(r"/bin/kill -HUP \$MAINPID", last(svc, "ExecReload", "")) is not None,
             "ExecReload=/bin/kill -HUP $MAINPID required")
    start, pre = last(svc, "ExecStart", ""), last(svc, "ExecStartPre", "")
    e.expect(start.startswith(INSTALLED_BIN + " "), f"ExecStart must run {INSTALLED_BIN}")
    e.expect("--check-config" in pre.split() and config_arg(pre) == config_arg(start) is not None,
             "ExecStartPre must run --check-config on the config ExecStart uses")

    # The service user comes from the sysusers file.
    users = [l.split()[1] for l in sysusers.splitlines() if l.strip() and l.split()[0] == "u"]
    e.expect(last(svc, "User") in users, "User= must be created by the sysusers file")
    e.expect(not last(svc, "DynamicUser") or last(svc, "DynamicUser") == "no",
             "User= from sysusers and DynamicUser=yes exclude each other")

    # Directories and their use by the config.
    state, runtime = last(svc, "StateDirectory"), last(svc, "RuntimeDirectory")
    e.expect(state, "StateDirectory= required")
    e.expect(runtime, "RuntimeDirectory= required")
    spool = cfg.get("buffer", {}).get("spool_dir", "/tmp/aforo-buffer")
    e.expect(state and spool.startswith(f"/var/lib/{state}/"), f"buffer.spool_dir {spool} must be in /var/lib/{state}")
    socks = [a[5:] for a in cfg.get("listen", []) if str(a).startswith("unix:")]
    e.expect(socks and runtime and all(s.startswith(f"/run/{runtime}/") for s in socks),
             f"the unix socket must be in /run/{runtime}")
    mode = last(svc, "RuntimeDirectoryMode", "0755")
    e.expect(int(mode, 8) & 0o010, "RuntimeDirectoryMode must let the group enter (Kong's user via the group)")
    e.expect(int(mode, 8) & 0o001 == 0, "RuntimeDirectoryMode must not let others in")

    # The API key: a credential named by aforo.api_key_file, or AFORO_API_KEY from an EnvironmentFile.
    creds = [c.split(":", 1)[0] for c in svc.get("LoadCredential", [])]
    key_file = cfg.get("aforo", {}).get("api_key_file", "")
    if creds:
        e.expect(key_file in [f"/run/credentials/{UNIT}/{c}" for c in creds],
                 f"aforo.api_key_file must name the LoadCredential= file (/run/credentials/{UNIT}/NAME)")
    else:
        e.expect(svc.get("EnvironmentFile"), "the API key must come from LoadCredential= or an EnvironmentFile=")
    e.expect("AFORO_API_KEY" not in " ".join(svc.get("Environment", [])), "no API key inline in Environment=")

    # Stopping: systemd waits longer than the daemon's own drain bound.
    drain = seconds(cfg.get("server", {}).get("shutdown_timeout", "10s"))
    e.expect(seconds(last(svc, "TimeoutStopSec", "90s")) > drain, "TimeoutStopSec must exceed server.shutdown_timeout")
    e.expect(unit.get("Install", {}).get("WantedBy"), "[Install] WantedBy= required")
    return e.items


def mutations():
    def svc(s):
        return s["unit"]["Service"]

    def drop(key):
        return lambda s: svc(s).pop(key)

    def setv(key, value):
        return lambda s: svc(s).update({key: [value]})

    return [
        ("Type=simple", setv("Type", "simple")),
        ("NotifyAccess removed", drop("NotifyAccess")),
        ("ProtectSystem=full", setv("ProtectSystem", "full")),
        ("NoNewPrivileges removed", drop("NoNewPrivileges")),
        ("AF_NETLINK allowed", setv("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6 AF_NETLINK")),
        ("capabilities kept", drop("CapabilityBoundingSet")),
        ("no ExecReload", drop("ExecReload")),
        ("no --check-config", drop("ExecStartPre")),
        ("no StateDirectory", drop("StateDirectory")),
        ("spool outside StateDirectory", lambda s: s["config"]["buffer"].update(spool_dir="/tmp/aforo-buffer")),
        ("socket outside RuntimeDirectory", lambda s: s["config"].update(listen=["unix:/tmp/sidecar.sock"])),
        ("TimeoutStopSec below the drain", setv("TimeoutStopSec", "5s")),
        ("credential path mismatch", lambda s: s["config"]["aforo"].update(api_key_file="/etc/aforo/key")),
        ("no credential and no EnvironmentFile", lambda s: [svc(s).pop(k, None) for k in ("LoadCredential",
                                                                                          "EnvironmentFile")]),
        ("user not in sysusers", setv("User", "nobody")),
        ("world-enterable runtime dir", setv("RuntimeDirectoryMode", "0755")),
    ]


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def analyze(unit_text, binary, workdir):
    """systemd-analyze verify + security on a copy running `binary`; returns error strings."""
    errors = []
    path = os.path.join(workdir, UNIT)
    with open(path, "w", encoding="utf-8") as f:
        f.write(unit_text.replace(INSTALLED_BIN, os.path.abspath(binary)))
    v = run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", path])
    out = (v.stdout + v.stderr).strip()
    if v.returncode != 0 or out:
        errors.append(f"systemd-analyze verify (exit {v.returncode}): {out}")
    s = run(["systemd-analyze", "security", "--offline=yes", f"--threshold={EXPOSURE_THRESHOLD}", path])
    if s.returncode != 0:
        overall = [l for l in s.stdout.splitlines() if "Overall exposure" in l]
        errors.append(f"systemd-analyze security above {EXPOSURE_THRESHOLD / 10}: {overall or s.stderr.strip()}")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--sidecar", required=True)
    a = ap.parse_args()
    a.repo = os.path.abspath(a.repo)
    for tool in ("systemd-analyze", "systemd-sysusers"):
        if not shutil.which(tool):
            print(f"{NAME}: FAIL: {tool} not found (Debian package systemd; scripts/install-deps.sh)", file=sys.stderr)
            return 1
    with open(os.path.join(a.repo, "systemd", UNIT), encoding="utf-8") as f:
        unit_text = f.read()
    sysusers_path = os.path.join(a.repo, "systemd", "aforo-sidecar.sysusers.conf")
    with open(sysusers_path, encoding="utf-8") as f:
        sysusers = f.read()
    config_path = os.path.join(a.repo, "config", "sidecar.systemd.yaml")
    with open(config_path, encoding="utf-8") as f:
        cfg = yaml.safe_load(f) or {}

    subject = {"unit": parse_unit(unit_text), "config": cfg, "sysusers": sysusers}
    errors = check(subject)
    unnoticed = run_self_test(NAME, check, subject, mutations()) if not errors else []
    with tempfile.TemporaryDirectory() as tmp:
        errors += analyze(unit_text, a.sidecar, tmp)
        # The verify step must be able to fail here too: a misspelt key has to be reported.
        broken = unit_text.replace("NoNewPrivileges=yes", "NoNewPrivilege=yes")
        if not analyze(broken, a.sidecar, tmp):
            unnoticed.append("systemd-analyze verify did not report an unknown key")
        u = run(["systemd-sysusers", "--dry-run", f"--root={tmp}", sysusers_path])
        if u.returncode != 0:
            errors.append(f"systemd-sysusers --dry-run: {u.stderr.strip()}")
    env = dict(os.environ, AFORO_API_KEY="test_key_for_check_config")
    c = run([a.sidecar, "--config", config_path, "--check-config"], env=env)
    if c.returncode != 0:
        errors.append(f"aforo-sidecar --check-config {config_path}: {c.stderr.strip()}")
    return report(NAME, errors, unnoticed, f"verify clean, exposure under {EXPOSURE_THRESHOLD / 10}, "
                  f"{len(mutations())} mutations")


if __name__ == "__main__":
    sys.exit(main())
