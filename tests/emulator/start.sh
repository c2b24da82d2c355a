#!/usr/bin/env bash
# Starts the local AWS emulator (LocalStack, Lambda functions run by the stepgate-node executor)
# on 127.0.0.1:${STEPGATE_EMULATOR_PORT:-4566}, or reuses the one already running. Prints the
# endpoint as the last line of stdout; progress goes to stderr. Needs tests/emulator/install.sh.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="$repo/.emulator"
py="$dir/venv/bin/python"
port="${STEPGATE_EMULATOR_PORT:-4566}"
endpoint="http://127.0.0.1:$port"
# ssm: Parameter Store holds the per-stage deploy lock.
# events: Step Functions reports every execution status change to EventBridge and logs an ERROR
# per execution when it is off. ssm: Parameter Store holds each stage's deploy lock.
# cloudwatch: the state machines' alarms.
services="iam,lambda,stepfunctions,apigateway,sts,logs,events,ssm,cloudwatch"
# More services for other tools (tests/bench.sh --peers adds cloudformation,s3 for SAM and CDK).
services="$services${STEPGATE_EMULATOR_EXTRA_SERVICES:+,$STEPGATE_EMULATOR_EXTRA_SERVICES}"
start_timeout=120

[[ -x "$py" ]] || { echo "no emulator venv: run tests/emulator/install.sh first" >&2; exit 1; }

# Exit 0 when LocalStack answers on $1 and every service in $services is available or running.
healthy() {
  "$py" - "$1" "$services" <<'EOF' 2>/dev/null
import json, sys, urllib.request
url, wanted = sys.argv[1], sys.argv[2].split(",")
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
with opener.open(url + "/_localstack/health", timeout=2) as r:
    states = json.load(r).get("services", {})
sys.exit(0 if all(states.get(s) in ("available", "running") for s in wanted) else 1)
EOF
}

# Reuse a running emulator; anything else recorded is stale.
if [[ -f "$dir/pid" ]]; then
  pid="$(cat "$dir/pid")"
  recorded="$(cat "$dir/endpoint" 2>/dev/null || true)"
  if kill -0 "$pid" 2>/dev/null && [[ -n "$recorded" ]] && healthy "$recorded"; then
    echo "reusing emulator (pid $pid)" >&2
    echo "$recorded"
    exit 0
  fi
  echo "stale emulator record (pid $pid): cleaning up" >&2
  "$here/stop.sh" >&2
fi

if healthy "$endpoint"; then
  echo "something not started by this script already answers on $endpoint; set STEPGATE_EMULATOR_PORT" >&2
  exit 1
fi

# Fresh state each start (nothing is persisted); TMPDIR holds the unzipped function code.
rm -rf "$dir/state" "$dir/tmp"
mkdir -p "$dir/state" "$dir/tmp" "$dir/cache"

# env -i: none of the caller's AWS_*, proxy or LocalStack settings leak in (PATH does: it finds node).
#   GATEWAY_LISTEN        binds 127.0.0.1 only thanks to the plugin's start hook (see plugin/.../hooks.py)
#   LOCALSTACK_HOST       URLs LocalStack hands out (e.g. API Gateway invoke URLs) name 127.0.0.1
#   DNS_ADDRESS=0         no DNS server (it would bind port 53 and forward upstream)
#   SKIP_SSL_CERT_DOWNLOAD  use a self-signed cert instead of downloading LocalStack's
#   DISABLE_EVENTS        no analytics
#   XDG_CACHE_HOME        plux's entry point cache stays in .emulator
#   TMPDIR                logs a harmless deprecation warning (LocalStack once read it as a setting)
# setsid: own session and process group (pid = pgid), so stop.sh can signal the whole group.
# Without job control bash does not make the background job a group leader, so setsid does not fork
# and $! is LocalStack's own pid.
env -i \
  PATH="$PATH" HOME="$HOME" LANG=C.UTF-8 TMPDIR="$dir/tmp" \
  XDG_CACHE_HOME="$dir/cache" \
  GATEWAY_LISTEN="127.0.0.1:$port" LOCALSTACK_HOST="127.0.0.1:$port" \
  FILESYSTEM_ROOT="$dir/state" \
  SERVICES="$services" \
  LAMBDA_RUNTIME_EXECUTOR=stepgate-node \
  DISABLE_EVENTS=1 DNS_ADDRESS=0 SKIP_SSL_CERT_DOWNLOAD=1 \
  LS_LOG="${LS_LOG:-info}" \
  setsid "$py" -m localstack.runtime.main >"$dir/localstack.log" 2>&1 </dev/null &
pid=$!
echo "$pid" >"$dir/pid"
echo "$endpoint" >"$dir/endpoint"

echo "starting emulator (pid $pid) on $endpoint" >&2
started=$SECONDS
until healthy "$endpoint"; do
  if ! kill -0 "$pid" 2>/dev/null || ((SECONDS - started >= start_timeout)); then
    echo "emulator did not become healthy within ${start_timeout}s; last log lines:" >&2
    tail -n 40 "$dir/localstack.log" >&2
    "$here/stop.sh" >&2
    exit 1
  fi
  sleep 0.5
done
echo "emulator ready after $((SECONDS - started))s" >&2
echo "$endpoint"
