#!/usr/bin/env bash
# Installs the benchmark's peers into <repo>/.bench (git-ignored), from exact pins:
#   .bench/venv   awscli, aws-sam-cli, aws-sam-cli-local, awscli-local (tests/bench/peers/requirements.lock)
#   .bench/cdk    aws-cdk, aws-cdk-lib, constructs, aws-cdk-local (tests/bench/peers/cdk/package*.json, npm ci)
# A second run is a no-op unless a pin changed. Only `tests/bench.sh --peers` needs them; CI does not.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
dir="$repo/.bench"
peers="$here/peers"
marker="$dir/.installed"

fingerprint() {
  python3 --version
  node --version
  sha256sum "$peers/requirements.lock" "$peers/cdk/package.json" "$peers/cdk/package-lock.json"
}
want="$(fingerprint | sha256sum | cut -d' ' -f1)"

if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  echo "peers already installed in $dir"
  exit 0
fi

rm -f "$marker"
mkdir -p "$dir/cdk"
[[ -x "$dir/venv/bin/python" ]] || python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet -r "$peers/requirements.lock"

cp "$peers/cdk/package.json" "$peers/cdk/package-lock.json" "$dir/cdk/"
(cd "$dir/cdk" && npm ci --no-audit --no-fund --loglevel=error)

echo "$want" >"$marker"
echo "peers installed in $dir"
