#!/usr/bin/env bash
# Installs the local AWS emulator (LocalStack + the stepgate-node Lambda executor plugin) into
# <repo>/.emulator/venv. A second run is a no-op unless the lock file or the plugin changed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$repo/.emulator/venv"
marker="$venv/.stepgate-installed"

# What the venv is made of: Python version, exact pins and the plugin's sources.
fingerprint() {
  python3 --version
  sha256sum "$here/requirements.lock"
  (cd "$here/plugin" && find . -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' ! -path './build/*' \
    -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
}
want="$(fingerprint | sha256sum | cut -d' ' -f1)"

if [[ -f "$marker" && "$(cat "$marker")" == "$want" ]]; then
  echo "emulator already installed in $venv"
  exit 0
fi

rm -f "$marker"
[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet -r "$here/requirements.lock"

# Build from a copy: setuptools writes build/ and *.egg-info next to the sources otherwise.
build="$(mktemp -d)"
trap 'rm -rf "$build"' EXIT
cp -r "$here/plugin/." "$build/"
"$venv/bin/pip" install --quiet --no-deps --force-reinstall "$build"

echo "$want" >"$marker"
echo "emulator installed in $venv"
