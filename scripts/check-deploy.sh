#!/usr/bin/env bash
# Checks the deployment files as far as this machine allows (CI runs it after the tests):
# - deploy/*.service: `systemd-analyze verify` (syntax, directives, the ExecStart binaries),
#   when systemd-analyze is installed;
# - deploy/compose*.yaml: parse, and every Muttr service's command line and environment are
#   accepted by the binary (each is run with its environment and `--print-config` appended:
#   the whole configuration is resolved and checked, then printed instead of served); the
#   nginx configuration the replicas' compose file mounts exists;
# - deploy/k8s/*.yaml: every object is valid against the Kubernetes API's JSON schemas
#   (`kubernetes-validate`, installed into target/deploy-venv from PyPI when missing), and the
#   Muttr containers' command lines and environments are accepted as above;
# - deploy/*.toml: the annotated example files resolve (`--print-config --config FILE`);
# - Dockerfile: the cargo command it builds with is the one this script runs.
# No container is built here: base images need a registry and a Docker daemon.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p muttr-node -p muttr-pod --bins
bin=$PWD/target/debug

if command -v systemd-analyze >/dev/null; then
  tmp=$(mktemp -d)
  for unit in deploy/*.service; do
    sed "s#/usr/local/bin/#$bin/#" "$unit" > "$tmp/$(basename "$unit")"
  done
  systemd-analyze verify "$tmp"/*.service
  echo "== systemd units verify: $(ls deploy/*.service | xargs -n1 basename | tr '\n' ' ')"
  rm -rf "$tmp"
else
  echo "== systemd-analyze not installed: units not verified"
fi

python3 -c 'import yaml' 2>/dev/null || python3 -m pip install -q pyyaml
python3 - "$bin" <<'PY'
import glob, os, subprocess, sys, yaml
bin = sys.argv[1]

def accepted(where, cmd, env):
    full = dict(os.environ)
    full.update({k: str(v) for k, v in env.items()})
    r = subprocess.run([f"{bin}/{cmd[0]}", *cmd[1:], "--print-config"], capture_output=True, text=True, env=full)
    if r.returncode != 0:
        sys.exit(f"{where}: {' '.join(cmd)}\n{r.stderr}")

for path in sorted(glob.glob("deploy/compose*.yaml")):
    doc = yaml.safe_load(open(path))
    checked = 0
    for name, svc in doc["services"].items():
        cmd = svc.get("command")
        if not cmd or not str(cmd[0]).startswith("muttr-"):
            continue
        env = svc.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) for e in env)
        accepted(f"{path} service {name}", cmd, env)
        checked += 1
    for name, svc in doc["services"].items():
        for v in svc.get("volumes") or []:
            src = v.split(":")[0]
            if src.startswith("./") and not os.path.exists(os.path.join("deploy", src)):
                sys.exit(f"{path} service {name}: {src} does not exist")
    print(f"== {path}: {len(doc['services'])} services, {checked} Muttr command lines accepted")

# Kubernetes: the Muttr containers' command lines and environments (values from fieldRef,
# which only a cluster fills in, are given a stand-in address).
import tempfile
mounted = {}  # file name -> text, from every ConfigMap (mounted at /etc/muttr/)
for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    for obj in yaml.safe_load_all(open(path)):
        if obj and obj.get("kind") == "ConfigMap":
            mounted.update(obj.get("data", {}))
tmp = tempfile.mkdtemp()
for name, text in mounted.items():
    open(os.path.join(tmp, name), "w").write(text)
for path in sorted(glob.glob("deploy/k8s/*.yaml")):
    for obj in yaml.safe_load_all(open(path)):
        if not obj or obj.get("kind") not in ("Deployment", "StatefulSet"):
            continue
        for c in obj["spec"]["template"]["spec"]["containers"]:
            cmd = c.get("command", []) + c.get("args", [])
            if not cmd or not cmd[0].startswith("muttr-"):
                continue
            env = {}
            for e in c.get("env", []):
                value = e.get("value")
                if value is None:
                    value = "10.0.0.1" if "fieldRef" in e.get("valueFrom", {}) else "postgres://muttr@db/muttr"
                env[e["name"]] = value
            for k, v in list(env.items()):
                for name, sub in env.items():
                    v = v.replace(f"$({name})", sub)
                env[k] = v
            cmd = [a.replace("$(POD_IP)", "10.0.0.1").replace("/etc/muttr/", tmp + "/") for a in cmd]
            accepted(f"{path} {obj['kind']} {obj['metadata']['name']}", cmd, env)
    print(f"== {path}: Muttr containers' command lines accepted")
PY

if [ -d deploy/k8s ]; then
  venv=target/deploy-venv
  if [ ! -x "$venv/bin/kubernetes-validate" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q kubernetes-validate==1.37.0
  fi
  "$venv/bin/kubernetes-validate" --strict --kubernetes-version 1.31 deploy/k8s/*.yaml
  echo "== deploy/k8s: every object valid against the Kubernetes 1.31 schemas"
fi

for b in seed pod; do
  "$bin/muttr-$b" --config "deploy/muttr-$b.toml" --print-config > /dev/null
done
echo "== deploy/muttr-seed.toml and deploy/muttr-pod.toml resolve"

grep -q 'cargo build --locked --release -p muttr-node -p muttr-pod --bins' Dockerfile
echo "== Dockerfile builds with: cargo build --locked --release -p muttr-node -p muttr-pod --bins"
