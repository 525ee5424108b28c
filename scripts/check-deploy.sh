#!/usr/bin/env bash
# Checks the deployment files as far as this machine allows (CI runs it after the tests):
# - deploy/*.service: `systemd-analyze verify` (syntax, directives, the ExecStart binaries),
#   when systemd-analyze is installed;
# - deploy/compose.yaml: parses, and every service's command line is accepted by the binary
#   (each is run with `--print-config` appended: the whole configuration is resolved and
#   checked, then printed instead of served);
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
import subprocess, sys, yaml
bin = sys.argv[1]
doc = yaml.safe_load(open("deploy/compose.yaml"))
for name, svc in doc["services"].items():
    cmd = svc["command"]
    r = subprocess.run([f"{bin}/{cmd[0]}", *cmd[1:], "--print-config"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compose service {name}: {' '.join(cmd)}\n{r.stderr}")
print(f"== compose: {len(doc['services'])} services, every command line accepted")
PY

for b in seed pod; do
  "$bin/muttr-$b" --config "deploy/muttr-$b.toml" --print-config > /dev/null
done
echo "== deploy/muttr-seed.toml and deploy/muttr-pod.toml resolve"

grep -q 'cargo build --locked --release -p muttr-node -p muttr-pod --bins' Dockerfile
echo "== Dockerfile builds with: cargo build --locked --release -p muttr-node -p muttr-pod --bins"
