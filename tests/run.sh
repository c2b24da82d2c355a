#!/usr/bin/env bash
# Runs every test suite: the Rust unit and end-to-end tests (against the local
# AWS emulator) and the Lambdas' own node tests. Installs and starts the
# emulator as needed and stops it afterwards, even when tests fail. An
# emulator that was already running (tests/emulator/start.sh) is reused and
# left running. Exits non-zero if anything failed.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"

source tests/emulator/session.sh

status=0
echo "== Rust tests (emulator at $endpoint)" >&2
STEPGATE_TEST_ENDPOINT="$endpoint" cargo test --locked || status=1
echo "== Lambda tests" >&2
node --test lambdas/ || status=1
exit "$status"
