#!/usr/bin/env bash
# Dev-only (CI does not run it): checks that every drawing `stepgate graph`
# makes parses with the real renderers: Graphviz's `dot` (Debian's graphviz)
# and Mermaid's own CLI (npm's @mermaid-js/mermaid-cli, driving Debian's
# Chromium: puppeteer's own browser download is skipped). Installs what is
# missing; the npm packages go to target/mermaid-cli.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

missing=()
command -v dot >/dev/null || missing+=(graphviz)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ((${#missing[@]})); then
  apt-get update -qq && apt-get install -y -qq "${missing[@]}"
fi

cli="$repo/target/mermaid-cli"
if [[ ! -x "$cli/node_modules/.bin/mmdc" ]]; then
  mkdir -p "$cli"
  PUPPETEER_SKIP_DOWNLOAD=1 npm install --prefix "$cli" --no-audit --no-fund @mermaid-js/mermaid-cli@11
fi
config="$cli/puppeteer.json"
cat > "$config" <<'JSON'
{ "executablePath": "/usr/bin/chromium",
  "args": ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run"] }
JSON

STEPGATE_MMDC="$cli/node_modules/.bin/mmdc" STEPGATE_MMDC_PUPPETEER_CONFIG="$config" \
  cargo test --locked --test graph -- --ignored
