#!/usr/bin/env bash
# The project's test command (README "Run the tests"). Everything here is deterministic and
# runs on loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
