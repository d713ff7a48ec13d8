#!/usr/bin/python3
"""Checks examples/kubernetes: valid YAML, and the fields the sidecar deployment depends on.

usage: check_kubernetes.py [REPO_DIR] [--sidecar BIN]
With --sidecar, the container config is also validated by `aforo-sidecar --check-config`.
Runs a self-test first: each required field removed from a copy must be reported."""
import argparse
import glob
import os
import subprocess
import sys

import yaml

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from opscheck import Errors, report, run_self_test, seconds

NAME = "check_kubernetes"


def load(repo):
    base = os.path.join(repo, "examples", "kubernetes")
    bundle = {"objects": [], "files": {}}
    for path in sorted(glob.glob(os.path.join(base, "**", "*.y*ml"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]  # raises on invalid YAML
        rel = os.path.relpath(path, base)
        bundle["files"][rel] = docs
        if not rel.startswith("config" + os.sep) and rel != "kustomization.yaml":
            bundle["objects"].extend(docs)
    return bundle


def find(objects, kind):
    return [o for o in objects if isinstance(o, dict) and o.get("kind") == kind]


def probe_target(probe):
    """The URL path a probe checks, from httpGet or from an exec command holding a URL."""
    if not isinstance(probe, dict):
        return None
    if "httpGet" in probe:
        return probe["httpGet"].get("path")
    for arg in (probe.get("exec") or {}).get("command", []):
        if isinstance(arg, str) and arg.startswith("http://"):
            return "/" + arg.split("/", 3)[3] if arg.count("/") >= 3 else "/"
    return None


def mount_of(container, volume_name):
    for m in container.get("volumeMounts", []) or []:
        if m.get("name") == volume_name:
            return m.get("mountPath")
    return None


def check(bundle):
    e = Errors()
    files = bundle["files"]
    kust = (files.get("kustomization.yaml") or [{}])[0]
    for res in kust.get("resources", []):
        e.expect(res in files, f"kustomization: resource {res} does not exist")
    generated = {g.get("name"): g for g in kust.get("configMapGenerator", [])}

    deployments = find(bundle["objects"], "Deployment")
    if not e.expect(len(deployments) == 1, "one Deployment expected"):
        return e.items
    pod = deployments[0]["spec"]["template"]["spec"]
    psc = pod.get("securityContext") or {}
    e.expect(psc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    fs_group = psc.get("fsGroup")
    e.expect(fs_group is not None, "pod securityContext.fsGroup must be set (shared socket and spool volumes)")

    volumes = {v.get("name"): v for v in pod.get("volumes", [])}
    inits = pod.get("initContainers", []) or []
    sidecars = [c for c in inits if c.get("restartPolicy") == "Always" and "aforo-sidecar" in str(c.get("image"))]
    if not e.expect(len(sidecars) == 1, "the aforo-sidecar must be one initContainers entry with restartPolicy: Always"):
        return e.items
    sidecar = sidecars[0]
    kongs = [c for c in pod.get("containers", []) if "kong" in str(c.get("image"))]
    if not e.expect(len(kongs) == 1, "one Kong container expected in containers"):
        return e.items
    kong = kongs[0]

    for c in [sidecar, kong]:
        sc = c.get("securityContext") or {}
        e.expect(sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, f"{c['name']}: runAsNonRoot must be true")
        e.expect(sc.get("runAsUser", 1) != 0, f"{c['name']}: runAsUser must not be 0")
        e.expect(sc.get("readOnlyRootFilesystem") is True, f"{c['name']}: readOnlyRootFilesystem must be true")
        e.expect(sc.get("allowPrivilegeEscalation") is False, f"{c['name']}: allowPrivilegeEscalation must be false")
        res = c.get("resources") or {}
        e.expect(bool(res.get("requests")) and bool(res.get("limits")), f"{c['name']}: resources requests and limits")
        e.expect("memory" in (res.get("limits") or {}), f"{c['name']}: a memory limit")

    # Probes: liveness /healthz, readiness /readyz, a startup probe.
    e.expect(probe_target(sidecar.get("livenessProbe")) == "/healthz", "sidecar livenessProbe must check /healthz")
    e.expect(probe_target(sidecar.get("readinessProbe")) == "/readyz", "sidecar readinessProbe must check /readyz")
    e.expect(probe_target(sidecar.get("startupProbe")) in ("/healthz", "/readyz"), "sidecar startupProbe required")

    # The API key from a Secret.
    env = {v.get("name"): v for v in sidecar.get("env", []) or []}
    key_ref = ((env.get("AFORO_API_KEY") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    e.expect(key_ref.get("name") and key_ref.get("key"), "AFORO_API_KEY must come from valueFrom.secretKeyRef")
    e.expect("value" not in (env.get("AFORO_API_KEY") or {}), "AFORO_API_KEY must not be inline")

    # The config from a ConfigMap, at the path given with --config.
    args = sidecar.get("args", []) or []
    config_path = args[args.index("--config") + 1] if "--config" in args else "/etc/aforo/sidecar.yaml"
    cm_volumes = [n for n, v in volumes.items() if "configMap" in v and mount_of(sidecar, n)]
    cfg = None
    for n in cm_volumes:
        mount = mount_of(sidecar, n)
        cm_name = volumes[n]["configMap"]["name"]
        if config_path.startswith(mount.rstrip("/") + "/") and cm_name in generated:
            key = os.path.basename(config_path)
            for spec in generated[cm_name].get("files", []):
                dest, _, src = spec.partition("=")
                if dest == key:
                    cfg = (files.get(src or dest) or [None])[0]
    if not e.expect(isinstance(cfg, dict), f"--config {config_path} must be a ConfigMap generated from a file"):
        return e.items

    # The unix socket on an emptyDir mounted by both containers, named by Kong's plugin config.
    sockets = [a[len("unix:"):] for a in cfg.get("listen", []) if str(a).startswith("unix:")]
    e.expect(len(sockets) == 1, "the sidecar config must listen on one unix socket")
    shared = [n for n, v in volumes.items() if "emptyDir" in v and mount_of(sidecar, n) and mount_of(kong, n)]
    sock_ok = any(sockets and sockets[0].startswith(mount_of(sidecar, n).rstrip("/") + "/")
                  and mount_of(sidecar, n) == mount_of(kong, n) for n in shared)
    e.expect(sock_ok, "the unix socket must sit on an emptyDir volume mounted at the same path in both containers")
    e.expect(cfg.get("server", {}).get("socket_mode", "0660") in ("0660", "0666"),
             "server.socket_mode must let the pod's fsGroup (Kong) connect")
    kong_cfg = None
    for n, v in volumes.items():
        if "configMap" in v and mount_of(kong, n) and v["configMap"]["name"] in generated:
            for spec in generated[v["configMap"]["name"]].get("files", []):
                kong_cfg = (files.get(spec.partition("=")[2] or spec) or [None])[0]
    plugins = [p for p in (kong_cfg or {}).get("plugins", []) if p.get("name") == "aforo-metering"]
    e.expect(len(plugins) == 1, "Kong's declarative config must enable aforo-metering")
    if plugins and sockets:
        e.expect(plugins[0].get("config", {}).get("sidecar_url") == "unix:" + sockets[0],
                 "the plugin's sidecar_url must be the sidecar's unix socket")

    # The spool on a PersistentVolumeClaim that exists.
    spool_dir = cfg.get("buffer", {}).get("spool_dir", "/tmp/aforo-buffer")
    pvcs = {p["metadata"]["name"] for p in find(bundle["objects"], "PersistentVolumeClaim")}
    pvc_vols = [n for n, v in volumes.items() if "persistentVolumeClaim" in v and mount_of(sidecar, n)]
    spool_ok = any(spool_dir.startswith(mount_of(sidecar, n).rstrip("/") + "/")
                   and volumes[n]["persistentVolumeClaim"].get("claimName") in pvcs for n in pvc_vols)
    e.expect(spool_ok, "buffer.spool_dir must be on a PersistentVolumeClaim defined here")
    # The last known good entitlement snapshot (and the catalog) survive a pod restart: a restarted
    # pod decides (and is ready) even while the control plane is away.
    state_dir = cfg.get("discovery", {}).get("state_dir", "/tmp/aforo-state")
    state_ok = any(state_dir.startswith(mount_of(sidecar, n).rstrip("/") + "/")
                   and volumes[n]["persistentVolumeClaim"].get("claimName") in pvcs for n in pvc_vols)
    e.expect(state_ok, "discovery.state_dir (last known good snapshot) must be on a PersistentVolumeClaim defined here")

    # Kong loads the plugin.
    kenv = {v.get("name"): v.get("value", "") for v in kong.get("env", []) or []}
    e.expect("aforo-metering" in kenv.get("KONG_PLUGINS", "").split(","), "KONG_PLUGINS must list aforo-metering")
    lua_path = kenv.get("KONG_LUA_PACKAGE_PATH", "")
    e.expect(any(lua_path.startswith(m.get("mountPath", "") + "/") for m in kong.get("volumeMounts", [])),
             "KONG_LUA_PACKAGE_PATH must point into a volume mounted in the Kong container")

    # Shutdown: the pod waits longer than the sidecar's drain.
    drain = seconds(cfg.get("server", {}).get("shutdown_timeout", "10s"))
    e.expect(pod.get("terminationGracePeriodSeconds", 30) > drain,
             "terminationGracePeriodSeconds must exceed server.shutdown_timeout")
    return e.items


def mutations():
    def sidecar(b):
        dep = find(b["objects"], "Deployment")[0]["spec"]["template"]["spec"]
        return next(c for c in dep["initContainers"] if c.get("restartPolicy") == "Always")

    def pod(b):
        return find(b["objects"], "Deployment")[0]["spec"]["template"]["spec"]

    def drop_env(b):
        sidecar(b)["env"] = [v for v in sidecar(b)["env"] if v["name"] != "AFORO_API_KEY"]

    def inline_key(b):
        for v in sidecar(b)["env"]:
            if v["name"] == "AFORO_API_KEY":
                v.pop("valueFrom")
                v["value"] = "inline"

    def unshare_socket(b):
        for c in pod(b)["containers"]:
            c["volumeMounts"] = [m for m in c["volumeMounts"] if m["name"] != "aforo-socket"]

    def spool_on_emptydir(b):
        for v in pod(b)["volumes"]:
            if "persistentVolumeClaim" in v:
                v.pop("persistentVolumeClaim")
                v["emptyDir"] = {}

    def probe_path(kind, path):
        def f(b):
            cmd = sidecar(b)[kind]["exec"]["command"]
            sidecar(b)[kind]["exec"]["command"] = [a.replace("/healthz", path).replace("/readyz", path) for a in cmd]
        return f

    return [
        ("restartPolicy: Always removed", lambda b: sidecar(b).pop("restartPolicy")),
        ("runAsNonRoot removed", lambda b: pod(b)["securityContext"].pop("runAsNonRoot")),
        ("readOnlyRootFilesystem false", lambda b: sidecar(b)["securityContext"].update(readOnlyRootFilesystem=False)),
        ("AFORO_API_KEY removed", drop_env),
        ("AFORO_API_KEY inline", inline_key),
        ("socket volume not mounted in Kong", unshare_socket),
        ("spool on an emptyDir", spool_on_emptydir),
        ("liveness not on /healthz", probe_path("livenessProbe", "/metrics")),
        ("readiness not on /readyz", probe_path("readinessProbe", "/healthz")),
        ("startupProbe removed", lambda b: sidecar(b).pop("startupProbe")),
        ("resources removed", lambda b: sidecar(b).pop("resources")),
        ("KONG_PLUGINS without the plugin", lambda b: [v.update(value="bundled") for v in pod(b)["containers"][0]["env"]
                                                       if v["name"] == "KONG_PLUGINS"]),
        ("plugin sidecar_url elsewhere", lambda b: b["files"]["config/kong.yml"][0]["plugins"][0]["config"]
         .update(sidecar_url="http://127.0.0.1:9")),
        ("no unix listener", lambda b: b["files"]["config/sidecar.yaml"][0].update(listen=["127.0.0.1:8750"])),
        ("state_dir off the volume", lambda b: b["files"]["config/sidecar.yaml"][0]["discovery"]
         .update(state_dir="/tmp/aforo-state")),
    ]


def check_config_with_daemon(repo, binary):
    path = os.path.join(repo, "examples", "kubernetes", "config", "sidecar.yaml")
    env = dict(os.environ, AFORO_API_KEY="test_key_for_check_config")
    r = subprocess.run([binary, "--config", path, "--check-config"], env=env, capture_output=True, text=True)
    return [] if r.returncode == 0 else [f"aforo-sidecar --check-config {path}: {r.stderr.strip()}"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("repo", nargs="?", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    ap.add_argument("--sidecar")
    a = ap.parse_args()
    a.repo = os.path.abspath(a.repo)
    try:
        bundle = load(a.repo)
    except yaml.YAMLError as ex:
        print(f"{NAME}: FAIL: invalid YAML: {ex}", file=sys.stderr)
        return 1
    errors = check(bundle)
    unnoticed = run_self_test(NAME, check, bundle, mutations()) if not errors else []
    if a.sidecar:
        errors += check_config_with_daemon(a.repo, a.sidecar)
    return report(NAME, errors, unnoticed, f"{len(bundle['files'])} files, {len(mutations())} self-test mutations")


if __name__ == "__main__":
    sys.exit(main())
