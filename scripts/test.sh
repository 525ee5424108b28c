#!/usr/bin/env bash
# The project's test command (README "Run the tests"). Everything here is deterministic and
# runs on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
# Each benchmark once, in test mode, so they cannot rot (figures come from `cargo bench`).
# Built with the test profile, so they reuse the test build above instead of an optimised
# build of every dependency (`cargo bench -- --test` took 13 minutes more on a cold 2-core
# machine). `--bench '*'` selects the bench targets only (`--benches` would run the library
# tests a second time).
cargo test --workspace --locked --bench '*' -- --test
