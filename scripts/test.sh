#!/usr/bin/env bash
# The project's test command (README "Run the tests"). Everything here is deterministic and
# runs on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
# Each benchmark once, in test mode, so they cannot rot (figures come from `cargo bench`).
cargo bench --workspace --locked -- --test
