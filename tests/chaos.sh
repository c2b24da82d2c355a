#!/usr/bin/env bash
# Runs the full cycle (deploy, plan, an order, destroy) once per seed 1..N (default 100) through the
# fault proxy: 10 % throttling, 5xx, resets and lost answers, a 2 s IAM propagation window and API
# Gateway's quotas scaled to a tenth. Prints converged/total, duplicate REST APIs, leftovers and
# time, and each seed that failed. CI runs 10 seeds as part of tests/run.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
n="${1:-100}"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "usage: tests/chaos.sh [N seeds, default 100]" >&2; exit 1; }

source tests/emulator/session.sh

STEPGATE_CHAOS_SEEDS="$n" STEPGATE_TEST_ENDPOINT="$endpoint" \
  cargo test --locked --test hostile -- --exact seeded_faults_never_stop_a_deploy_or_a_destroy --nocapture 2>&1 |
  grep -E '^(chaos:|seed |test result:)'
