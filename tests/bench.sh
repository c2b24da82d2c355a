#!/usr/bin/env bash
# Benchmarks stepgate against the local emulator and prints figures: wall
# time, AWS calls (total and mutating) and peak memory for a deploy from
# nothing, a converged deploy, a one-Lambda code change, a plan and a
# destroy; the critical path of each deploy (the longest chain of resources
# each needing the one before: its AWS calls and seconds); the release
# binary's size and start-up time. Figures are medians of
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
import json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

runs = int(sys.argv[1])
binary = "target/release/stepgate"
steps = ["deploy (from nothing)", "deploy (converged)", "one-Lambda code change", "plan", "destroy"]
figures = {s: {"seconds": [], "calls": [], "mutating": [], "rss_mb": [], "path_calls": [], "path_s": [], "setup_s": []}
           for s in steps}

# A copy of the project whose completeOrder changes once per run.
project = tempfile.mkdtemp(prefix="stepgate-bench-")
for sub in ["lambdas", "definitions", "policies", "models"]:
    shutil.copytree(sub, os.path.join(project, sub))
handler = os.path.join(project, "lambdas", "completeOrder", "index.js")

def run(step, args):
    start = time.perf_counter()
    proc = subprocess.Popen([binary, *args, "--project-dir", project, "--output", "json", "--quiet"],
                            stdout=subprocess.PIPE)
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
    timing = report.get("timing")
    if timing:
        f["path_calls"].append(timing["critical_path"]["calls"])
        f["path_s"].append(timing["critical_path"]["seconds"])
        f["setup_s"].append(timing["setup_seconds"])

for i in range(runs):
    stage = f"bench{os.getpid()}x{i}"
    run("deploy (from nothing)", ["deploy", "--stage", stage])
    run("deploy (converged)", ["deploy", "--stage", stage])
    with open(handler, "a") as h:
        h.write(f"// bench change {i}\n")
    run("one-Lambda code change", ["deploy", "--stage", stage])
    run("plan", ["plan", "--stage", stage])
    run("destroy", ["destroy", "--stage", stage, "--yes"])
shutil.rmtree(project)

starts = []
for _ in range(21):
    start = time.perf_counter()
    subprocess.run([binary, "--version"], stdout=subprocess.DEVNULL, check=True)
    starts.append(time.perf_counter() - start)

med = statistics.median
print(f"stepgate benchmark: {runs} runs against the local emulator, medians")
print(f"{'step':<24}{'wall s':>9}{'AWS calls':>11}{'mutating':>10}{'peak MB':>9}{'setup s':>9}{'path calls':>12}{'path s':>8}")
for step in steps:
    f = figures[step]
    path = (f"{med(f['setup_s']):>9.2f}{med(f['path_calls']):>12.0f}{med(f['path_s']):>8.2f}"
            if f["path_s"] else "")
    print(f"{step:<24}{med(f['seconds']):>9.2f}{med(f['calls']):>11.0f}"
          f"{med(f['mutating']):>10.0f}{max(f['rss_mb']):>9.1f}{path}")
print(f"binary: {os.path.getsize(binary) / 1e6:.1f} MB; start-up (stepgate --version): {med(starts) * 1000:.1f} ms")
print("setup s: credentials, STS, the lock and reading every resource, before anything is applied;")
print("path calls / path s: the critical path through what was applied (resources each needing the one before).")
PY
