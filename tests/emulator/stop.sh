#!/usr/bin/env bash
# Stops the emulator started by start.sh, with every process it spawned. Nothing running is fine.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$(cd "$here/../.." && pwd)/.emulator"
grace=20

descendants() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$child"
    descendants "$child"
  done
}

if [[ ! -f "$dir/pid" ]]; then
  echo "emulator not running"
  exit 0
fi
pid="$(cat "$dir/pid")"

# Only signal what is really our LocalStack (a stale pid may have been reused by anything).
if kill -0 "$pid" 2>/dev/null && grep -qa 'localstack.runtime.main' "/proc/$pid/cmdline"; then
  # Lambda runtimes run in process groups of their own, so note them before the tree comes apart.
  children="$(descendants "$pid")"
  kill -TERM -- "-$pid" 2>/dev/null || true
  for ((i = 0; i < grace * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  for child in $children; do
    kill -KILL -- "-$child" "$child" 2>/dev/null || true
  done
  echo "emulator stopped (pid $pid)"
else
  echo "emulator not running (stale pid $pid)"
fi
rm -f "$dir/pid" "$dir/endpoint"
