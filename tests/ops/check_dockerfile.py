#!/usr/bin/python3
"""Static checks of the Dockerfile (no container engine needed): Debian 12 multi-stage build, a runtime
stage with runtime libraries only (every library the daemon links is installed there), non-root USER,
HEALTHCHECK, EXPOSE 8750, and COPY sources present in the build context.

usage: check_dockerfile.py [REPO_DIR] [--sidecar BIN]
With --sidecar, the libraries the built binary loads (ldd) are also required in the runtime stage.
Runs a self-test first: each required property broken in a copy must be reported."""
import argparse
import fnmatch
import os
import re
import shlex
import subprocess
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from opscheck import Errors, report, run_self_test

NAME = "check_dockerfile"
BASE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}  # in every Debian image
LINKED_DEV_PACKAGES = ["libboost-url1.81-dev", "libhiredis-dev", "liblz4-dev", "libyaml-cpp-dev", "libssl-dev"]


def parse(text):
    """Dockerfile -> list of stages, each {"from": image, "name": alias, "instr": [(KEYWORD, args)]}."""
    text = re.sub(r"\\\n", " ", text)
    stages = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            stages.append({"from": parts[0], "name": parts[2] if len(parts) > 2 and parts[1].upper() == "AS" else None,
                           "instr": []})
        elif stages:
            stages[-1]["instr"].append((keyword, args.strip()))
    return stages


def apt_installs(stage):
    """Package names passed to apt-get install in a stage's RUN instructions."""
    pkgs = []
    for kw, args in stage["instr"]:
        if kw != "RUN":
            continue
        for cmd in re.split(r"&&|;|\|\|", args):
            words = shlex.split(cmd)
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def runtime_packages_needed(binary):
    """The Debian packages holding the shared libraries the build links (from its -dev packages'
    .so symlinks) and, with a binary, the ones it loads (ldd)."""
    libs = set()
    for dev in LINKED_DEV_PACKAGES:
        r = subprocess.run(["dpkg", "-L", dev], capture_output=True, text=True)
        for path in r.stdout.split():
            if path.endswith(".so") and os.path.islink(path):
                libs.add(os.path.realpath(path))
    if binary:
        r = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True)
        libs |= {m.group(1) for m in re.finditer(r"=> (/\S+)", r.stdout)}
    pkgs = set()
    for lib in libs:
        r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if r.returncode != 0:  # usrmerge: the file is registered under /usr/lib or /lib
            alt = lib.replace("/usr/lib/", "/lib/", 1) if lib.startswith("/usr/lib/") else "/usr" + lib
            r = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if r.returncode == 0:
            pkgs.add(r.stdout.split(":")[0])
    return pkgs - BASE_PACKAGES


def check(subject):
    stages, ignore, repo, needed = subject["stages"], subject["dockerignore"], subject["repo"], subject["needed"]
    e = Errors()
    if not e.expect(len(stages) >= 2, "multi-stage build expected (a build stage and a runtime stage)"):
        return e.items
    for s in stages:
        e.expect(re.fullmatch(r"debian:bookworm(-slim)?(@sha256:[0-9a-f]{64})?", s["from"]) is not None,
                 f"stage {s['name']}: FROM must be Debian 12 (debian:bookworm or debian:bookworm-slim), not {s['from']}")
    build, runtime = stages[0], stages[-1]
    keywords = [kw for kw, _ in runtime["instr"]]
    users = [a for kw, a in runtime["instr"] if kw == "USER"]
    e.expect(bool(users), "runtime stage: USER required")
    if users:
        user = users[-1].split(":")[0]
        e.expect(user not in ("0", "root"), "runtime stage: USER must not be root")
        e.expect(user.isdigit(), "runtime stage: USER numeric, so Kubernetes runAsNonRoot can verify it")
    e.expect("HEALTHCHECK" in keywords, "runtime stage: HEALTHCHECK required")
    health = " ".join(a for kw, a in runtime["instr"] if kw == "HEALTHCHECK")
    e.expect("/healthz" in health, "HEALTHCHECK must query /healthz")
    e.expect(any(kw == "EXPOSE" and "8750" in a.split() for kw, a in runtime["instr"]), "runtime stage: EXPOSE 8750")
    e.expect(any(kw == "ENTRYPOINT" and "aforo-sidecar" in a for kw, a in runtime["instr"]),
             "runtime stage: ENTRYPOINT runs aforo-sidecar")
    rt_pkgs = apt_installs(runtime)
    dev = [p for p in rt_pkgs if p.endswith("-dev") or p in ("g++", "gcc", "cmake", "ninja-build", "build-essential")]
    e.expect(not dev, f"runtime stage installs build packages: {dev}")
    missing = sorted(needed - set(rt_pkgs))
    e.expect(not missing, f"runtime stage lacks the runtime libraries {missing}")
    e.expect(any(kw == "RUN" and "install-deps.sh --build" in a for kw, a in build["instr"]),
             "build stage: install the build dependencies with scripts/install-deps.sh --build")
    e.expect(any(kw == "COPY" and "--from=" in a for kw, a in runtime["instr"]),
             "runtime stage: COPY --from the build stage")
    for s in stages:
        for kw, a in s["instr"]:
            if kw != "COPY" or "--from=" in a:
                continue
            for src in a.split()[:-1]:
                if src.startswith("--"):
                    continue
                e.expect(os.path.exists(os.path.join(repo, src)), f"COPY {src}: not in the repository")
                top = src.split("/")[0]
                e.expect(not any(fnmatch.fnmatch(top, pat.rstrip("/")) for pat in ignore),
                         f"COPY {src}: excluded by .dockerignore")
    return e.items


def mutations():
    def runtime(s):
        return s["stages"][-1]

    def drop(kw):
        return lambda s: runtime(s).update(instr=[(k, a) for k, a in runtime(s)["instr"] if k != kw])

    return [
        ("single stage", lambda s: s.update(stages=s["stages"][-1:])),
        ("not Debian 12", lambda s: runtime(s).update({"from": "ubuntu:24.04"})),
        ("USER removed", drop("USER")),
        ("USER root", lambda s: runtime(s)["instr"].append(("USER", "root"))),
        ("HEALTHCHECK removed", drop("HEALTHCHECK")),
        ("EXPOSE removed", drop("EXPOSE")),
        ("a -dev package at runtime", lambda s: runtime(s)["instr"].append(("RUN", "apt-get install -y libssl-dev"))),
        ("a runtime library missing", lambda s: s["needed"].add("libexample0")),
        ("COPY of an ignored folder", lambda s: s["dockerignore"].append("daemon")),
    ]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--sidecar")
    a = ap.parse_args()
    a.repo = os.path.abspath(a.repo)
    with open(os.path.join(a.repo, "Dockerfile"), encoding="utf-8") as f:
        stages = parse(f.read())
    ignore = []
    if os.path.exists(os.path.join(a.repo, ".dockerignore")):
        with open(os.path.join(a.repo, ".dockerignore"), encoding="utf-8") as f:
            ignore = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    subject = {"stages": stages, "dockerignore": ignore, "repo": a.repo, "needed": runtime_packages_needed(a.sidecar)}
    errors = check(subject)
    unnoticed = run_self_test(NAME, check, subject, mutations()) if not errors else []
    return report(NAME, errors, unnoticed,
                  f"{len(stages)} stages, runtime libraries {sorted(subject['needed'])}, {len(mutations())} mutations")


if __name__ == "__main__":
    sys.exit(main())
