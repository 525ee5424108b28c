#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer), on the stable toolchain.
#
#   bash scripts/fuzz.sh [TARGET|all] [SECONDS]   run one target (or each) for SECONDS (default 600)
#   bash scripts/fuzz.sh --smoke                  CI: each target for a few seconds
#   bash scripts/fuzz.sh --list                   the targets
#
# Targets (fuzz/fuzz_targets/): datagram (decoder + seed core), value (P-V1 validation),
# auth (signed auth texts), pod_request (the pod's router). New inputs go to
# fuzz/corpus-local/TARGET (not committed); fuzz/corpus/TARGET holds the committed seeds
# (regenerate with `python3 fuzz/seed-corpora.py`). Crashes land in fuzz/artifacts/TARGET and
# fail the run.
#
# cargo-fuzz passes nightly-only flags; RUSTC_BOOTSTRAP=1 lets the stable compiler accept them.
# The address sanitizer is off (`-s none`): the workspace forbids unsafe code, so libFuzzer's
# coverage plus Rust's own checks (debug assertions on) find what matters, twice as fast.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS=(datagram value auth pod_request)

if [ "${1:-}" = "--list" ]; then printf '%s\n' "${TARGETS[@]}"; exit 0; fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi

secs=600
selected=("${TARGETS[@]}")
if [ "${1:-}" = "--smoke" ]; then
  secs=${FUZZ_SMOKE_SECONDS:-5}
elif [ -n "${1:-}" ] && [ "$1" != "all" ]; then
  selected=("$1")
  secs=${2:-600}
elif [ -n "${2:-}" ]; then
  secs=$2
fi

export RUSTC_BOOTSTRAP=1
for t in "${selected[@]}"; do
  mkdir -p "fuzz/corpus-local/$t" "fuzz/artifacts/$t"
  echo "== fuzz $t for ${secs}s"
  log="fuzz/artifacts/$t/last-run.log"
  rc=0
  cargo fuzz run --fuzz-dir fuzz -s none --debug-assertions "$t" \
    "fuzz/corpus-local/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
    >"$log" 2>&1 || rc=$?
  grep -E '^(stat::|INFO: seed corpus|Done )|panicked|ERROR|SUMMARY|crash-' "$log" || true
  if [ "$rc" != "0" ] || ls "fuzz/artifacts/$t"/crash-* >/dev/null 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz target $t failed (exit $rc): see $log and fuzz/artifacts/$t" >&2
    exit 1
  fi
done
