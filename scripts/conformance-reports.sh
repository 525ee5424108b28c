#!/usr/bin/env bash
# The conformance suite run as an implementer runs it, against this repository's own seed and
# pod as real processes, writing every report format: target/conformance/{vectors,seed,pod}.
# {json,xml,html}. CI runs it after the tests (it reuses their debug build) and keeps the
# reports; exit status 1 when a suite has an unexpected failure.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked -q -p muttr-conformance -p muttr-node -p muttr-pod --bins
bin=target/debug
out=target/conformance
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port (UDP and TCP), from the kernel.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

seed_port=$(port)
"$bin/muttr-seed" --listen "127.0.0.1:$seed_port" --log warn >"$work/seed.log" 2>&1 &
pids+=($!)
pod_port=$(port)
pod_seed_port=$(port)
printf '[pod]\nexempt_loopback = true\n' >"$work/pod.toml"
"$bin/muttr-pod" --config "$work/pod.toml" --listen "127.0.0.1:$pod_port" \
  --seed-listen "127.0.0.1:$pod_seed_port" --data-dir "$work/pod" --insecure-federation \
  --log warn >"$work/pod.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -fsS "http://127.0.0.1:$pod_port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

status=0
report() { local name=$1; shift; echo "== conformance $name"; "$bin/muttr-conformance" "$@" --json "$out/$name.json" --junit "$out/$name.xml" --html "$out/$name.html" | tail -12 || status=1; }
report vectors vectors
report seed seed "127.0.0.1:$seed_port"
report pod pod "http://127.0.0.1:$pod_port" --federation-host 127.0.0.1:0 --rsa
ls -l "$out"
exit $status
