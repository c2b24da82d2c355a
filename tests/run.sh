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
# Every request stepgate makes in the suite is logged, then checked
# against the deployer policy (tests/deployer_policy.rs).
export STEPGATE_TEST_CALL_LOG="$repo/target/suite-calls.jsonl"
rm -f "$STEPGATE_TEST_CALL_LOG"
# Every output of stepgate in the suite is kept, then searched for the API
# key values only `keys --reveal` may show (tests/access.rs).
export STEPGATE_TEST_OUTPUTS="$repo/target/suite-outputs"
rm -rf "$STEPGATE_TEST_OUTPUTS"
STEPGATE_TEST_ENDPOINT="$endpoint" cargo test --locked || status=1
echo "== Deployer policy against every request of the suite" >&2
cargo test --locked --test deployer_policy -- --ignored --exact \
  every_request_the_suite_made_is_allowed_by_the_deployer_policy || status=1
echo "== No API key value in any output of the suite" >&2
cargo test --locked --test access -- --ignored --exact \
  no_key_value_appears_in_any_output_of_the_suite || status=1
echo "== Lambda tests" >&2
node --test lambdas/ examples/ || status=1
exit "$status"
