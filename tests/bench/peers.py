#!/usr/bin/env python3
"""stepgate against its peers: the same OrderProcessor stack deployed, redeployed, changed
(one Lambda's code) and torn down by stepgate, a plain aws CLI script, AWS SAM and AWS CDK,
against one local emulator, interleaved run by run. Prints medians and each peer's ratio to
stepgate. Run by hand through `tests/bench.sh --peers [options]`; never in CI.

    tests/bench.sh --peers [--runs N] [--tools stepgate,awscli,sam,cdk] [--no-warmup]
                           [--aws-model | --latency-ms MS --propagation-seconds S]

--runs defaults to $STEPGATE_BENCH_RUNS or 3. --aws-model is --latency-ms 80
--propagation-seconds 5: tests/faults/proxy.py then sits in front of the emulator for every
tool (rate 0, faults "propagation" only), so each AWS call a tool makes waits 80 ms and a role
is refused by Lambda and Step Functions for 5 s after it changes. The peers come from
tests/bench/install-peers.sh (.bench/); each run works on its own copy of lambdas/,
definitions/ and policies/ under .bench/work, so the code change never touches the repository.
Raw figures go to .bench/results/.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / ".bench"
PEERS = REPO / "tests" / "bench" / "peers"
VENV_BIN = BENCH / "venv" / "bin"
CDK_MODULES = BENCH / "cdk" / "node_modules"
STEPGATE = REPO / "target" / "release" / "stepgate"
EXTRA_SERVICES = "cloudformation,s3"
STEP_TIMEOUT = 900  # seconds for any one command
ORDER = {"orderId": "O101", "customerName": "Demo Customer", "orderDate": "2022-01-15",
         "orderAmount": 1400, "paymentStatus": "SUCCESS"}

STEPS = ["first deploy", "no-change redeploy", "one-Lambda change", "teardown"]
CDK_CFN_CHANGE = "one-Lambda change, CloudFormation"
LABELS = {"stepgate": "stepgate", "awscli": "aws CLI", "sam": "SAM", "cdk": "CDK"}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StepFailed(RuntimeError):
    pass


def run(cmd: list[str], *, env: dict, cwd: Path | None = None, what: str) -> tuple[float, str]:
    """Runs one command in its own process group, bounded by STEP_TIMEOUT; wall seconds, output."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=STEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise StepFailed(f"{what}: no answer within {STEP_TIMEOUT}s\n{tail(out)}")
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise StepFailed(f"{what}: exit {proc.returncode}\n{tail(out)}")
    return elapsed, out.decode("utf-8", "replace")


def tail(out: bytes | str | None, lines: int = 25) -> str:
    if isinstance(out, bytes):
        out = out.decode("utf-8", "replace")
    return "\n".join((out or "").rstrip().splitlines()[-lines:])


def base_env(endpoint: str) -> dict:
    """The caller's environment without AWS settings, pointed at `endpoint` with test keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_REGION="us-east-1",
        AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint, AWS_PAGER="",
        NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
        PATH=f"{VENV_BIN}:{os.environ['PATH']}", SAM_CLI_TELEMETRY="0",
    )
    return env


# ---------------------------------------------------------------------------------------------
# The tools. Each deploys the stack named by `base` from its own copy of the sources in `work`.
# ---------------------------------------------------------------------------------------------


class Tool:
    name = ""

    def __init__(self, endpoint: str, token: str, work: Path):
        self.env = base_env(endpoint)
        self.token = token
        self.work = work
        self.base = f"{self.name}-{token}"
        self.stage = "dev"

    def prepare(self) -> None:
        """A fresh copy of the sources (without tests), as the stack's project directory."""
        shutil.rmtree(self.work, ignore_errors=True)
        self.work.mkdir(parents=True)
        for part in ("lambdas", "definitions", "policies", "models"):
            shutil.copytree(REPO / part, self.work / part,
                            ignore=shutil.ignore_patterns("*.test.js", "node_modules"))

    def change_code(self, n: int) -> None:
        with open(self.work / "lambdas" / "completeOrder" / "index.js", "a") as f:
            f.write(f"// bench change {n}\n")

    def api_name(self) -> str:
        return f"{self.base}-OrderProcessorAPI"

    def deploy(self) -> float: ...
    def teardown(self) -> float: ...
    def setup(self) -> None: ...


class Stepgate(Tool):
    name = "sg"

    def __init__(self, endpoint, token, work):
        super().__init__(endpoint, token, work)
        self.stage = token  # stepgate names {stack}-{stage}: stack "sg", stage = the run token

    def prepare(self):
        super().prepare()
        shutil.copy(REPO / "stepgate.toml", self.work / "stepgate.toml")

    def cmd(self, *args):
        return [str(STEPGATE), *args, "--stack", "sg", "--stage", self.stage,
                "--project-dir", str(self.work), "--quiet"]

    def deploy(self):
        return run(self.cmd("deploy"), env=self.env, what="stepgate deploy")[0]

    def teardown(self):
        return run(self.cmd("destroy", "--yes"), env=self.env, what="stepgate destroy")[0]


class AwsCli(Tool):
    name = "cli"
    script = PEERS / "awscli" / "stack.sh"

    def deploy(self):
        return run(["bash", str(self.script), "deploy", self.base, str(self.work)],
                   env=self.env, what="aws CLI script deploy")[0]

    def teardown(self):
        return run(["bash", str(self.script), "teardown", self.base],
                   env=self.env, what="aws CLI script teardown")[0]


class Sam(Tool):
    name = "sam"

    def prepare(self):
        super().prepare()
        for f in ("template.yaml", "samconfig.toml"):
            shutil.copy(PEERS / "sam" / f, self.work / f)

    def deploy(self):
        return run([str(VENV_BIN / "samlocal"), "deploy", "--stack-name", self.base,
                    "--parameter-overrides", f"Base={self.base}"],
                   env=self.env, cwd=self.work, what="sam deploy")[0]

    def teardown(self):
        return run([str(VENV_BIN / "samlocal"), "delete", "--stack-name", self.base,
                    "--no-prompts", "--region", "us-east-1"],
                   env=self.env, cwd=self.work, what="sam delete")[0]


class Cdk(Tool):
    """Change sets (CDK's default) for deploys, --hotswap for the code change.

    LocalStack 4.4 answers DeleteChangeSet for a change set that does not exist with 404
    ChangeSetNotFound, where AWS succeeds as long as the stack exists; the CDK CLI deletes its
    change set name before every update, so a second change-set update of a stack fails here.
    The CloudFormation code change is therefore measured with --method=direct (UpdateStack).
    """

    name = "cdk"

    def __init__(self, endpoint, token, work):
        super().__init__(endpoint, token, work)
        self.env.update(
            NODE_PATH=str(CDK_MODULES), CDK_DISABLE_VERSION_CHECK="1",
            AWS_ENDPOINT_URL_S3=endpoint, AWS_S3_FORCE_PATH_STYLE="1",
            AWS_ENVAR_ALLOWLIST="AWS_REGION,AWS_DEFAULT_REGION",
            BENCH_BASE=self.base, BENCH_SRC=str(work),
        )

    def cdk(self, *args, what):
        return run([str(CDK_MODULES / ".bin" / "cdklocal"), *args,
                    "--app", f"node {PEERS / 'cdk' / 'app.js'}", "--output", str(self.work / "cdk.out"),
                    "--no-notices", "--no-version-reporting"],
                   env=self.env, cwd=self.work, what=what)[0]

    def setup(self):
        self.prepare()
        self.cdk("bootstrap", what="cdk bootstrap")

    def deploy(self, *extra):
        return self.cdk("deploy", "--require-approval", "never", *extra, what="cdk deploy " + " ".join(extra))

    def teardown(self):
        return self.cdk("destroy", "--force", what="cdk destroy")


TOOLS = {"stepgate": Stepgate, "awscli": AwsCli, "sam": Sam, "cdk": Cdk}


# ---------------------------------------------------------------------------------------------
# Verification: an order through the deployed API must approve.
# ---------------------------------------------------------------------------------------------


def aws_json(env: dict, *args) -> object:
    _, out = run([str(VENV_BIN / "aws"), *args, "--output", "json"], env=env, what="aws " + args[1])
    return json.loads(out) if out.strip() else None


def verify(tool: Tool, emulator: str) -> str:
    """POSTs the sample order to the tool's API on the emulator; the execution must succeed with
    orderDetails.status "Approved". Returns the execution ARN."""
    env = base_env(emulator)
    api_id = aws_json(env, "apigateway", "get-rest-apis", "--query",
                      f"items[?name=='{tool.api_name()}'].id | [0]")
    if not api_id:
        raise StepFailed(f"{tool.name}: no REST API named {tool.api_name()}")
    url = f"{emulator}/restapis/{api_id}/{tool.stage}/_user_request_/orderprocess"
    request = urllib.request.Request(url, data=json.dumps(ORDER).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with DIRECT.open(request, timeout=30) as r:
        answer = json.load(r)
    arn = answer.get("executionArn")
    if not arn:
        raise StepFailed(f"{tool.name}: POST {url} answered {answer}")
    deadline = time.monotonic() + 60
    while True:
        execution = aws_json(env, "stepfunctions", "describe-execution", "--execution-arn", arn)
        if execution["status"] != "RUNNING" or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    output = json.loads(execution.get("output") or "{}")
    status = (output.get("orderDetails") or {}).get("status")
    if execution["status"] != "SUCCEEDED" or status != "Approved":
        raise StepFailed(f"{tool.name}: execution {arn} ended {execution['status']} with {output}")
    return arn


# ---------------------------------------------------------------------------------------------
# Emulator and proxy
# ---------------------------------------------------------------------------------------------


def start_emulator() -> tuple[str, bool]:
    """Starts the emulator with the extra services, or reuses it; (endpoint, started here)."""
    pid_file = REPO / ".emulator" / "pid"
    running = False
    if pid_file.exists():
        try:
            os.kill(int(pid_file.read_text()), 0)
            running = True
        except (ValueError, OSError):
            pass
    env = dict(os.environ, STEPGATE_EMULATOR_EXTRA_SERVICES=EXTRA_SERVICES)
    out = subprocess.run([str(REPO / "tests/emulator/start.sh")], env=env, check=True,
                         stdout=subprocess.PIPE, text=True, timeout=300).stdout
    return out.strip().splitlines()[-1], not running


class Proxy:
    def __init__(self, upstream: str, latency_ms: float, propagation_s: float):
        self.port_file = BENCH / "proxy.port"
        self.port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "tests/faults/proxy.py"), "--upstream", upstream,
             "--rate", "0", "--faults", "propagation", "--latency-ms", str(latency_ms),
             "--propagation-seconds", str(propagation_s), "--port-file", str(self.port_file)],
            stdout=subprocess.DEVNULL, stderr=open(BENCH / "proxy.log", "w"))
        deadline = time.monotonic() + 30
        while not (self.port_file.exists() and self.port_file.read_text().strip()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the fault proxy did not start; see .bench/proxy.log")
            time.sleep(0.1)
        self.url = self.port_file.read_text().strip()

    def control(self, path: str, method: str = "GET") -> dict:
        req = urllib.request.Request(self.url + path, method=method, data=b"" if method == "POST" else None)
        with DIRECT.open(req, timeout=10) as r:
            return json.load(r)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ---------------------------------------------------------------------------------------------
# The benchmark
# ---------------------------------------------------------------------------------------------


def cycle(tool: Tool, record, emulator: str, verify_order: bool, change_n: int) -> None:
    """First deploy, no-change redeploy, one-Lambda change, teardown; each timed."""
    tool.prepare()
    try:
        record("first deploy", tool.deploy)
        if verify_order:
            verify(tool, emulator)
        record("no-change redeploy", tool.deploy)
        tool.change_code(change_n)
        if isinstance(tool, Cdk):
            record("one-Lambda change", lambda: tool.deploy("--hotswap"))
            tool.change_code(change_n + 1)
            record(CDK_CFN_CHANGE, lambda: tool.deploy("--method=direct"))
        else:
            record("one-Lambda change", tool.deploy)
        if verify_order:
            verify(tool, emulator)
    except BaseException:
        log(f"{tool.name}: failed; tearing its stack down")
        try:
            tool.teardown()
        except StepFailed as e:
            log(f"teardown failed too: {e}")
        raise
    record("teardown", tool.teardown)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="tests/bench.sh --peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=int(os.environ.get("STEPGATE_BENCH_RUNS", "3")))
    parser.add_argument("--tools", default="stepgate,awscli,sam,cdk")
    parser.add_argument("--aws-model", action="store_true", help="--latency-ms 80 --propagation-seconds 5")
    parser.add_argument("--latency-ms", type=float)
    parser.add_argument("--propagation-seconds", type=float)
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up cycle")
    args = parser.parse_args(argv)
    tools = args.tools.split(",")
    if not tools or tools[0] != "stepgate" or any(t not in TOOLS for t in tools):
        parser.error(f"--tools: stepgate first, then any of {', '.join(list(TOOLS)[1:])}")
    if args.aws_model:
        args.latency_ms = 80.0 if args.latency_ms is None else args.latency_ms
        args.propagation_seconds = 5.0 if args.propagation_seconds is None else args.propagation_seconds
    model = args.latency_ms is not None or args.propagation_seconds is not None
    latency, propagation = args.latency_ms or 0.0, args.propagation_seconds or 0.0

    log("== building stepgate (release) and installing the emulator and the peers")
    subprocess.run(["cargo", "build", "--locked", "--release", "--quiet"], cwd=REPO, check=True)
    subprocess.run([str(REPO / "tests/emulator/install.sh")], check=True, stdout=sys.stderr)
    subprocess.run([str(REPO / "tests/bench/install-peers.sh")], check=True, stdout=sys.stderr)
    emulator, started = start_emulator()
    proxy = None
    try:
        endpoint = emulator
        if model:
            proxy = Proxy(emulator, latency, propagation)
            endpoint = proxy.url
            log(f"== AWS model: {latency:g} ms per call, {propagation:g} s IAM propagation, via {endpoint}")
        return bench(args.runs, tools, emulator, endpoint, proxy, not args.no_warmup,
                     {"latency_ms": latency, "propagation_seconds": propagation} if model else None)
    finally:
        if proxy:
            proxy.stop()
        if started:
            subprocess.run([str(REPO / "tests/emulator/stop.sh")], stdout=sys.stderr)


def bench(runs, tools, emulator, endpoint, proxy, warmup, model) -> int:
    figures = {t: {} for t in tools}  # tool -> step -> [seconds]
    calls = {t: {} for t in tools}  # tool -> step -> [AWS calls through the proxy]
    pid = os.getpid() % 100000
    load_start = os.getloadavg()[0]
    work = BENCH / "work"

    def recorder(tool_name, timed=True):
        def record(step, action):
            if proxy:
                proxy.control("/_fault/reset", "POST")
            seconds = action()
            if timed:
                figures[tool_name].setdefault(step, []).append(seconds)
                if proxy:
                    calls[tool_name].setdefault(step, []).append(proxy.control("/_fault/stats")["calls"])
            log(f"   {tool_name:<9}{step:<36}{seconds:7.2f} s")
        return record

    if "cdk" in tools:
        log("== CDK bootstrap (untimed)")
        Cdk(endpoint, f"p{pid}boot", work / "cdk-boot").setup()
    if warmup:
        log("== warm-up cycle (untimed; the emulator loads each service on first use)")
        for name in tools:
            tool = TOOLS[name](endpoint, f"p{pid}w", work / f"{name}-warmup")
            cycle(tool, recorder(name, timed=False), emulator, verify_order=False, change_n=0)
    verified = set()
    for i in range(runs):
        log(f"== run {i + 1}/{runs}")
        for name in tools:
            tool = TOOLS[name](endpoint, f"p{pid}r{i}", work / f"{name}-r{i}")
            cycle(tool, recorder(name), emulator, verify_order=True, change_n=2 * i + 1)
            verified.add(name)
            shutil.rmtree(tool.work, ignore_errors=True)

    report(runs, tools, figures, calls if proxy else None, model, verified)
    print(f"Load average (1 min) at the start and end: {load_start:.1f}, {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores.")
    BENCH.joinpath("results").mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    out = BENCH / "results" / f"peers-{'aws-model' if model else 'plain'}-{stamp}.json"
    out.write_text(json.dumps({"runs": runs, "model": model, "seconds": figures,
                               "calls": calls if proxy else None}, indent=1))
    log(f"raw figures: {out.relative_to(REPO)}")
    return 0


def report(runs, tools, figures, calls, model, verified) -> None:
    med = lambda xs: statistics.median(xs) if xs else None  # noqa: E731
    steps = STEPS + ([CDK_CFN_CHANGE] if "cdk" in tools else [])
    title = (f"AWS model ({model['latency_ms']:g} ms per call, {model['propagation_seconds']:g} s IAM "
             f"propagation, through tests/faults/proxy.py)" if model else "local emulator")
    print(f"stepgate and its peers, {title}: medians of {runs} interleaved runs, wall seconds;")
    print("in brackets each peer's ratio to stepgate. Every tool's stack approved an order through its API.")
    width = 14
    print(f"{'step':<36}" + "".join(f"{LABELS[t]:>{width}}" for t in tools))
    for step in steps:
        cells = []
        base = med(figures["stepgate"].get(step if step != CDK_CFN_CHANGE else "one-Lambda change", []))
        for t in tools:
            m = med(figures[t].get(step, []))
            if m is None:
                cells.append(f"{'-':>{width}}")
            elif t == "stepgate" or not base:
                cells.append(f"{m:>{width}.2f}")
            else:
                r = m / base
                ratio = f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"
                cells.append(f"{f'{m:.1f} ({ratio})':>{width}}")
        print(f"{step:<36}" + "".join(cells))
    if calls:
        print()
        print("AWS calls each tool made through the proxy (medians; SAM's and CDK's resources are")
        print("made by CloudFormation inside the emulator, whose calls do not pass the proxy):")
        for step in steps:
            row = []
            for t in tools:
                m = med(calls[t].get(step, []))
                row.append(f"{'-' if m is None else f'{m:.0f}':>{width}}")
            print(f"{step:<36}" + "".join(row))
    print()
    print("CDK: change sets for deploys, --hotswap for the one-Lambda change (direct Lambda calls);")
    print(f"'{CDK_CFN_CHANGE}' is the same change through CloudFormation (--method=direct).")
    if model:
        print("Not modelled: CloudFormation's own pace on AWS (its per-resource work, waits and")
        print("propagation retries happen inside the emulator in milliseconds), so SAM's and CDK's")
        print("figures here are lower bounds of what they would take on AWS.")
    missing = [t for t in tools if t not in verified]
    if missing:
        print(f"NOT verified with an order: {', '.join(missing)}")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except StepFailed as e:
        log(f"error: {e}")
        sys.exit(1)
