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
#
# `--scale`: the same steps on a generated stack of 20 functions, 4 state
# machines and 8 routes, against the targets a stack of that size should
# meet (first deploy 1.5 s, no-change deploy 0.3 s with 0 mutating calls,
# a one-function code change 0.4 s with exactly 1 mutating call).
set -euo pipefail
# `--peers`: the same stack with the aws CLI, SAM and CDK too (tests/bench/peers.py; by hand only).
[[ "${1:-}" != "--peers" ]] || exec python3 "$(dirname "${BASH_SOURCE[0]}")/bench/peers.py" "${@:2}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
cargo build --locked --release --quiet
source tests/emulator/session.sh

AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_ENDPOINT_URL="$endpoint" \
  python3 - "${STEPGATE_BENCH_RUNS:-5}" "${1:-}" <<'PY'
import json, os, resource, shutil, statistics, subprocess, sys, tempfile, time

runs = int(sys.argv[1])
scale = sys.argv[2] == "--scale"
binary = "target/release/stepgate"
CODE_CHANGE = "one-Lambda code change"
steps = ["deploy (from nothing)", "deploy (converged)", CODE_CHANGE, "rollback", "plan", "destroy"]
figures = {s: {"seconds": [], "calls": [], "mutating": [], "rss_mb": [], "path_calls": [], "path_s": [], "setup_s": []}
           for s in steps}

project = tempfile.mkdtemp(prefix="stepgate-bench-")
if scale:
    # 20 functions, 4 machines of 5 functions each (a Parallel state over
    # 4 after the first), 8 routes: two per machine, one with a path
    # parameter and a mapped input.
    functions = [f"f{i:02}" for i in range(1, 21)]
    for f in functions:
        os.makedirs(os.path.join(project, "lambdas", f))
        with open(os.path.join(project, "lambdas", f, "index.js"), "w") as h:
            h.write(f"exports.{f} = async (event) => ({{ ...event, {f}: true }});\n")
    os.makedirs(os.path.join(project, "definitions"))
    toml = ['stack = "scale"\n']
    for m in range(4):
        name = f"M{m + 1}"
        mine = functions[m * 5:(m + 1) * 5]
        branches = [{"StartAt": f, "States": {f: {"Type": "Task", "Resource": f"${{{f}Arn}}", "End": True}}}
                    for f in mine[1:]]
        definition = {"StartAt": mine[0], "States": {
            mine[0]: {"Type": "Task", "Resource": f"${{{mine[0]}Arn}}", "Next": "Fan"},
            "Fan": {"Type": "Parallel", "Branches": branches, "End": True}}}
        with open(os.path.join(project, "definitions", f"{name}.asl.json"), "w") as h:
            json.dump(definition, h, indent=2)
        toml.append(f'[[routes]]\nmethod = "POST"\npath = "/{name.lower()}/run"\nstate_machine = "{name}"\nauth = "none"\n')
        toml.append(f'[[routes]]\nmethod = "PUT"\npath = "/{name.lower()}/items/{{id}}"\nstate_machine = "{name}"\n'
                    f'input = {{ id = "path.id", item = "body" }}\nauth = "none"\n')
    with open(os.path.join(project, "stepgate.toml"), "w") as h:
        h.write("\n".join(toml))
    handler = os.path.join(project, "lambdas", "f01", "index.js")
    print("stack: 20 functions, 4 state machines, 8 routes (generated)")
else:
    # A copy of the project whose completeOrder changes once per run.
    for sub in ["lambdas", "definitions", "policies", "models"]:
        shutil.copytree(sub, os.path.join(project, sub))
    shutil.copy("stepgate.toml", project)
    # One smoke order runs on each new version before `live` moves to it.
    os.makedirs(os.path.join(project, "smoke"))
    shutil.copy("smoke/approved.json", os.path.join(project, "smoke"))
    handler = os.path.join(project, "lambdas", "completeOrder", "index.js")
    print("stack: the tutorial, with one smoke order (smoke/approved.json)")

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
    run(CODE_CHANGE, ["deploy", "--stage", stage])
    # The changed function is M1's (scale) or OrderProcessor's, the only machine.
    run("rollback", ["rollback", "--stage", stage, *(["--state-machine", "M1"] if scale else [])])
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
if scale:
    def verdict(step, seconds, mutating=None):
        f = figures[step]
        ok = med(f["seconds"]) <= seconds and (mutating is None or med(f["mutating"]) == mutating)
        want = f"<= {seconds} s" + ("" if mutating is None else f", {mutating} mutating")
        print(f"target {step:<24}{want:<24}{'met' if ok else 'MISSED'}")
    verdict("deploy (from nothing)", 1.5)
    verdict("deploy (converged)", 0.3, 0)
    # Its update and publish, the machine's update and publish, the alias
    # move (the generated stack has no smoke orders).
    verdict(CODE_CHANGE, 0.4, 5)
print("one-Lambda code change: update, publish, the machine's update and publish, the smoke order(s), the move of `live`;")
print("rollback: `live` back to the previous version (one call, under the lock);")
print("setup s: credentials, STS, the lock and reading every resource, before anything is applied;")
print("path calls / path s: the critical path through what was applied (resources each needing the one before).")
PY
