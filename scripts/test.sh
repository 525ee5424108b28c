#!/usr/bin/env bash
# The project's test command (README "Run the tests"). Everything here is deterministic and
# runs on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
# PostgreSQL for the pod's storage and replica tests (pod/tests/storage.rs, replicas.rs): a
# throwaway cluster when the machine has PostgreSQL and none is given in
# MUTTR_TEST_POSTGRES. Without PostgreSQL those cases say so and are skipped — except in CI
# (`CI` set), where they fail.
if [ -z "${MUTTR_TEST_POSTGRES:-}" ] && bash scripts/pg-test-cluster.sh available; then
  eval "$(bash scripts/pg-test-cluster.sh start)"
  trap 'bash scripts/pg-test-cluster.sh stop' EXIT
fi
cargo test --workspace --locked
# Each benchmark once, in test mode, so they cannot rot (figures come from `cargo bench`).
# Built with the test profile, so they reuse the test build above instead of an optimised
# build of every dependency (`cargo bench -- --test` took 13 minutes more on a cold 2-core
# machine). `--bench '*'` selects the bench targets only (`--benches` would run the library
# tests a second time).
cargo test --workspace --locked --bench '*' -- --test
