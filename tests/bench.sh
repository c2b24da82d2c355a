#!/usr/bin/env bash
# Benchmarks stepgate against the local emulator and prints figures: wall
# time, AWS calls (total and mutating) and peak memory for a deploy from
# nothing, a converged deploy, a plan and a destroy. Figures are medians of
# $STEPGATE_BENCH_RUNS runs (default 5). The emulator answers in
# milliseconds, so these measure stepgate's own overhead and call count,
# not AWS's latency.
set -euo pipefail
# `--peers`: the same stack with the aws CLI, SAM and CDK too (tests/bench/peers.py; by hand only).
[[ "${1:-}" != "--peers" ]] || exec python3 "$(dirname "${BASH_SOURCE[0]}")/bench/peers.py" "${@:2}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build --locked --release --quiet
source tests/emulator/session.sh

AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint" \
  python3 - "${STEPGATE_BENCH_RUNS:-5}" <<'PY'
import json, os, resource, statistics, subprocess, sys, time

runs = int(sys.argv[1])
binary = "target/release/stepgate"
steps = ["deploy (from nothing)", "deploy (converged)", "plan", "destroy"]
figures = {s: {"seconds": [], "calls": [], "mutating": [], "rss_mb": []} for s in steps}

def run(step, args):
    start = time.perf_counter()
    proc = subprocess.Popen([binary, *args, "--output", "json", "--quiet"], stdout=subprocess.PIPE)
    out, _ = proc.communicate()
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{step} failed with exit {proc.returncode}")
    report = json.loads(out)
    f = figures[step]
    f["seconds"].append(elapsed)
    f["calls"].append(report["aws_calls"]["total"])
    f["mutating"].append(report["aws_calls"]["mutating"])
    # ru_maxrss of children is the largest so far; good enough as a ceiling.
    f["rss_mb"].append(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)

for i in range(runs):
    stage = f"bench{os.getpid()}x{i}"
    run("deploy (from nothing)", ["deploy", "--stage", stage])
    run("deploy (converged)", ["deploy", "--stage", stage])
    run("plan", ["plan", "--stage", stage])
    run("destroy", ["destroy", "--stage", stage, "--yes"])

print(f"stepgate benchmark: {runs} runs against the local emulator, medians")
print(f"{'step':<24}{'wall s':>9}{'AWS calls':>11}{'mutating':>10}{'peak MB':>9}")
for step in steps:
    f = figures[step]
    print(f"{step:<24}{statistics.median(f['seconds']):>9.2f}{statistics.median(f['calls']):>11.0f}"
          f"{statistics.median(f['mutating']):>10.0f}{max(f['rss_mb']):>9.1f}")
PY
